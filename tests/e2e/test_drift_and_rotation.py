"""Drift and a root CA rotation on a registered cluster, with the real engine.

Drift: someone deletes the KubernetesCluster on the management cluster, or uninstalls the agent release with helm.
A plain ``pulumi up`` compares the program with the state only, so it does not notice; ``pulumi up --refresh`` reads
the servers first and puts back what is gone.

Rotation: ``ca.crt`` of the management ``relay-root-tls-secret`` is replaced (the original is put back at the end of
the module, whatever happens: other modules compare against it). ``pulumi preview --diff`` must show the CA copy, and
only it, changing, without ever printing a CA; ``pulumi up`` copies the new one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from lab.cluster import CertificateAuthority, ControlPlanes
from lab.gloo import VALUES_CONFIGMAP, ManagementPlane, SimulatedAgent, root_ca_crt, set_root_ca_crt
from lab.pulumi_cli import PulumiProject, Result
from lab.registration_checks import (
    CLIENT_CERT,
    ROOT_CA,
    TOKEN,
    assert_registered,
    get_json,
    has_secret,
    helm_releases,
    helm_uninstall,
    kubernetes_cluster,
    planned_steps,
    secret,
    up,
)
from lab.scenarios import Lab

CLUSTER = "drift-e2e"
NAMESPACE = "drift-agents"
CLUSTER_DOMAIN = "drift.e2e.local"
STACK = "drift"


@pytest.fixture(scope="module")
def project(lab: Lab, management_plane: ManagementPlane, agent: SimulatedAgent) -> PulumiProject:
    return lab.project(STACK, lab.stack_config([lab.cluster_entry(CLUSTER, NAMESPACE, clusterDomain=CLUSTER_DOMAIN)]))


def _registered(planes: ControlPlanes, plane: ManagementPlane) -> None:
    assert_registered(planes, "remote", CLUSTER, NAMESPACE, plane.agent_version)
    cluster = kubernetes_cluster(planes, CLUSTER)
    assert cluster is not None and cluster["spec"] == {"clusterDomain": CLUSTER_DOMAIN}
    rendered = get_json(planes, "remote", "configmap", VALUES_CONFIGMAP, "-n", NAMESPACE)
    assert rendered is not None and rendered["data"]["cluster"] == CLUSTER


def _no_change(result: Result) -> None:
    assert "unchanged" in result.stdout and "created" not in result.stdout, result.stdout[-3000:]


def test_up_registers_the_cluster(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    up(project).check()
    _registered(planes, management_plane)


# -- drift ---------------------------------------------------------------------------------------------------------


def test_a_kubernetes_cluster_deleted_by_hand_goes_unnoticed_by_a_plain_up(
    project: PulumiProject, planes: ControlPlanes
) -> None:
    planes.kubectl("mgmt", "delete", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", "gloo-mesh")
    _no_change(up(project, "--expect-no-changes").check())
    assert kubernetes_cluster(planes, CLUSTER) is None


def test_up_refresh_restores_the_kubernetes_cluster(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = up(project, "--refresh").check()
    assert f"{CLUSTER}-kubernetes-cluster created" in result.stdout, result.stdout[-3000:]
    _registered(planes, management_plane)


def test_an_agent_release_uninstalled_by_hand_goes_unnoticed_by_a_plain_up(
    project: PulumiProject, planes: ControlPlanes
) -> None:
    helm_uninstall(planes, "remote", NAMESPACE)
    assert helm_releases(planes, "remote", NAMESPACE) == []
    _no_change(up(project, "--expect-no-changes").check())
    assert helm_releases(planes, "remote", NAMESPACE) == []


def test_up_refresh_reinstalls_the_agent_release(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = up(project, "--refresh").check()
    assert f"{CLUSTER}-agent created" in result.stdout, result.stdout[-3000:]
    _registered(planes, management_plane)
    up(project, "--expect-no-changes").check()


# -- root CA rotation ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotation(planes: ControlPlanes, management_plane: ManagementPlane) -> Iterator[tuple[str, str]]:
    """``(old, new)`` ``ca.crt``: the management secret holds the new one until the end of the module."""
    original = root_ca_crt(planes)
    assert original == management_plane.ca_crt
    rotated = CertificateAuthority.create("relay-root-ca-rotated").certificate_pem.decode()
    try:
        set_root_ca_crt(planes, rotated)
        yield original, rotated
    finally:
        set_root_ca_crt(planes, original)
        assert root_ca_crt(planes) == original


def _ca_texts(pem: str) -> list[str]:
    """What would give a CA away in an output: its PEM body lines, and its base64 (as a Secret holds it)."""
    body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return [*body, base64.b64encode(pem.encode()).decode()]


def _assert_no_ca_in(text: str, rotation: tuple[str, str], where: str) -> None:
    for pem in rotation:
        for value in _ca_texts(pem):
            assert value not in text, f"a CA ({'old' if pem == rotation[0] else 'new'}) appears in {where}"


def test_preview_diff_of_a_rotation_shows_only_the_ca_copy_changing_and_never_a_ca(
    project: PulumiProject, rotation: tuple[str, str]
) -> None:
    preview = project.run("preview", "--diff")
    # An update in place: the remote Provider the component declares sets enableSecretMutable (without it, the
    # kubernetes provider replaces a Secret whose data changes, and the copy would be gone for a moment).
    assert planned_steps(preview.stdout) == [("update", f"{CLUSTER}-root-ca")], preview.stdout[-4000:]
    assert "ca.crt: [secret] => [secret]" in preview.stdout
    _assert_no_ca_in(preview.output, rotation, "the preview output")


def test_preview_and_up_of_a_rotation_succeed(
    project: PulumiProject, planes: ControlPlanes, rotation: tuple[str, str]
) -> None:
    preview = project.run("preview", "--diff")
    assert preview.returncode == 0, preview.output[-4000:]
    before = secret(planes, "remote", NAMESPACE, ROOT_CA)
    up(project).check()
    after = secret(planes, "remote", NAMESPACE, ROOT_CA)
    assert before is not None and after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "the CA copy was deleted and written again"


def test_up_propagates_the_rotated_ca_and_the_copy_holds_ca_crt_only(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane, rotation: tuple[str, str]
) -> None:
    result = up(project, "--skip-preview").check()
    _assert_no_ca_in(result.output, rotation, "the up output")
    copy = secret(planes, "remote", NAMESPACE, ROOT_CA)
    assert copy is not None
    assert sorted(copy["data"]) == ["ca.crt"]
    assert base64.b64decode(copy["data"]["ca.crt"]).decode() == rotation[1], "the copy does not hold the new CA"
    assert has_secret(planes, "remote", NAMESPACE, CLIENT_CERT)
    assert not has_secret(planes, "remote", NAMESPACE, TOKEN)
    up(project, "--expect-no-changes").check()
    _assert_no_ca_in(project.export(), rotation, "the exported state")


def test_destroy_removes_the_registration(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert kubernetes_cluster(planes, CLUSTER) is None
    namespace = get_json(planes, "remote", "namespace", NAMESPACE)
    assert namespace is None or "deletionTimestamp" in namespace["metadata"]
    assert not has_secret(planes, "remote", NAMESPACE, ROOT_CA)
