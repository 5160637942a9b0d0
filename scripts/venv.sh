# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/e2e.sh: makes the virtualenv ($VENV, default .venv, the one `pulumi up`
# uses too) and installs the pinned requirements into it when they changed since the last install.
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
wanted=$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())' < <(cat constraints.txt requirements.txt requirements-dev.txt pyproject.toml lab/pyproject.toml))
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi
