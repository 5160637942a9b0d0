"""``scripts/demo.sh``, the README's demo for someone with no clusters, run as a newcomer runs it (``--once``: up, show,
destroy), on servers of its own.

What a newcomer reads first must be trustworthy: Pulumi laid out as a user's machine holds it (the language hosts
beside the CLI, the providers in the plugin cache at the versions the SDKs ask for), so the CLI has nothing to warn
about: no "using pulumi-language-python from $PATH", no "resource plugin kubernetes is expected to have version".
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.pulumi_cli import ROOT, warning_lines
from lab.scenarios import CLUSTER

DEMO_TIMEOUT_SECONDS = 900


def test_the_demo_registers_and_destroys_with_nothing_to_wonder_about(tools_bin: Path, tmp_path: Path) -> None:
    env = {**os.environ, "GLOO_DEMO_DIR": str(tmp_path / "demo"), "GLOO_E2E_CACHE": str(tools_bin.parent)}
    env.pop("KUBECONFIG", None)
    demo = subprocess.run(
        ["bash", "scripts/demo.sh", "--once"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-12000:]
    assert f"== registered {CLUSTER} with the simulated management plane" in output, output[-12000:]
    up, destroy = output.split("== pulumi destroy", 1)
    assert "Resources:" in up and "created" in up, up[-6000:]
    assert "deleted" in destroy, destroy[-6000:]
    assert not warning_lines(output), output
