"""The plugin folder of the fleet benchmark: the real-engine suite's, with the command provider stand-in served wider.

``lab/command_provider.py`` (the one double of the real-engine suite, see its docstring for why) serves gRPC
from a pool of 8 threads. Each ``command:local:Command`` create and each ``command:local:run`` invoke holds one of
them for as long as its script runs (the certificate wait, for the whole wait), so with more than 8 registrations
the stand-in would queue scripts that the real provider runs at once: pulumi-command is a Go gRPC server, which
serves every request in a goroutine of its own, with no such limit. The fleet benchmark measures with the stand-in
served by :data:`WORKERS` threads (``--command-workers`` of ``benchmarks/fleet.py`` changes it; 8 is the suite's).

    python benchmarks/fleet_plugins.py WORKERS [ENGINE_ADDRESS]   # what the shim runs: the stand-in, WORKERS wide
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 256
SHIM = "pulumi-resource-command"


def plugin_folder(tools_bin: Path, folder: Path, workers: int = WORKERS) -> Path:
    """``lab.pulumi_cli.plugin_folder``, with the command provider stand-in served by ``workers`` threads."""
    from lab.pulumi_cli import plugin_folder as suite_plugin_folder

    made = suite_plugin_folder(tools_bin, folder)
    shim = made / SHIM
    shim.unlink(missing_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {int(workers)} "$@"\n')
    shim.chmod(0o755)
    return made


def serve(workers: int, argv: list[str]) -> None:
    """``lab.command_provider.main`` with ``workers`` threads instead of 8."""
    from lab.command_provider import main

    main([str(Path(__file__)), *argv], workers)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
