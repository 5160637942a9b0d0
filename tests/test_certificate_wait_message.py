"""The certificate wait's timeout message, as the script a registration sends prints it.

The script runs as the registration hands it to pulumi-command (the invoke's interpreter and verb), against a kubectl
stand-in that answers as a cluster where the agent never gets its certificate; the real kubectl runs it in
tests/e2e/test_lifecycle_kubectl.py. What is checked here is which agent the message tells the user to read.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from builders import registration_args

from gloo_mesh_registration import RemoteClusterRegistration
from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE
from lab.engine_double import FakeClusters, plain, run_program

KUBECTL_STAND_IN = """\
#!/bin/sh
# A cluster where the agent never gets its client certificate: no secret is ever found, every write succeeds.
case "$*" in
  *"version --client"*) echo '{"clientVersion": {"gitVersion": "v1.31.0"}}' ;;
  *apply*) cat >/dev/null ;;
  *"get --raw"*) sleep 1 ;;
esac
exit 0
"""


@pytest.mark.parametrize(
    ("platform", "deployment"),
    [(False, "enterprise-agent"), (True, "gloo-mesh-agent")],
)
def test_the_timeout_message_names_the_generations_agent_deployment(
    tmp_path: Path, platform: bool, deployment: str
) -> None:
    """Solo's 2.x agent Deployment is ``gloo-mesh-agent`` (solo-io/workshops ``gloo-mesh/enterprise/2-9/default/
    README.md`` at 01c2f6ee37f6: ``kubectl -n gloo-mesh rollout restart deploy gloo-mesh-agent`` on a workload
    cluster); 1.x's is ``enterprise-agent``. A 2.x user told to read ``deploy/enterprise-agent`` reads nothing."""
    args = registration_args("workload-1", "mgmt", "workload-1", client_cert_timeout_seconds=1)
    recorded = run_program(lambda: RemoteClusterRegistration("workload-1", args), FakeClusters(platform=platform))
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    step = plain(wait.args)
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(KUBECTL_STAND_IN)
    kubectl.chmod(0o755)
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECTL": str(kubectl), **step["environment"]}
    ran = subprocess.run(
        [*step["interpreter"], ENSURE_CERTIFICATE],
        input="{}",
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1, ran.stderr
    assert "error: cluster workload-1: the agent got no client certificate" in ran.stderr
    assert f"Check: kubectl logs deploy/{deployment} -n gloo-mesh on the remote cluster." in ran.stderr
