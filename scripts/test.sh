#!/usr/bin/env bash
# Every check and test: builds its own virtualenv (.venv, the one `pulumi up` uses too), then ruff, mypy, the fast
# tests (mock runtime, kubectl), and the real-engine suite (scripts/e2e.sh, which builds or reuses its tools).
# Needs python3 (3.11+), kubectl 1.31+ and Go 1.26+ on PATH; what is missing fails the run, nothing skips.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh

if ! command -v kubectl >/dev/null 2>&1; then
  echo "error: kubectl is not on PATH; the lifecycle tests run the real kubectl against a local fake API server" >&2
  exit 1
fi

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest --ignore=tests/e2e "$@"
echo "== real-engine suite"
bash scripts/e2e.sh
