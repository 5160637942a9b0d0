"""A cluster whose agent namespace already exists (``createNamespace: false``): the real NamespacePatch path.

The program labels the namespace by server-side apply and must leave it, and what else is in it, on destroy.
"""

from __future__ import annotations

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import ManagementPlane, SimulatedAgent
from lab.pulumi_cli import PulumiProject
from lab.registration_checks import get_json
from lab.scenarios import Lab

CLUSTER = "existing-ns-e2e"
NAMESPACE = "platform-agents"


@pytest.fixture(scope="module")
def project(lab: Lab, management_plane: ManagementPlane, agent: SimulatedAgent) -> PulumiProject:
    lab.planes.kubectl("remote", "create", "namespace", NAMESPACE)
    lab.planes.kubectl("remote", "create", "configmap", "owned-by-someone-else", "-n", NAMESPACE, "--from-literal=a=b")
    return lab.project("existing", lab.one_cluster_config(name=CLUSTER, namespace=NAMESPACE, createNamespace=False))


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
