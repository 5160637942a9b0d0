"""``python -m benchmarks.fleet --quick`` registers 1 and 2 clusters on the real engine, printing the promised tables.

The smoke test of issue 13's benchmark: the script starts a control plane of its own (``lab.cluster``) from the
folder the suite's tools come from, runs the project's stack through the real CLI and the guide's steps as shell
scripts, and prints its tables. Only the shape is checked, and what holds on any machine: every run registered what
it should (the script fails otherwise), the management API server served the same requests for a no-change preview
of 1 and of 2 clusters, and the breakdown saw each kind of step; and ``--from-json`` prints the same tables again
from the saved runs alone. Never a timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchtables import INTEGER, assert_median_spread, table

from lab.pulumi_cli import ROOT


def test_fleet_quick_prints_its_tables(tools_bin: Path, tmp_path: Path) -> None:
    saved = tmp_path / "fleet.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fleet",
            "--quick",
            "--variants",
            "parallel=4",
            "--bin-dir",
            str(tools_bin),
            "--json",
            str(saved),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"python -m benchmarks.fleet failed:\n{result.stderr[-6000:]}\n{result.stdout[-3000:]}"
    )
    out = result.stdout
    assert out.startswith("machine: ") and "servers: 1 management + 2 remote kube-apiservers v1." in out

    times = table(out, "Fleet on the real engine")
    assert [row["N"] for row in times] == ["1", "2"]
    for row in times:
        assert_median_spread(
            row, "up from empty", "preview no-change", "up no-change", "destroy", "sequential script", "parallel script"
        )

    ratios = table(out, "Ratios, per repeat")
    for row in ratios:
        assert_median_spread(row, "up / sequential script", "up / parallel script", "up no-change / up")

    requests = table(out, "Requests during a no-change preview")
    assert [row["N"] for row in requests] == ["1", "2"]
    assert requests[0]["management: namespaced"] == requests[1]["management: namespaced"]
    assert "secrets GET 2" in requests[0]["management: by resource and verb (one run)"], "one read per relay secret"

    assert_median_spread(table(out, "CPU seconds per cluster")[0], "up: client", "sequential script: client")
    changes = table(out, "Changes measured against the defaults")
    assert {row["change"] for row in changes} == {"--parallel 4"}

    assert "Targets (issue 13)" in out and "constant in N" in out
    breakdown = {row["work"]: row for row in table(out, "Where the time goes")}
    for kind in ("Namespace create", "Helm release: Create (install)", "certificate wait (invoke)"):
        assert breakdown[kind]["count"] == "2", breakdown[kind]
    assert INTEGER.match(breakdown["checkpoint writes (state file)"]["count"])
    assert table(out, "CPU seconds by process")

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fleet",
            "--from-json",
            str(saved),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines()[1:] == out.splitlines(), "the saved run prints the tables it printed"
