"""Shared helpers of the benchmark scripts: paths, fresh-subprocess workers, statistics, tables, the test fleet.

Every benchmark measures in fresh subprocesses (``python -m benchmarks.<script> --worker ...``, from the repository
root) so that import caches, the Pulumi SDK's global state and the memory high-water mark of one measurement never
leak into the next. A worker prints one line ``BENCH-RESULT <json>``; the parent collects the repeats and prints the
median with its spread.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULT_PREFIX = "BENCH-RESULT "
PROJECT = "gloo-mesh-registration"
"""The project name in Pulumi.yaml: the prefix of the stack config keys."""
FLEET_STACK_FILE = ROOT / "stacks" / "Pulumi.fleet-example.yaml"
"""A stack file for run_main; the benchmarks replace both of its config keys with a generated fleet."""
RELAY_ADDRESS = "203.0.113.10:9900"
"""What discovery resolves against the test double's management cluster (LoadBalancer ingress + grpc port)."""
AGENT_VERSION = "1.1.6"
"""What discovery resolves against the test double's management cluster (enterprise-networking image tag)."""


def cluster_names(n: int) -> list[str]:
    return [f"c{i:03d}" for i in range(1, n + 1)]


def fleet_config(n: int, *, discovery: bool) -> dict[str, Any]:
    """Stack config (``project:key`` -> value) of a fleet of ``n`` clusters registered with one management plane.

    With ``discovery`` the agent version and the relay address are read from the management cluster (as in
    ``stacks/Pulumi.fleet-example.yaml``); without, they are given, so no Deployment or Service is read.
    """
    management: dict[str, Any] = {"context": "mgmt", "namespace": "gloo-mesh"}
    if not discovery:
        management |= {"relayServerAddress": RELAY_ADDRESS, "agentVersion": AGENT_VERSION}
    clusters = [{"name": name, "context": f"ctx-{name}"} for name in cluster_names(n)]
    return {f"{PROJECT}:management": management, f"{PROJECT}:clusters": clusters}


# -- workers ----------------------------------------------------------------------------------------------------


def emit_result(result: Mapping[str, Any]) -> None:
    """A worker's answer to its parent: one line on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_worker(
    module: str, args: Sequence[str], *, timeout: float = 600, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python -m module --worker args...`` from the repository root in a fresh interpreter and return the
    result it emitted.

    By default no bytecode is written (nothing lands in the work tree); ``env`` replaces such settings.
    """
    completed = subprocess.run(
        [sys.executable, "-m", module, "--worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(env) if env is not None else {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(
        f"worker {module} {' '.join(args)} failed (exit {completed.returncode}):\n"
        f"{completed.stderr[-4000:]}{completed.stdout[-2000:]}"
    )


# -- statistics and tables ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median of repeated runs with its spread (half the range: the runs lie within median ± spread, roughly)."""

    median: float
    low: float
    high: float
    runs: int

    @property
    def spread(self) -> float:
        return (self.high - self.low) / 2

    def cell(self, digits: int = 3) -> str:
        return f"{self.median:.{digits}f} ±{self.spread:.{digits}f}"


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no runs to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table (pastes into BENCHMARKS.md as is), with a title line before it."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print(f"\n{title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def verdict(holds: bool) -> str:
    return "holds" if holds else "FAILS"


def tools_folder(given: str | None) -> Path:
    """The folder of the real-engine tools built by scripts/e2e-tools.sh: ``given`` (``--bin-dir``),
    ``GLOO_E2E_BIN_DIR``, or what ``scripts/e2e-tools.sh --print-bin-dir`` answers (it builds what is missing)."""
    if given:
        return Path(given)
    if os.environ.get("GLOO_E2E_BIN_DIR"):
        return Path(os.environ["GLOO_E2E_BIN_DIR"])
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "e2e-tools.sh"), "--print-bin-dir"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"error: scripts/e2e-tools.sh could not provide the tools:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


# -- the machine --------------------------------------------------------------------------------------------------


def machine_summary() -> str:
    """One line: cores, memory, Python and the Pulumi Python SDK packages the program imports.

    The SDK versions are labelled as such: the real-engine benchmarks run a CLI, engine and providers of other
    versions (they print those on a line of their own), which these numbers must not be mistaken for."""
    memory = "?"
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    versions = []
    for package in ("pulumi", "pulumi-kubernetes", "pulumi-command"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return (
        f"machine: {os.cpu_count()} cores, {memory} memory, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; Python SDKs: {', '.join(versions)}"
    )
