"""The fleet benchmark's agent wait (``benchmarks/fleet/agent.py``), without servers: each namespace's wait is a
function of (seed, namespace) alone, within W x (1 - spread) .. W x (1 + spread); and a saved run's header says how
its agents answered (a run saved before they had a wait is the old run: W = 0, no Deployment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.fleet.agent import AgentSettings, drawn_wait

ROOT = Path(__file__).resolve().parents[1]
NAMESPACES = [f"gm-{prefix}{i:03d}" for prefix in "csp" for i in range(1, 51)]


def test_each_namespace_draws_the_same_wait_whatever_the_order() -> None:
    forward = {ns: drawn_wait(20, 0.5, 1, ns) for ns in NAMESPACES}
    backward = {ns: drawn_wait(20, 0.5, 1, ns) for ns in reversed(NAMESPACES)}
    assert forward == backward


def test_the_draw_is_the_same_in_another_process() -> None:
    """A string seed is hashed (SHA-512), not ``hash()``: PYTHONHASHSEED does not change the draw."""
    code = "from benchmarks.fleet.agent import drawn_wait; print(repr(drawn_wait(5, 0.5, 7, 'gm-c001')))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(other.stdout) == drawn_wait(5, 0.5, 7, "gm-c001")


@pytest.mark.parametrize(("wait", "spread"), [(20, 0.5), (5, 0.1), (2, 1.0), (3, 0.0)])
def test_waits_stay_within_the_spread_and_vary(wait: float, spread: float) -> None:
    waits = [drawn_wait(wait, spread, 1, ns) for ns in NAMESPACES]
    assert all(wait * (1 - spread) <= w <= wait * (1 + spread) for w in waits)
    if spread:
        assert len(set(waits)) == len(waits) // 3, "one draw per cluster number (c, s and p share theirs)"
        low, high = wait * (1 - spread), wait * (1 + spread)
        assert min(waits) < low + (high - low) / 4 and max(waits) > high - (high - low) / 4, "spread over the range"
    else:
        assert set(waits) == {wait}


def test_another_seed_draws_other_waits() -> None:
    assert [drawn_wait(20, 0.5, 1, ns) for ns in NAMESPACES] != [drawn_wait(20, 0.5, 2, ns) for ns in NAMESPACES]


def test_no_wait_is_no_wait() -> None:
    assert {drawn_wait(0, 0.5, seed, ns) for seed in (1, 2) for ns in NAMESPACES} == {0.0}


@pytest.mark.parametrize(("wait", "spread"), [(-1, 0.5), (5, -0.1), (5, 1.5), (float("nan"), 0.5)])
def test_a_wrong_wait_or_spread_is_refused(wait: float, spread: float) -> None:
    with pytest.raises(ValueError, match=r"wait_seconds must be >= 0 and spread within 0\.\.1"):
        drawn_wait(wait, spread, 1, "gm-c001")


def test_a_saved_header_says_how_the_agents_answered() -> None:
    settings = AgentSettings(5, 0.5, 3, deployment=True)
    again = AgentSettings.from_header({"agent": settings.record()})
    assert again == settings
    assert again.short() == "agent wait W = 5 s ±50 % (seed 3), agent Deployment awaited by Helm"
    old = AgentSettings.from_header({"machine": "...", "servers": "..."})
    assert (old.wait_seconds, old.deployment, old.old_run) == (0, False, True)
    assert old.short() == "agent wait W = 0, no agent Deployment (the old run)"
    assert old.line().startswith("agent: writes each client certificate at once (W = 0); the chart has no agent")


def test_the_program_and_the_scripts_meet_the_same_waits() -> None:
    """Cluster 7 of the program's fleet (``gm-c007``) and of the scripts' (``gm-s007``, ``gm-p007``) wait alike."""
    assert drawn_wait(20, 0.5, 1, "gm-c007") == drawn_wait(20, 0.5, 1, "gm-s007") == drawn_wait(20, 0.5, 1, "gm-p007")
    assert drawn_wait(20, 0.5, 1, "gm-c007") != drawn_wait(20, 0.5, 1, "gm-c008")
