#!/usr/bin/env bash
# A demo of the main job for someone with no clusters: builds or reuses the real tools, starts two local API servers
# with a simulated Gloo management plane, runs the real `pulumi up` of a local stack, prints what was registered and
# how to look at it. Ctrl-C tears everything down (pulumi destroy, servers stopped); so does
#   scripts/demo.sh --down
# from another shell.
#   scripts/demo.sh --once   registers, shows, then destroys and stops at once (no waiting; what tests/e2e runs)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${GLOO_DEMO_DIR:-${TMPDIR:-/tmp}/gloo-registration-demo}"
pid_file="$work/demo.pid"

if [ "${1:-}" = "--down" ]; then
  if [ -f "$pid_file" ]; then
    pid=$(cat "$pid_file")
    kill -INT "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    echo "demo stopped"
  else
    echo "no demo is running (no $pid_file)"
  fi
  exit 0
fi

once=()
if [ "${1:-}" = "--once" ]; then
  once=(--once)
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--once | --down]" >&2
  exit 2
fi

source scripts/venv.sh
bin=$(bash scripts/e2e-tools.sh)
rm -rf "$work"
exec "$VENV/bin/python" -m lab.demo --tools "$bin" --work "$work" --pid-file "$pid_file" "${once[@]}"
