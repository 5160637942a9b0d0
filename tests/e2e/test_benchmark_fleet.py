"""``python -m benchmarks.fleet --quick --agent-wait 2`` registers 1 and 2 clusters on the real engine, with agents
that take time and the chart's agent Deployment awaited by Helm, printing the promised tables.

The smoke test of issue 13's benchmark (and of issue 23's agent that takes time): the script starts a control plane
of its own (``lab.cluster``) from the folder the suite's tools come from, runs the project's stack through the real
CLI and the guide's steps as shell scripts, and prints its tables. Only the shape is checked, and what holds on any
machine: every run registered what it should (the script fails otherwise), the management API server served the same
requests for a no-change preview of 1 and of 2 clusters, and the breakdown saw each kind of step; the agents' own
records show each certificate written no earlier than its drawn wait after they saw token and values, each wait drawn
by the rule (seed, namespace), and the release's agent Pod made Ready by them; the state on S3, directly and through
the latency proxy (every proxied run sent its requests through it); and ``--from-json`` prints the same tables again
from the saved runs alone. Never a timing of the product.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchtables import INTEGER, assert_median_spread, table

from benchmarks.fleet.agent import drawn_wait
from lab.pulumi_cli import ROOT

WAIT, SPREAD, SEED = 2.0, 0.5, 1
AGENT_POD = re.compile(r"^enterprise-agent-[a-z0-9]+-[a-z0-9]{5}$")
"""A Pod of the ``enterprise-agent`` Deployment: its ReplicaSet's name (Deployment and template hash) and a suffix."""


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
            "backend=s3",
            "backend=s3:rtt=5",
            "--agent-wait",
            str(WAIT),
            "--agent-spread",
            str(SPREAD),
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
    assert "\nagent: writes each client certificate W = 2 s ±50 % after it saw the token and the values" in out
    assert "agent wait W = 2 s ±50 % (seed 1), agent Deployment awaited by Helm)" in out
    assert_agents_waited_and_made_the_pods_ready(json.loads(saved.read_text()))
    waits = table(out, "The agents' drawn waits")
    assert [row["N"] for row in waits] == ["1", "2"]

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
    # backend=s3: the same runs with the state in a real S3 server; the benchmark fails a run of it that recorded no
    # update in the bucket (or, through the latency proxy, sent nothing through it).
    assert {row["change"] for row in changes} == {"--parallel 4", "state on S3", "state on S3, RTT 5 ms"}
    proxied = table(out, "The state on S3 a round trip away")  # --quick runs the variants at N = 2
    assert [(row["N"], row["run"]) for row in proxied] == [
        ("2", op) for op in ("up", "preview", "up no-change", "destroy")
    ]
    for row in proxied:
        assert row["RTT ms"] == "5" and int(row["round trips"].split(" ±")[0]) > 0, row

    assert "Targets (issue 23, agent wait W = 2 s" in out and "constant in N" in out
    assert "pulumi up (N=2) / sequential script = " in out and "pulumi up (N=2) / parallel script = " in out
    breakdown = {row["work"]: row for row in table(out, "Where the time goes")}
    for kind in ("Namespace create", "Helm release: Create (install)", "certificate wait (invoke)"):
        assert breakdown[kind]["count"] == "2", breakdown[kind]
    assert breakdown["kubectl check (invoke, once per run)"]["count"] == "1", "kubectl is checked once per run"
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


def assert_agents_waited_and_made_the_pods_ready(saved: dict[str, Any]) -> None:
    """From the agents' own records (the saved run): each registration of an ``up`` or a script had its certificate
    written, no earlier than the wait drawn for its namespace after the agent saw token and values, and the agent Pod
    of its release (the chart's ``enterprise-agent`` Deployment, which Helm's await waited for in the program) made
    Ready by the agent once it had written."""
    assert saved["agent"] == {"wait_seconds": WAIT, "spread": SPREAD, "seed": SEED, "deployment": True}
    registering = [
        r for r in saved["runs"] + saved["breakdown"] if r["op"] in ("up", "sequential script", "parallel script")
    ]
    assert registering and all(r["certificates"] == r["n"] == len(r["waits"]) for r in registering), registering
    answers = saved["answers"]
    assert len(answers) == sum(r["n"] for r in registering)
    for answer in answers:
        wait = answer["wait_seconds"]
        assert abs(wait - drawn_wait(WAIT, SPREAD, SEED, answer["namespace"])) < 1e-3, answer
        assert WAIT * (1 - SPREAD) <= wait <= WAIT * (1 + SPREAD), answer
        assert answer["written"] - answer["seen"] >= wait - 1e-3, f"written before its wait: {answer}"
        pods = answer["pods_ready"]
        assert len(pods) == 1 and all(AGENT_POD.match(name) for name in pods), answer
        assert all(at >= answer["written"] for at in pods.values()), f"a Pod Ready before the certificate: {answer}"
