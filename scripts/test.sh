#!/usr/bin/env bash
# Every check and test: builds its own virtualenv (.venv, the one `pulumi up` uses too), then ruff, mypy, pytest.
# Needs python3 (3.11+) and kubectl 1.31+ on PATH; the kubectl tests fail (they do not skip) without it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
wanted=$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())' < <(cat requirements.txt requirements-dev.txt pyproject.toml))
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi

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
"$VENV/bin/python" -m pytest "$@"
