"""``benchmarks/wait_latency.py --quick`` runs against a real API server and prints tables of the promised shape.

Its smoke test lives here, not with the other benchmarks' (``tests/test_benchmarks_smoke.py``), because it needs the
real tools: the benchmark starts a control plane of its own (``lab.cluster.control_planes``) from the folder
the suite's tools come from. Only the shape is checked, and what holds on any machine: the project's wait watches,
``kubectl wait`` polls, nothing polls with LISTs, and the relay secrets read GETs its two secrets.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchtables import assert_median_spread, table

from lab.pulumi_cli import ROOT


def test_wait_latency_quick_prints_its_tables(tools_bin: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.wait_latency", "--quick", "--bin-dir", str(tools_bin)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"benchmarks/wait_latency.py failed:\n{result.stderr}\n{result.stdout}"
    out = result.stdout
    assert out.startswith("machine: ") and "kube-apiserver v1." in out
    rows = table(out, "Client-certificate wait")
    assert [row["method"] for row in rows] == ["watch", "kubectl wait", "poll 5 s"]
    for row in rows:
        assert_median_spread(
            row, "wait s", "requests while waiting", "requests/min", "detect latency s", "finish latency s"
        )
        assert re.match(r"^\d+ / \d+ / \d+$", row["watches / GETs / LISTs"])
        assert re.match(r"^\d+$", row["left running"])
    counts = {row["method"]: [int(n) for n in row["watches / GETs / LISTs"].split(" / ")] for row in rows}
    assert counts["watch"][0] >= 1 and counts["watch"][1] == 0, "the project's wait watches, it does not GET"
    assert counts["kubectl wait"][1] >= 1, "kubectl wait polls"
    assert all(lists == 0 for _, _, lists in counts.values())
    check = table(out, "Relay secrets read")
    assert_median_spread(check[0], "wall s", "CPU s (kubectl)", "requests")
    assert check[0]["secrets GETs / discovery"].startswith("2 / "), "one GET per relay secret"
