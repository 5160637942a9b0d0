#!/usr/bin/env bash
# The main job: `pulumi up` on a stack (default: dev) with the local file backend from Pulumi.yaml (~/.pulumi).
# Usage: scripts/up.sh [STACK] [extra pulumi up flags, e.g. --yes or --diff]
# Needs the Pulumi CLI, python3 and kubectl (the steps' minimum: components/gloo_mesh_registration/shell/require_kubectl.sh),
# and kubeconfig contexts for the stack's clusters.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${1:-dev}"
shift || true
for tool in pulumi python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case "$tool" in
      pulumi) echo "error: the Pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/iac/download-install/) and run again" >&2 ;;
      *) echo "error: $tool is not on PATH" >&2 ;;
    esac
    exit 1
  fi
done
# The shell steps' own check of kubectl (on PATH, new enough), before anything runs.
sh components/gloo_mesh_registration/shell/require_kubectl.sh || exit 1
if [ ! -f "stacks/Pulumi.$stack.yaml" ]; then
  # shellcheck disable=SC2012 # names of the form Pulumi.<stack>.yaml, listed for a person to read
  echo "error: there is no stacks/Pulumi.$stack.yaml; stacks here: $(cd stacks && ls Pulumi.*.yaml | sed 's/^Pulumi\.//; s/\.yaml$//' | tr '\n' ' ')" >&2
  exit 1
fi

# The kubernetes provider writes a copy of every kubeconfig it is given (contents included: client keys, tokens) into
# $TMPDIR each time it starts, and never deletes it (pulumi-kubernetes pkg/provider/util.go, writeKubeconfigToFile).
# So pulumi runs with a TMPDIR of its own, and those copies are deleted when it ends (done, failed or interrupted). The folder
# itself goes once the token guards (components/lifecycle.py) that may outlive the run have removed their own files.
run_tmp=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/gloo-registration.XXXXXX")
remove_provider_copies() {
  find "$run_tmp" -maxdepth 1 -type f -name 'kubeconfig*' -delete 2>/dev/null || true
  rmdir "$run_tmp" 2>/dev/null && return 0
  # A token guard still holds a folder here: remove ours once it is done (a guard gives up after 10 minutes).
  # shellcheck disable=SC2016 # the loop is the inner shell's program; $1 is its argument
  nohup sh -c 'for _ in $(seq 900); do rmdir "$1" 2>/dev/null && exit 0; sleep 1; done' sh "$run_tmp" \
    </dev/null >/dev/null 2>&1 &
}
trap remove_provider_copies EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export TMPDIR="$run_tmp"

pulumi install
# Secrets in the stack file are encrypted with a passphrase (asked for, or PULUMI_CONFIG_PASSPHRASE[_FILE]).
pulumi stack select --create --secrets-provider passphrase "$stack"

# --parallel: 4 per cluster of the stack file, at least 16, unless given (-p, --parallel, PULUMI_PARALLEL); the rule,
# and why, is parallel_for in scripts/fleet.py, which the fleet command applies to each of its stacks too.
flags=$(.venv/bin/python scripts/fleet.py parallel "stacks/Pulumi.$stack.yaml" -- "$@")
read -r -a parallel <<<"$flags"
pulumi up --stack "$stack" ${parallel[@]+"${parallel[@]}"} "$@"
