#!/usr/bin/env bash
# The main job: `pulumi up` on a stack (default: dev) with the local file backend from Pulumi.yaml (~/.pulumi).
# Usage: scripts/up.sh [STACK] [extra pulumi up flags, e.g. --yes or --diff]
# Needs the Pulumi CLI, python3 and kubectl 1.31+, and kubeconfig contexts for the stack's clusters.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${1:-dev}"
shift || true
for tool in pulumi kubectl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case "$tool" in
      pulumi) echo "error: the Pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/iac/download-install/) and run again" >&2 ;;
      kubectl) echo "error: kubectl is not on PATH; the registration's shell steps need kubectl 1.31 or newer" >&2 ;;
      *) echo "error: $tool is not on PATH" >&2 ;;
    esac
    exit 1
  fi
done
if [ ! -f "stacks/Pulumi.$stack.yaml" ]; then
  echo "error: there is no stacks/Pulumi.$stack.yaml; stacks here: $(cd stacks && ls Pulumi.*.yaml | sed 's/^Pulumi\.//; s/\.yaml$//' | tr '\n' ' ')" >&2
  exit 1
fi

pulumi install
# Secrets in the stack file are encrypted with a passphrase (asked for, or PULUMI_CONFIG_PASSPHRASE[_FILE]).
pulumi stack select --create --secrets-provider passphrase "$stack"
pulumi up --stack "$stack" "$@"
