"""The benchmark scripts (benchmarks/) run at their smallest size and print tables of the promised shape.

Only the shape is checked (tables, columns, numeric cells as "median ±spread", the ratios), never a timing. What is
checked beyond the shape holds on any machine: the flat baselines declare the same resources as the component
program, and the critical path does not grow with the number of clusters. The three scripts run at once to keep
the test short (they are mostly waiting on subprocesses). The fourth, ``benchmarks/wait_latency.py``, needs a real
API server and its kubectl: its smoke test is in the real-engine suite (``tests/e2e/test_benchmark_wait_latency.py``),
as is the fleet's (``benchmarks/fleet/``); here the fleet only prints its saved run again (``--from-json``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from benchtables import INTEGER, NUMBER, assert_median_spread, fleet_reprint, table

from lab.engine_double import COMPONENT, KUBERNETES_PROVIDER, ROOT

SCRIPTS = {
    "evaluation": ["--quick"],
    "startup": ["--quick"],
    "critical_path": ["--quick"],
}
FIRST_CLUSTER = {"dev": "remote-cluster", "given": "c001"}
"""The first cluster of each start-up configuration: ``stacks/Pulumi.dev.yaml``'s, and the generated fleet's."""


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, str]]:
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{name}", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in SCRIPTS.items()
    }
    results: dict[str, str] = {}
    try:
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=180)
            assert process.returncode == 0, f"benchmarks/{name}.py failed:\n{stderr}\n{stdout}"
            results[name] = stdout
        yield results
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_evaluation_tables_and_the_same_resources_as_the_flat_baselines(outputs: dict[str, str]) -> None:
    out = outputs["evaluation"]
    assert out.startswith("machine: ") and "cores" in out
    for variant in ("flat", "flat+reads"):
        assert f"baseline check, {variant} vs component (N=2):" in out
        assert (
            re.search(
                rf"baseline check, {re.escape(variant)} vs .*same types, names, providers, inputs and depends_on", out
            )
            is not None
        ), out
    columns = ["wall s", "CPU s", "GC s", "peak RSS MiB", "RSS growth MiB"]
    for variant in ("component", "flat+reads", "flat"):
        rows = table(out, f"Evaluation, {variant} ")
        assert [row["N"] for row in rows] == ["1"]
        assert_median_spread(rows[0], *columns)
        assert INTEGER.match(rows[0]["resources"])
        assert re.match(r"^\d+ \+ \d+ \+ \d+$", rows[0]["registered + read + invokes"])
        assert re.match(rf"^{NUMBER}$", rows[0]["wall ms/cluster"])
    assert_median_spread(table(out, "Evaluation, component ")[0], "validation ms")
    ratios = table(out, "Ratios")
    assert list(ratios[0]) == [
        "N",
        "component/flat wall",
        "component/flat CPU",
        "component/flat+reads wall",
        "flat+reads/flat wall",
        "component/flat wall excl. GC",
    ]
    assert_median_spread(ratios[0], *list(ratios[0])[1:])
    # The same registrations plus the component itself; the flat baseline leaves out the discovery reads and the
    # generation discovery (it knows what it installs). All three read the relay secrets through the one invoke.
    counts = {
        v: [int(c) for c in table(out, f"Evaluation, {v} ")[0]["registered + read + invokes"].split(" + ")]
        for v in ("component", "flat+reads", "flat")
    }
    assert counts["component"][0] == counts["flat"][0] + 1 == counts["flat+reads"][0] + 1
    assert counts["component"][1:] == counts["flat+reads"][1:]
    assert counts["flat"][1:] == [0, counts["component"][2] - 1]


def test_startup_table(outputs: dict[str, str]) -> None:
    out = outputs["startup"]
    assert re.search(rf"interpreter alone \(python -c pass\): {NUMBER} ±{NUMBER} s", out)
    rows = table(out, "Start-up")
    assert [row["config"] for row in rows] == ["dev", "given"]
    for row in rows:
        assert_median_spread(row, "baseline s", "program s", "program/baseline", "program done s")
        assert row["target <= 1.1"] in ("holds", "FAILS")
        # The program's first two declarations: the management Provider, then the first cluster's component. Which
        # of the two registrations reaches the engine first is the event loop's choice (the Provider's waits on its
        # inputs), and a loaded machine sees either; anything declared later would mean work before the first.
        assert row["first registration"] in (
            f"{KUBERNETES_PROVIDER} management",
            f"{COMPONENT} {FIRST_CLUSTER[row['config']]}",
        )
    modules = {row["config"]: row["SDK modules the program loads"] for row in rows}
    assert "pulumi_kubernetes.core.v1" in modules["given"]
    # Import a module only where it is used: the apps API only when the version must be discovered.
    assert "pulumi_kubernetes.apps.v1" in modules["dev"] and "pulumi_kubernetes.apps.v1" not in modules["given"]


def test_critical_path_is_the_same_for_one_and_two_clusters(outputs: dict[str, str]) -> None:
    out = outputs["critical_path"]
    rows = table(out, "Critical path")
    assert [row["N"] for row in rows] == ["1", "2"]
    for row in rows:
        assert INTEGER.match(row["steps in the graph"]) and INTEGER.match(row["critical path"])
        assert int(row["meshctl 7·N"]) == 7 * int(row["N"])
        assert re.match(rf"^{NUMBER}$", row["meshctl/this"])
        assert row["cross-cluster waits"] == "0"
    assert rows[0]["critical path"] == rows[1]["critical path"]
    assert "longest chain (N=1): " in out and "Target: critical path constant in N" in out and "holds" in out


def test_fleet_reprints_the_saved_run_as_benchmarks_md_shows_it() -> None:
    """The fleet benchmark needs real servers to measure (its smoke test is in the real-engine suite), but not to print
    a saved run: ``python -m benchmarks.fleet --from-json`` from the repository root prints the tables BENCHMARKS.md
    says it prints, so the package runs as documented and computes the saved figures as they were published."""
    saved = "benchmarks/results/fleet.json"
    printed = fleet_reprint(saved)
    lines = printed.splitlines()
    assert lines[0] == f"re-printed from {saved}"
    assert lines[3].startswith("agent: writes each client certificate at once (W = 0)") and "the old run" in lines[3]
    assert [row["N"] for row in table(printed, "Fleet on the real engine")] == ["1", "5", "20", "50"]
    assert table(printed, "Where the time goes") and "Targets (issue 13)" in printed
    published = (ROOT / "BENCHMARKS.md").read_text()
    assert [line for line in lines[1:] if line not in published] == [], "a line BENCHMARKS.md does not show"


PUBLISHED_RUNS = sorted(p.name for p in (ROOT / "benchmarks" / "results").glob("fleet-*.json"))


@pytest.mark.parametrize("saved", PUBLISHED_RUNS)
def test_every_saved_fleet_run_prints_what_benchmarks_md_quotes_of_it(saved: str) -> None:
    """A figure in BENCHMARKS.md cannot drift from its raw data: where the text quotes a saved run (from its line
    ``re-printed from benchmarks/results/<file>`` to the next heading), every table row it shows is a row that
    ``--from-json`` prints for that file today. A saved run the text does not quote is at least named there."""
    printed = set(fleet_reprint(f"benchmarks/results/{saved}").splitlines())
    published = (ROOT / "BENCHMARKS.md").read_text()
    marker = f"re-printed from benchmarks/results/{saved}"
    blocks = [block.split("\n#", 1)[0] for block in published.split(marker)[1:]]
    if not blocks:
        assert f"benchmarks/results/{saved}" in published, f"{saved} is neither quoted nor named in BENCHMARKS.md"
        return
    for block in blocks:
        rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("|--")]
        assert rows, f"the quote of {saved} shows no table"
        assert [row for row in rows if row not in printed] == [], f"rows of {saved} that it does not print"
