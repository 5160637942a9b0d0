#!/usr/bin/env bash
# The stacks a change runs, as a JSON list for a workflow's matrix (e.g. ["dev","fleet-example"]): the one selection
# of .github/workflows/preview.yml (the stacks a pull request previews) and register.yml (the stacks a push registers).
#
#   scripts/changed_stacks.sh BASE [HEAD]   the stacks that the change from commit BASE to HEAD (default HEAD) runs
#   scripts/changed_stacks.sh --all         every stack (stacks/Pulumi.<stack>.yaml)
#
# A changed stack file runs that stack; a change to what every stack runs (the program, the component, the policy
# pack, their dependencies) runs every stack. Deleted stack files are not run: there is nothing to run them with.
# Needs git and jq (both on GitHub's runners); the diff needs both commits (actions/checkout with fetch-depth: 0).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--all" ] && [ $# -eq 1 ]; then
  every=true
elif [ $# -ge 1 ] && [ $# -le 2 ] && [ -n "$1" ] && [ "${1:0:1}" != "-" ]; then
  changed="$(git diff --name-only --diff-filter=d "$1" "${2:-HEAD}" --)"
  every=false
  if grep -qE '^(Pulumi\.yaml|__main__\.py|constraints\.txt|requirements\.txt|pyproject\.toml)$|^(components|policy)/' <<<"$changed"; then
    every=true
  fi
else
  echo "usage: $0 BASE [HEAD] | --all" >&2
  exit 2
fi

if $every; then
  files="$(find stacks -maxdepth 1 -name 'Pulumi.*.yaml' | LC_ALL=C sort)"
else
  files="$(grep -E '^stacks/Pulumi\.[^/]+\.yaml$' <<<"$changed" || true)"
fi
sed -E 's|^stacks/Pulumi\.(.+)\.yaml$|\1|' <<<"$files" | jq -Rnc '[inputs | select(length > 0)]'
