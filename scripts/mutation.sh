#!/usr/bin/env bash
# Mutation testing of components/ (TESTING.md): mutmut changes the code one small edit at a time and runs the fast
# tests (pytest --ignore=tests/e2e, the mock runtime; configuration in pyproject.toml, [tool.mutmut]) against each
# change; a change that no test notices "survives". Not part of scripts/test.sh: components/ makes about 3,100
# mutants, many hours of tests on two cores (TESTING.md); a sample of each module takes minutes.
#
#   scripts/mutation.sh                      every module of components/
#   scripts/mutation.sh registration args    only these modules (components/<name>.py)
#   MUTATION_SAMPLE=20 scripts/mutation.sh registration lifecycle
#                                            20 mutants of each, chosen by a fixed seed (MUTATION_SEED, default 14)
#
# MUTATION_CHILDREN (default 1) is the number of test processes run in parallel. mutmut keeps its results in
# mutants/ and tests again only what changed since; MUTATION_FRESH=1 starts from scratch. Prints, per module, the
# killed/total count and every surviving mutant (`.venv/bin/mutmut show <name>` shows its diff).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh

if [ "${MUTATION_FRESH:-0}" = 1 ]; then
  rm -rf mutants
fi
patterns=()
for module in "$@"; do
  if [ ! -f "components/$module.py" ]; then
    echo "no module components/$module.py" >&2
    exit 2
  fi
  patterns+=("components.$module.*")
done
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  if [ ! -d mutants/components ]; then
    # Makes the mutants without testing any (mutmut then stops: nothing matches): the sample is drawn from them.
    "$VENV/bin/mutmut" run "components.no-such-module.*" >/dev/null 2>&1 || true
  fi
  mapfile -t patterns < <("$VENV/bin/python" scripts/mutation_summary.py --sample "$MUTATION_SAMPLE" \
    --seed "${MUTATION_SEED:-14}" "$@")
fi

started=$(date +%s)
# Survivors are no failure of the run (the summary lists them); a failing unmutated test run is.
"$VENV/bin/mutmut" run --max-children "${MUTATION_CHILDREN:-1}" "${patterns[@]}"
echo "== mutation run took $(($(date +%s) - started)) s"
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  "$VENV/bin/python" scripts/mutation_summary.py --report --sample "$MUTATION_SAMPLE" --seed "${MUTATION_SEED:-14}" "$@"
else
  "$VENV/bin/python" scripts/mutation_summary.py "$@"
fi
