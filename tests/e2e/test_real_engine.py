"""The main job for real: the real ``pulumi`` CLI and engine, the real kubernetes provider and Helm, real API servers.

One stack goes through its life in order: preview on an empty stack, up, a second up and a refresh with no
changes, the policy pack, destroy. After each step the servers themselves are asked what is there.
What is simulated (the Gloo management plane, its chart and its agent; the command provider) says so in its module.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import MGMT_NAMESPACE, VALUES_CONFIGMAP, ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import PulumiProject
from lab.registration_checks import assert_no_secret_in, get_json
from lab.scenarios import CLUSTER, CLUSTER_DOMAIN, REMOTE_NAMESPACE, Lab


@pytest.fixture(scope="module")
def project(lab: Lab, management_plane: ManagementPlane, agent: SimulatedAgent) -> PulumiProject:
    return lab.project("e2e", lab.one_cluster_config(clusterDomain=CLUSTER_DOMAIN))


def test_preview_on_an_empty_stack_shows_the_discovered_plan_and_creates_nothing(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane, chart_repo: ChartRepository
) -> None:
    result = project.run("preview", "--diff").check()
    # The provider's Check loads the chart in preview too: Helm read the local repository's index and the chart.
    assert "/index.yaml" in chart_repo.requests
    assert f"/enterprise-agent-{management_plane.agent_version}.tgz" in chart_repo.requests
    assert management_plane.agent_version in result.stdout
    assert management_plane.relay_address in result.stdout
    assert "kubernetes:helm.sh/v3:Release" in result.stdout
    assert_no_secret_in(result.output, management_plane, "the preview output")
    assert get_json(planes, "remote", "namespace", REMOTE_NAMESPACE) is None
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", MGMT_NAMESPACE) is None


def test_up_registers_the_cluster(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane, agent: SimulatedAgent
) -> None:
    result = project.run("up", "--yes", "--skip-preview").check()
    assert_no_secret_in(result.output, management_plane, "the up output")

    namespace = get_json(planes, "remote", "namespace", REMOTE_NAMESPACE)
    assert namespace is not None
    assert namespace["metadata"]["labels"]["istio-injection"] == "disabled"

    root_ca = get_json(planes, "remote", "secret", "relay-root-tls-secret", "-n", REMOTE_NAMESPACE)
    assert root_ca is not None
    assert set(root_ca["data"]) == {"ca.crt"}
    assert base64.b64decode(root_ca["data"]["ca.crt"]).decode() == management_plane.ca_crt

    assert get_json(planes, "remote", "secret", "relay-identity-token-secret", "-n", REMOTE_NAMESPACE) is None
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", REMOTE_NAMESPACE) is not None
    assert agent.certificates_written == 1

    rendered = get_json(planes, "remote", "configmap", VALUES_CONFIGMAP, "-n", REMOTE_NAMESPACE)
    assert rendered is not None
    assert rendered["data"]["cluster"] == CLUSTER
    assert rendered["data"]["serverAddress"] == management_plane.relay_address
    assert rendered["data"]["authority"] == "enterprise-networking.gloo-mesh"
    assert json.loads(rendered["data"]["tokenSecret"]) == {
        "name": "relay-identity-token-secret",
        "namespace": REMOTE_NAMESPACE,
        "key": "token",
    }
    assert json.loads(rendered["data"]["rootTlsSecret"])["name"] == "relay-root-tls-secret"

    helm = [str(planes.bin_dir / "helm"), "--kubeconfig", str(planes.kubeconfig)]
    listed = subprocess.run(
        [*helm, "--kube-context", planes.clusters["remote"].context, "list", "-n", REMOTE_NAMESPACE, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    releases = json.loads(listed.stdout)
    assert [(r["name"], r["chart"], r["status"]) for r in releases] == [
        ("enterprise-agent", f"enterprise-agent-{management_plane.agent_version}", "deployed")
    ]

    cluster = get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", MGMT_NAMESPACE)
    assert cluster is not None
    assert cluster["spec"]["clusterDomain"] == CLUSTER_DOMAIN

    outputs = project.outputs()
    assert outputs["clusters"][CLUSTER] == {
        "relayServerAddress": management_plane.relay_address,
        "agentVersion": management_plane.agent_version,
        "remoteNamespace": REMOTE_NAMESPACE,
        "releaseStatus": "deployed",
        "clientCertificateIssued": True,
    }


def test_state_holds_no_secret_in_plain_text(project: PulumiProject, management_plane: ManagementPlane) -> None:
    assert_no_secret_in(project.export(), management_plane, "the exported state")


def test_state_holds_no_key_of_the_management_ca_secret_but_ca_crt(
    project: PulumiProject, management_plane: ManagementPlane
) -> None:
    """Found by e2e (issue 9, defect 1): a ``Secret.get`` read put the whole management secret, the CA's private key
    included, into the state. ca.crt and the token are now read by kubectl in an invoke, which the engine does not
    store; the CA copy and the token placement hold them, encrypted."""
    revealed = project.export(show_secrets=True)
    for value in (management_plane.ca_key, management_plane.tls_crt):
        assert base64.b64encode(value.encode()).decode() not in revealed
        assert value.strip().splitlines()[1] not in revealed
    assert '"tls.key"' not in revealed and '"tls.crt"' not in revealed
    assert base64.b64encode(management_plane.ca_crt.encode()).decode() in revealed  # the copy, as it should be


def test_a_second_up_and_a_refresh_change_nothing_and_do_not_put_the_token_back(
    project: PulumiProject, planes: ControlPlanes
) -> None:
    project.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()
    project.run("up", "--yes", "--skip-preview", "--refresh", "--expect-no-changes").check()
    assert get_json(planes, "remote", "secret", "relay-identity-token-secret", "-n", REMOTE_NAMESPACE) is None


def test_destroy_removes_the_registration_and_keeps_what_the_program_did_not_create(
    project: PulumiProject, planes: ControlPlanes
) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", MGMT_NAMESPACE) is None
    for name in ("relay-identity-token-secret", "relay-client-tls-secret", "relay-root-tls-secret"):
        assert get_json(planes, "remote", "secret", name, "-n", REMOTE_NAMESPACE) is None
    assert get_json(planes, "mgmt", "crd", "kubernetesclusters.multicluster.solo.io") is not None
    for name in ("relay-root-tls-secret", "relay-identity-token-secret"):
        assert get_json(planes, "mgmt", "secret", name, "-n", MGMT_NAMESPACE) is not None
