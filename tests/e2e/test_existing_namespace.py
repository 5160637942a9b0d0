"""A cluster whose agent namespace already exists (``createNamespace: false``): the real NamespacePatch path.

The program labels the namespace by server-side apply and must leave it, and what else is in it, on destroy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import ControlPlanes
from .gloo import ChartRepository, ManagementPlane, SimulatedAgent
from .pulumi_cli import PulumiProject
from .registration_checks import get_json
from .test_real_engine import one_cluster_config

CLUSTER = "existing-ns-e2e"
NAMESPACE = "platform-agents"


@pytest.fixture(scope="module")
def agent(planes: ControlPlanes) -> Iterator[SimulatedAgent]:
    simulated = SimulatedAgent(planes, "remote", namespace=NAMESPACE, cluster_name=CLUSTER).start()
    yield simulated
    simulated.stop()


@pytest.fixture(scope="module")
def project(
    bin_dir: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    agent: SimulatedAgent,
) -> PulumiProject:
    planes.kubectl("remote", "create", "namespace", NAMESPACE)
    planes.kubectl("remote", "create", "configmap", "owned-by-someone-else", "-n", NAMESPACE, "--from-literal=a=b")
    config = one_cluster_config(planes, chart_repo, name=CLUSTER, namespace=NAMESPACE, createNamespace=False)
    cli = PulumiProject.create(bin_dir, e2e_dir, "existing", config)
    return cli


def test_up_labels_the_existing_namespace_by_server_side_apply(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("up", "--yes", "--skip-preview").check()
    namespace = get_json(planes, "remote", "namespace", NAMESPACE, "--show-managed-fields")
    assert namespace is not None
    assert namespace["metadata"]["labels"]["istio-injection"] == "disabled"
    managers = {entry["manager"] for entry in namespace["metadata"].get("managedFields", [])}
    assert any(m.startswith("pulumi") for m in managers), managers
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None
    assert get_json(planes, "remote", "secret", "relay-identity-token-secret", "-n", NAMESPACE) is None
    project.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()


def test_destroy_keeps_the_namespace_and_what_else_is_in_it(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "remote", "namespace", NAMESPACE) is not None
    assert get_json(planes, "remote", "configmap", "owned-by-someone-else", "-n", NAMESPACE) is not None
    for name in ("relay-root-tls-secret", "relay-identity-token-secret", "relay-client-tls-secret"):
        assert get_json(planes, "remote", "secret", name, "-n", NAMESPACE) is None
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", "gloo-mesh") is None
