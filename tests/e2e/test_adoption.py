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

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import ControlPlanes
from .gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane, SimulatedAgent
from .observe import ApiClient, SecretWatch
from .pulumi_cli import ROOT, PulumiProject, project_copy
from .registration_checks import assert_adoption_preview, get_json
from .test_real_engine import one_cluster_config

CLUSTER = "adopt-e2e"
NAMESPACE = "adopt-agents"
STACK = "adopt"
CLUSTERS_PATH = f"/apis/multicluster.solo.io/v1alpha1/namespaces/{MGMT_NAMESPACE}/kubernetesclusters"

GUIDE_STEPS = """\
set -eu
k_mgmt() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$MGMT" "$@"; }
k_remote() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$REMOTE" "$@"; }
k_remote create namespace "$NS"
k_mgmt get secret relay-root-tls-secret -n gloo-mesh -o jsonpath='{.data.ca\\.crt}' | base64 -d > "$WORK/ca.crt"
k_remote create secret generic relay-root-tls-secret -n "$NS" --from-file=ca.crt="$WORK/ca.crt"
k_mgmt get secret relay-identity-token-secret -n gloo-mesh -o jsonpath='{.data.token}' | base64 -d > "$WORK/token"
k_remote create secret generic relay-identity-token-secret -n "$NS" --from-file=token="$WORK/token"
helm --kubeconfig "$KUBECONFIG_FILE" --kube-context "$REMOTE" install enterprise-agent enterprise-agent \\
  --repo "$REPO" --version "$VERSION" -n "$NS" \\
  --set relay.serverAddress="$RELAY" --set relay.authority=enterprise-networking.gloo-mesh \\
  --set relay.cluster="$CLUSTER" --set relay.rootTlsSecret.name=relay-root-tls-secret \\
  --set relay.tokenSecret.name=relay-identity-token-secret
k_mgmt apply -f - <<EOF
apiVersion: multicluster.solo.io/v1alpha1
kind: KubernetesCluster
metadata:
  name: $CLUSTER
  namespace: gloo-mesh
spec:
  clusterDomain: cluster.local
EOF
k_remote wait --for=create secret/relay-client-tls-secret -n "$NS" --timeout=120s
k_remote delete secret relay-identity-token-secret -n "$NS"
"""


@pytest.fixture(scope="module")
def agent(planes: ControlPlanes) -> Iterator[SimulatedAgent]:
    simulated = SimulatedAgent(planes, "remote", namespace=NAMESPACE, cluster_name=CLUSTER).start()
    yield simulated
    simulated.stop()


@pytest.fixture(scope="module")
def registered_by_hand(
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    agent: SimulatedAgent,
    e2e_dir: Path,
) -> None:
    work = e2e_dir / "guide-steps"
    work.mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": f"{planes.bin_dir}:/usr/bin:/bin",
        "KUBECONFIG_FILE": str(planes.kubeconfig),
        "MGMT": planes.clusters["mgmt"].context,
        "REMOTE": planes.clusters["remote"].context,
        "NS": NAMESPACE,
        "CLUSTER": CLUSTER,
        "REPO": chart_repo.url,
        "VERSION": management_plane.agent_version,
        "RELAY": management_plane.relay_address,
        "WORK": str(work),
        "HOME": str(work),
    }
    done = subprocess.run(["/bin/sh", "-c", GUIDE_STEPS], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None


@pytest.fixture(scope="module")
def project(
    bin_dir: Path, e2e_dir: Path, planes: ControlPlanes, chart_repo: ChartRepository, registered_by_hand: None
) -> PulumiProject:
    config = one_cluster_config(planes, chart_repo, name=CLUSTER, namespace=NAMESPACE, adopt=True)
    cli = PulumiProject.create(bin_dir, e2e_dir, STACK, config)
    return cli


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
