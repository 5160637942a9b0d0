#!/usr/bin/env bash
# Runs a test command several times in a row while other processes keep every core busy, and says how each run
# ended: the check that the suite's waits are on events and order, not on time windows a loaded machine misses
# (TESTING.md, "Under load"). The load is one busy-looping process per core (nproc), niced to the same priority as the
# tests, started before the first run and stopped when the last ends, whatever ends it.
#
#   scripts/under_load.sh [--runs N] [--load-processes N] -- COMMAND...
#   scripts/under_load.sh --runs 5 -- .venv/bin/python -m pytest --ignore=tests/e2e -q
#
# Exits non-zero when any run failed; prints one line per run (exit code, seconds) and a last line
# "under load: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
load=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --load-processes) load=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--runs N] [--load-processes N] -- COMMAND..." >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "usage: $0 [--runs N] [--load-processes N] -- COMMAND..." >&2
  exit 2
fi

burners=()
stop_load() {
  if [ ${#burners[@]} -gt 0 ]; then
    kill "${burners[@]}" 2>/dev/null || true
    wait "${burners[@]}" 2>/dev/null || true
  fi
}
trap stop_load EXIT
for _ in $(seq "$load"); do
  # Bounded: each burner ends by itself after 3 hours even if this script is killed hard.
  timeout 3h sh -c 'while :; do :; done' &
  burners+=($!)
done
echo "== load: $load busy processes on $(nproc) cores"

passed=0
failed=0
for run in $(seq "$runs"); do
  started=$SECONDS
  status=0
  "$@" || status=$?
  if [ "$status" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  echo "== run $run of $runs under load: exit $status after $((SECONDS - started)) s"
done
echo "under load: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
