"""Start-up: from interpreter start to the program's first resource registration, against an import-only baseline.

Each run is a fresh interpreter. The parent notes the time just before it starts the process; the worker's monitor
notes the time of the first RegisterResource after the stack's own (both ``time.monotonic()``, one clock for every
process on Linux).

* ``program``: the test harness (``lab/engine_double.py``), then ``__main__.py`` with a one-cluster stack on the mock
  runtime: importing ``gloo_mesh_registration``, reading and validating the stack config, the management Provider.
* ``baseline``: the same harness, then only an import of every ``pulumi_kubernetes`` / ``pulumi_command`` module that
  the program has loaded by the end of its run (taken from a program run with the same config), then the same first
  registration (a kubernetes Provider).

Both run with their compiled bytecode cached (in a private directory, ``PYTHONPYCACHEPREFIX``), as on every
``pulumi up`` after the first; a third column runs the program with no bytecode cache at all (every module of the
project compiled again, as under ``PYTHONDONTWRITEBYTECODE=1``).

Configurations: ``dev`` (stacks/Pulumi.dev.yaml: version and address discovered through the Istio ingress NodePort,
so the apps API is needed) and ``given`` (version and address given: no discovery read, no apps API).

    python -m benchmarks.startup              # 9 runs each
    python -m benchmarks.startup --quick      # one run each: the smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.benchlib import (
    FLEET_STACK_FILE,
    PROJECT,
    ROOT,
    emit_result,
    fleet_config,
    machine_summary,
    print_table,
    run_worker,
    summarize,
    verdict,
)

MODULE = "benchmarks.startup"
"""What ``run_worker`` starts: this benchmark again, in a fresh interpreter."""
CONFIGS = ("dev", "given")
TARGET = 1.1
SDK_PREFIXES = ("pulumi_kubernetes", "pulumi_command")


def _first_registration_monitor() -> Any:
    from lab.engine_double import FakeClusters, RecordingMonitor

    class FirstRegistration(RecordingMonitor):
        """Notes when the first resource other than the stack is registered; keeps nothing else."""

        first: float | None = None
        first_name = ""

        def _record(self, op: str, request: Any, properties: Any) -> None:
            if self.first is None and op == "register":
                self.first = time.monotonic()
                self.first_name = f"{request.type} {request.name}"

    return FirstRegistration(FakeClusters())


def _sdk_modules() -> dict[str, bool]:
    """The SDK modules really loaded (a lazily imported module never touched does not count) -> is a package."""
    return {
        name: hasattr(module, "__path__")
        for name, module in sorted(sys.modules.items())
        if name.split(".", 1)[0] in SDK_PREFIXES and type(module).__name__ != "_LazyModule"
    }


def _api_packages(modules: dict[str, bool]) -> list[str]:
    """The API packages among ``modules`` (``pulumi_kubernetes.core.v1``, ``pulumi_command.local``...), leaves only."""
    packages = {name for name, is_package in modules.items() if is_package and "." in name}
    return sorted(m for m in packages if not any(other.startswith(m + ".") for other in packages))


def worker_program(config: str) -> None:
    from lab.engine_double import run_main

    monitor = _first_registration_monitor()
    if config == "dev":
        run_main(ROOT / "stacks" / "Pulumi.dev.yaml", monitor=monitor)
    else:
        run_main(FLEET_STACK_FILE, config_override=fleet_config(1, discovery=False), monitor=monitor)
    emit_result(
        {"first": monitor.first, "first_name": monitor.first_name, "done": time.monotonic(), "modules": _sdk_modules()}
    )


def worker_baseline(modules_file: str) -> None:
    import importlib

    import yaml

    from lab.engine_double import run_program

    monitor = _first_registration_monitor()
    # The harness's share of run_main, which the program pays too: the project file and a stack file parsed.
    yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    for module in json.loads(Path(modules_file).read_text()):
        importlib.import_module(module)

    def program() -> None:
        import pulumi_kubernetes as k8s

        k8s.Provider("management", context="mgmt")

    run_program(program, monitor=monitor, project=PROJECT, stack="startup")
    emit_result({"first": monitor.first, "first_name": monitor.first_name, "done": time.monotonic()})


def _timed_worker(args: Sequence[str], env: dict[str, str] | None) -> dict[str, Any]:
    started = time.monotonic()
    result = run_worker(MODULE, args, env=env)
    result["started"] = started
    return result


def _bytecode_environments(prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """Compiled bytecode cached (in a private tree, as after a first ``pulumi up``), and none written at all."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    return {**base, "PYTHONPYCACHEPREFIX": prefix}, {**base, "PYTHONDONTWRITEBYTECODE": "1"}


def interpreter_only() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="runs per configuration and variant")
    parser.add_argument("--quick", action="store_true", help="one run each: the smoke test")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, value = args.worker
        (worker_program if kind == "program" else worker_baseline)(value)
        return 0

    repeats = 1 if args.quick else args.repeats
    print(machine_summary())
    rows = []
    bare = summarize([interpreter_only() for _ in range(repeats)])
    scratch = Path(tempfile.mkdtemp(prefix="gm-startup-"))
    cached, uncached = _bytecode_environments(str(scratch / "pycache"))
    for config in CONFIGS:
        # Which SDK modules the program needs with this config: those it has loaded by the end of a run.
        probe = run_worker(MODULE, ["program", config], env=cached)  # also fills the bytecode cache
        modules_file = scratch / f"modules-{config}.json"
        modules_file.write_text(json.dumps(probe["modules"]))
        run_worker(MODULE, ["baseline", str(modules_file)], env=cached)
        program_first, program_done, baseline_first, ratios, cold_first = [], [], [], [], []
        for repeat in range(repeats):
            if repeat % 2:  # alternate which of the two runs first
                baseline = _timed_worker(["baseline", str(modules_file)], cached)
                program = _timed_worker(["program", config], cached)
            else:
                program = _timed_worker(["program", config], cached)
                baseline = _timed_worker(["baseline", str(modules_file)], cached)
            cold = _timed_worker(["program", config], uncached)
            program_first.append(program["first"] - program["started"])
            program_done.append(program["done"] - program["started"])
            baseline_first.append(baseline["first"] - baseline["started"])
            cold_first.append(cold["first"] - cold["started"])
            ratios.append(program_first[-1] / baseline_first[-1])
        ratio = summarize(ratios)
        rows.append(
            [
                config,
                summarize(baseline_first).cell(),
                summarize(program_first).cell(),
                ratio.cell(2),
                verdict(ratio.median <= TARGET),
                summarize(program_done).cell(),
                summarize(cold_first).cell(),
                probe["first_name"],
                ", ".join(_api_packages(probe["modules"])),
            ]
        )
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\ninterpreter alone (python -c pass): {bare.cell()} s")
    print_table(
        f"Start-up, interpreter start to first resource registration (median ±spread of {repeats} runs)",
        [
            "config",
            "baseline s",
            "program s",
            "program/baseline",
            f"target <= {TARGET}",
            "program done s",
            "program s, no bytecode cache",
            "first registration",
            "SDK modules the program loads",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
