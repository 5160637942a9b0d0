"""Per-module mutation score from mutmut's results (scripts/mutation.sh), and the sample to run.

Run in scripts/mutation.sh's folder, build/mutation/. ``mutation_summary.py [module ...]``: for each module of the
package (all when none is named), the mutants tested, killed (a test failed, or the mutant made the tests hang until
mutmut's timeout), survived, and the name of every survivor. ``mutation_summary.py --sample N --seed S module ...``:
prints N mutant names per module, the same for the same seed, for ``mutmut run`` to test a sample of a module instead of
all of it; with ``--report``, the summary of that sample only.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code
from scipy.stats import binomtest

MUTANTS = Path("mutants")
PACKAGES = {"components": Path("src") / "gloo_mesh_registration", "policy": Path("policy")}
"""Where each target's modules are in mutmut's copy (scripts/mutation.sh, MUTATION_TARGET)."""


def results(package: Path, module: str, only: frozenset[str] | None = None) -> dict[str, int | None]:
    meta = MUTANTS / package / f"{module}.py.meta"
    if not meta.exists():
        return {}
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: code for name, code in exit_codes.items() if only is None or name in only}


def modules(package: Path, named: list[str]) -> list[str]:
    return named or sorted(p.name.removesuffix(".py.meta") for p in (MUTANTS / package).glob("*.py.meta"))


def sample_size(size: str, population: int) -> int:
    """``size`` is a count per module (``16``) or a share of each module (``6%``, at least one mutant): a share draws
    every module in proportion to its mutants, so the sample's score estimates the score of the whole package."""
    if size.endswith("%"):
        return min(population, max(1, math.ceil(population * float(size[:-1]) / 100)))
    return min(population, int(size))


def sample(package: Path, named: list[str], size: str, seed: int) -> list[str]:
    chosen: list[str] = []
    for module in named:
        names = sorted(results(package, module))
        chosen += sorted(random.Random(f"{seed}:{module}").sample(names, sample_size(size, len(names))))
    return chosen


def killed_share(dead: int, tested: int) -> str:
    """The killed share with its 95 % confidence interval (Wilson score, scipy): what a random sample says of the
    package's mutants as a whole."""
    if not tested:
        return "-"
    interval = binomtest(dead, tested).proportion_ci(confidence_level=0.95, method="wilson")
    return f"{100 * dead / tested:.1f} % (95 % CI {100 * interval.low:.1f} to {100 * interval.high:.1f} %)"


def summary(package: Path, named: list[str], only: frozenset[str] | None = None) -> str:
    lines = [f"{'module':<18} {'tested':>6} {'killed':>6} {'timeout':>7} {'survived':>8} {'untested':>8}  score"]
    survivors: list[str] = []
    totals = Counter[str]()
    for module in modules(package, named):
        found = results(package, module, only)
        status = Counter(status_by_exit_code[code] for code in found.values())
        tested = sum(n for s, n in status.items() if s != "not checked")
        dead = status["killed"] + status["timeout"]
        score = f"{100 * dead / tested:.0f} %" if tested else "-"
        lines.append(
            f"{module:<18} {tested:>6} {status['killed']:>6} {status['timeout']:>7} {status['survived']:>8} "
            f"{status['not checked']:>8}  {score}"
        )
        other = {s: n for s, n in status.items() if s not in ("killed", "timeout", "survived", "not checked")}
        if other:
            lines.append(f"{'':<18} also: {other}")
        survivors += [name for name, code in sorted(found.items()) if status_by_exit_code[code] == "survived"]
        totals.update(status)
    tested = sum(n for s, n in totals.items() if s != "not checked")
    lines += ["", f"all modules: {tested} tested, killed {killed_share(totals['killed'] + totals['timeout'], tested)}"]
    lines += ["", f"surviving mutants ({len(survivors)}; scripts/mutation.sh show <name> shows the change):"]
    lines += [f"  {name}" for name in survivors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--sample", default="", help="print this many mutant names per module (N, or P%% of each)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--report", action="store_true", help="with --sample: the summary of that sample")
    parser.add_argument("--target", choices=sorted(PACKAGES), default="components", help="whose mutants")
    options = parser.parse_args()
    package = PACKAGES[options.target]
    chosen = modules(package, options.modules)
    if options.sample and not options.report:
        print("\n".join(sample(package, chosen, options.sample, options.seed)))
    elif options.sample:
        print(summary(package, options.modules, frozenset(sample(package, chosen, options.sample, options.seed))))
    else:
        print(summary(package, options.modules))


if __name__ == "__main__":
    main()
