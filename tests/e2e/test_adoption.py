"""Taking over a cluster registered by the guide's Helm steps, with the real engine (issue 10, scenario 8).

The cluster is first registered by hand, as the registration guide's Helm path does it (a shell script with the
real kubectl and helm: namespace, the CA copy and the token copied from the management cluster, ``helm install`` of
the agent at the server's version, the KubernetesCluster applied, the wait for the client certificate, the token
deleted). Then a stack with ``adopt: true`` takes it over: the engine imports each object and updates it in place
to the stack's settings. Watches on the agent namespace's secrets (Helm keeps a release as secrets) and on the
KubernetesClusters show that neither the release nor the KubernetesCluster is ever missing. Without ``adopt`` the
next preview shows no change.
"""

from __future__ import annotations

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane, SimulatedAgent
from lab.guide import GUIDE_STEPS, register_by_hand
from lab.observe import ApiClient, SecretWatch
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import assert_adoption_preview, get_json
from lab.scenarios import Lab, one_cluster_config

CLUSTER = "adopt-e2e"
NAMESPACE = "adopt-agents"
STACK = "adopt"
CLUSTERS_PATH = f"/apis/multicluster.solo.io/v1alpha1/namespaces/{MGMT_NAMESPACE}/kubernetesclusters"


@pytest.fixture(scope="module")
def registered_by_hand(lab: Lab, management_plane: ManagementPlane, agent: SimulatedAgent) -> None:
    planes = lab.planes
    register_by_hand(lab, GUIDE_STEPS, "guide-steps", cluster=CLUSTER, namespace=NAMESPACE, plane=management_plane)
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None


@pytest.fixture(scope="module")
def project(lab: Lab, registered_by_hand: None) -> PulumiProject:
    return lab.project(STACK, lab.one_cluster_config(name=CLUSTER, namespace=NAMESPACE, adopt=True))


def test_the_preview_of_an_adoption_imports_and_creates_or_deletes_none_of_the_registration(
    project: PulumiProject,
) -> None:
    preview = project.run("preview", "--diff").check()
    assert_adoption_preview(preview.stdout, "kubernetes:multicluster.solo.io/v1alpha1:KubernetesCluster")


def test_up_takes_the_cluster_over_without_a_moment_of_missing_release_or_kubernetes_cluster(
    project: PulumiProject, planes: ControlPlanes, agent: SimulatedAgent
) -> None:
    certificates_before = agent.certificates_written
    with (
        SecretWatch(ApiClient(planes, "remote"), NAMESPACE) as secrets,
        SecretWatch(ApiClient(planes, "mgmt"), MGMT_NAMESPACE, path=CLUSTERS_PATH) as clusters,
    ):
        project.run("up", "--yes", "--skip-preview").check()
        deleted_secrets = [e.name for e in secrets.events() if e.type == "DELETED"]
        deleted_clusters = [e.name for e in clusters.events() if e.type == "DELETED"]
    assert not [name for name in deleted_secrets if name.startswith("sh.helm.release.v1.enterprise-agent")], (
        deleted_secrets
    )
    assert "relay-client-tls-secret" not in deleted_secrets, "the agent's identity was touched"
    assert "relay-root-tls-secret" not in deleted_secrets
    assert deleted_clusters == []
    assert agent.certificates_written == certificates_before, "the agent had to bootstrap again"
    # Updated in place to the stack's settings: the release's values and the stack's mark on the CA copy.
    root_ca = get_json(planes, "remote", "secret", "relay-root-tls-secret", "-n", NAMESPACE)
    assert root_ca is not None and set(root_ca["data"]) == {"ca.crt"}
    assert root_ca["metadata"]["labels"]["gloo-mesh-registration/stack"] == "gloo-mesh-registration.adopt"
    namespace = get_json(planes, "remote", "namespace", NAMESPACE)
    assert namespace is not None and namespace["metadata"]["labels"]["istio-injection"] == "disabled"
    outputs = project.outputs()["clusters"][CLUSTER]
    assert outputs["releaseStatus"] == "deployed" and outputs["clientCertificateIssued"] is True


def test_without_adopt_the_next_preview_and_up_change_nothing(
    project: PulumiProject, planes: ControlPlanes, chart_repo: ChartRepository
) -> None:
    config = one_cluster_config(planes, chart_repo, name=CLUSTER, namespace=NAMESPACE)
    project_copy(ROOT, project.project_dir, STACK, config)
    project.run("preview", "--diff", "--expect-no-changes").check()
    project.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()


def test_destroy_then_deregisters_it(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", MGMT_NAMESPACE) is None
    assert get_json(planes, "remote", "namespace", NAMESPACE) is None
