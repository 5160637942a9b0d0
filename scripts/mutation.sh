#!/usr/bin/env bash
# Mutation testing of components/ (TESTING.md): mutmut changes the code one small edit at a time and runs the fast
# tests (pytest --ignore=tests/e2e, the mock runtime; configuration in pyproject.toml, [tool.mutmut]) against each
# change; a change that no test notices "survives". Not part of scripts/test.sh: components/ makes about 3,100
# mutants, hours of tests on two cores (TESTING.md); a sample of each module takes minutes.
#
#   scripts/mutation.sh                      every module of the package (components/gloo_mesh_registration/)
#   scripts/mutation.sh registration args    only these modules (components/gloo_mesh_registration/<name>.py)
#   MUTATION_SAMPLE=20 scripts/mutation.sh registration lifecycle
#                                            20 mutants of each, chosen by a fixed seed (MUTATION_SEED, default 14)
#   MUTATION_SAMPLE=6% scripts/mutation.sh   6 % of every module's mutants: an estimate of the whole package's score
#                                            (the summary gives its 95 % confidence interval)
#   scripts/mutation.sh show <mutant>        the change one mutant makes
#   MUTATION_TARGET=policy scripts/mutation.sh
#                                            the policy pack (policy/gloo_mesh_policies.py) instead of the package
#
# MUTATION_CHILDREN (default 1) is the number of test processes run in parallel. mutmut keeps its results in
# build/mutation/mutants/ (the policy pack's in build/mutation-policy/mutants/) and tests again only what changed
# since; MUTATION_FRESH=1 starts from scratch. Prints, per
# module, the killed/total count and every surviving mutant.
#
# Where it runs: build/mutation/, a folder of links to this repository with components/ linked as src/. mutmut names
# a mutant after its file's path and strips only a leading "src." (or nothing), while the tests import the package
# as gloo_mesh_registration; from the repository root the names would start with "components." and match no code.
# The policy pack runs in build/mutation-policy/: the tests import it as policy.gloo_mesh_policies, its path, so
# there policy/ is the source path and pyproject.toml a copy with [tool.mutmut] pointed at it.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
VENV=$(cd "$VENV" && pwd)
root=$(pwd)
target=${MUTATION_TARGET:-components}
linked=(tests __main__.py Pulumi.yaml README.md BENCHMARKS.md TESTING.md ARCHITECTURE.md CONTRIBUTING.md CHANGELOG.md LICENSE
  constraints.txt requirements.txt requirements-dev.txt .github benchmarks docs examples provider rbac scripts stacks toolchain lab)
case "$target" in
  components)
    stage=build/mutation
    modules_dir=src/gloo_mesh_registration
    mkdir -p "$stage"
    ln -sfn "$root/components" "$stage/src"
    linked+=(policy pyproject.toml)
    ;;
  policy)
    stage=build/mutation-policy
    modules_dir=policy
    mkdir -p "$stage"
    linked+=(components policy) # policy/ is mutmut's source path here: it copies and mutates it from the link
    "$VENV/bin/python" "$root/scripts/mutation_config.py" "$root/pyproject.toml" "$stage/pyproject.toml"
    ;;
  *)
    echo "MUTATION_TARGET is components or policy, not $target" >&2
    exit 2
    ;;
esac
package=${modules_dir#src/}
for name in "${linked[@]}"; do
  ln -sfn "$root/$name" "$stage/$name"
done
cd "$stage"

if [ "${1:-}" = show ]; then
  if [ -z "${2:-}" ]; then
    echo "usage: scripts/mutation.sh show <mutant name>" >&2
    exit 2
  fi
  exec "$VENV/bin/mutmut" show "$2"
fi
if [ "${MUTATION_FRESH:-0}" = 1 ]; then
  rm -rf mutants
fi
patterns=()
for module in "$@"; do
  if [ ! -f "$modules_dir/$module.py" ]; then
    echo "no module $modules_dir/$module.py" >&2
    exit 2
  fi
  patterns+=("$package.$module.*")
done
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  if [ ! -d "mutants/$modules_dir" ]; then
    # Makes the mutants without testing any (mutmut then stops: nothing matches): the sample is drawn from them.
    "$VENV/bin/mutmut" run "$package.no-such-module.*" >/dev/null 2>&1 || true
  fi
  # An assignment, not a process substitution: under set -e a failing draw stops here instead of leaving an empty
  # list, which mutmut would read as every mutant.
  drawn=$("$VENV/bin/python" "$root/scripts/mutation_summary.py" --target "$target" \
    --sample "$MUTATION_SAMPLE" --seed "${MUTATION_SEED:-14}" "$@")
  mapfile -t patterns <<<"$drawn"
  if [ -z "$drawn" ]; then
    echo "the sample is empty: no mutants in build/ for $target (did making them fail? run mutmut in $stage)" >&2
    exit 1
  fi
fi

started=$(date +%s)
# Survivors are no failure of the run (the summary lists them); a failing unmutated test run is.
"$VENV/bin/mutmut" run --max-children "${MUTATION_CHILDREN:-1}" "${patterns[@]}"
echo "== mutation run took $(($(date +%s) - started)) s"
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  "$VENV/bin/python" "$root/scripts/mutation_summary.py" --target "$target" --report --sample "$MUTATION_SAMPLE" \
    --seed "${MUTATION_SEED:-14}" "$@"
else
  "$VENV/bin/python" "$root/scripts/mutation_summary.py" --target "$target" "$@"
fi
