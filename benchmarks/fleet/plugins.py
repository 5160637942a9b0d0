"""The plugin folder of the fleet benchmark: the real-engine suite's, with the command provider stand-in served wider.

``lab/command_provider.py`` (the one double of the real-engine suite, see its docstring for why) serves gRPC
from a pool of 8 threads. Each ``command:local:Command`` create and each ``command:local:run`` invoke holds one of
them for as long as its script runs (the certificate wait, for the whole wait), so with more than 8 registrations
the stand-in would queue scripts that the real provider runs at once: pulumi-command is a Go gRPC server, which
serves every request in a goroutine of its own, with no such limit. The fleet benchmark measures with the stand-in
served by :data:`WORKERS` threads (``--command-workers`` of ``python -m benchmarks.fleet`` changes it; 8 is the
suite's).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from lab.pulumi_cli import plugin_folder as suite_plugin_folder

WORKERS = 256
SHIM = "pulumi-resource-command"
KUBERNETES = "pulumi-resource-kubernetes"
PROVIDER_ENV = "FLEET_PROVIDER_ENV"
"""Settings (``NAME=VALUE ...``) for the kubernetes provider processes alone, when the plugin folder has the shim
(``provider_env=True``): the ``provider-env=`` variants, e.g. a Go memory limit that the engine must not get."""


def command_provider_command(workers: int) -> str:
    """The shell words that serve the stand-in (``lab.command_provider.main``) with ``workers`` threads. The fresh
    interpreter imports the stand-in alone (``lab``'s ``__init__`` imports nothing): the provider's start-up time and
    memory are part of what the benchmark measures, and this package's imports would add to both."""
    code = f"import sys; from lab.command_provider import main; main(sys.argv, {int(workers)})"
    return f'"{sys.executable}" -P -c {shlex.quote(code)}'


def plugin_folder(tools_bin: Path, folder: Path, workers: int = WORKERS, *, provider_env: bool = False) -> Path:
    """``lab.pulumi_cli.plugin_folder``, with the command provider stand-in served by ``workers`` threads; with
    ``provider_env``, the kubernetes provider started through a shim that adds ``$FLEET_PROVIDER_ENV`` to its
    environment (``env`` then ``exec``: the process is the provider's binary, as the samples need it)."""
    made = suite_plugin_folder(tools_bin, folder)
    shim = made / SHIM
    shim.unlink(missing_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {command_provider_command(workers)} "$@"\n')
    shim.chmod(0o755)
    if provider_env:
        kubernetes = made / KUBERNETES
        real = kubernetes.resolve()
        kubernetes.unlink()
        kubernetes.write_text(f'#!/bin/sh\n# shellcheck disable=SC2086\nexec env ${PROVIDER_ENV} "{real}" "$@"\n')
        kubernetes.chmod(0o755)
    return made
