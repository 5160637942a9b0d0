#!/usr/bin/env bash
# Every check and test: builds its own virtualenv (.venv, the one `pulumi up` uses too), then ruff, mypy, the import
# layers (import-linter), shellcheck (the shell steps and scripts/*.sh), actionlint (.github/workflows, their `run:`
# scripts through shellcheck), the fast tests (mock runtime, policy, schemas), and the real-engine suite
# (scripts/e2e.sh, which builds or reuses its tools; the lifecycle steps' kubectl tests are there, with the kubectl
# built alongside the API servers).
# Needs python3 (3.11+), Go 1.26+, and Node.js with npm (the TypeScript example: npm ci, tsc; run with Node 20) on
# PATH (no kubectl: the suite builds its own); what is missing fails the run, nothing skips.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== import layers (lint-imports)"
"$VENV/bin/lint-imports"
echo "== shellcheck"
"$VENV/bin/shellcheck" components/gloo_mesh_registration/shell/*.sh scripts/*.sh
echo "== actionlint (the workflows; their run: scripts through shellcheck)"
# actionlint is built from its Go module with the real-engine tools, into their folder: on a cold cache this builds
# them all first, each one's progress on stderr (logs: <tool>.log in $GLOO_E2E_CACHE, default
# ~/.cache/gloo-registration-e2e), and scripts/e2e.sh below finds them built. No Go: the run fails here.
tools="$(bash scripts/e2e-tools.sh | tail -n 1)"
pyflakes=""
if [ -x "$VENV/bin/pyflakes" ]; then pyflakes="$VENV/bin/pyflakes"; fi
"$tools/actionlint" -shellcheck "$VENV/bin/shellcheck" -pyflakes "$pyflakes" .github/workflows/*.yml
echo "== pytest"
"$VENV/bin/python" -m pytest --ignore=tests/e2e "$@"
echo "== real-engine suite"
bash scripts/e2e.sh
