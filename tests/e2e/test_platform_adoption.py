"""Taking over a Gloo Platform 2.x agent installed as ``gloo-platform-agent``, with the real engine (issue 21).

Real 2.x installations do not all name the agent release ``gloo-platform``: solo-io/workshops
``gloo-mesh/enterprise/2-9/mgmt-as-workload/default/README.md`` (01c2f6ee37f6) installs it with ``helm upgrade
--install gloo-platform-agent gloo-platform``. The workload cluster is registered by hand that way (a shell script
with the real kubectl and helm: namespace, the CA copy and the token, ``gloo-platform-crds``, then the agent chart as
``gloo-platform-agent``, the ``admin.gloo.solo.io/v2`` KubernetesCluster, the wait for the client certificate; the
workshops keep the token). A stack with ``adopt: true`` and no release name fails its preview naming the release found
and the key to set; with ``agentReleaseName: gloo-platform-agent`` it imports everything in place, the agent release
never missing and no second agent release installed; without ``adopt`` the next preview and up change nothing.

Modelled on test_adoption.py (1.x, the guide's Helm path) and test_platform.py (the simulated 2.x plane, in a
management namespace of its own here, and the stand-in charts). Like test_platform.py it leaves no CRD behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import (
    PLATFORM_CLUSTER_CRD,
    PLATFORM_CRDS_CHART_CRD,
    ChartRepository,
    PlatformManagementPlane,
    SimulatedAgent,
    install_platform_management_plane,
)
from lab.guide import PLATFORM_STEPS, register_by_hand
from lab.observe import ApiClient, SecretWatch
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import assert_adoption_preview, get_json, helm_releases
from lab.scenarios import Lab, cluster_entry, stack_config

CLUSTER = "platform-adopt-e2e"
NAMESPACE = "platform-adopt-agents"
MGMT_NAMESPACE = "gloo-platform-adopt"
"""A 2.x management plane of its own (test_platform.py's is in ``gloo-platform``)."""
STACK = "platform-adopt"
RELEASE = "gloo-platform-agent"
CRDS_RELEASE = "gloo-platform-crds"


@pytest.fixture(scope="module")
def platform_plane(planes: ControlPlanes) -> PlatformManagementPlane:
    return install_platform_management_plane(planes, namespace=MGMT_NAMESPACE)


@pytest.fixture(scope="module")
def registered_by_hand(lab: Lab, platform_plane: PlatformManagementPlane, agent: SimulatedAgent) -> Iterator[None]:
    planes = lab.planes
    register_by_hand(
        lab,
        PLATFORM_STEPS,
        "platform-by-hand",
        cluster=CLUSTER,
        namespace=NAMESPACE,
        plane=platform_plane,
        mgmt_ns=platform_plane.namespace,
    )
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None
    yield
    # The CRDs release is retained by design (README); later modules install the stand-in CRDs chart afresh.
    planes.kubectl("remote", "delete", "crd", PLATFORM_CRDS_CHART_CRD, "--ignore-not-found")


def config(planes: ControlPlanes, chart_repo: ChartRepository, **settings: object) -> dict[str, object]:
    entry = cluster_entry(planes, "remote", CLUSTER, NAMESPACE, **settings)
    return stack_config(planes, chart_repo, [entry], namespace=MGMT_NAMESPACE)


@pytest.fixture(scope="module")
def project(lab: Lab, registered_by_hand: None) -> PulumiProject:
    return lab.project(STACK, config(lab.planes, lab.chart_repo, adopt=True))


def test_adopting_under_the_default_name_fails_the_preview_with_the_name_to_set(
    project: PulumiProject, planes: ControlPlanes
) -> None:
    preview = project.run("preview", "--diff")
    errors = " ".join(preview.output.split())  # as one line, however the CLI wraps it
    assert preview.returncode != 0, preview.output[-4000:]
    key = "gloo-mesh-registration:clusters[0].agentReleaseName"
    assert (
        f"{key}: 'gloo-platform' names no Helm release in namespace '{NAMESPACE}' of the registered cluster" in errors
    ), preview.output[-4000:]
    assert f"the agent release there is '{RELEASE}'. Fix: set {key} to '{RELEASE}'" in errors, errors
    releases = {name for name, _, _ in helm_releases(planes, "remote", NAMESPACE)}
    assert releases == {RELEASE, CRDS_RELEASE}


def test_named_the_preview_imports_and_creates_or_deletes_none_of_the_registration(
    project: PulumiProject, planes: ControlPlanes, chart_repo: ChartRepository
) -> None:
    project_copy(ROOT, project.project_dir, STACK, config(planes, chart_repo, adopt=True, agentReleaseName=RELEASE))
    preview = project.run("preview", "--diff").check()
    assert_adoption_preview(preview.stdout, "kubernetes:admin.gloo.solo.io/v2:KubernetesCluster")


def test_up_takes_the_agent_release_over_under_its_name(
    project: PulumiProject, planes: ControlPlanes, agent: SimulatedAgent
) -> None:
    certificates_before = agent.certificates_written
    with SecretWatch(ApiClient(planes, "remote"), NAMESPACE) as secrets:
        project.run("up", "--yes", "--skip-preview").check()
        deleted = [e.name for e in secrets.events() if e.type == "DELETED"]
    assert not [name for name in deleted if name.startswith(f"sh.helm.release.v1.{RELEASE}.")], deleted
    assert "relay-client-tls-secret" not in deleted, "the agent's identity was touched"
    assert agent.certificates_written == certificates_before, "the agent had to bootstrap again"
    releases = {name: status for name, _, status in helm_releases(planes, "remote", NAMESPACE)}
    assert releases == {RELEASE: "deployed", CRDS_RELEASE: "deployed"}, "a second agent release was installed"
    cluster = get_json(planes, "mgmt", PLATFORM_CLUSTER_CRD, CLUSTER, "-n", MGMT_NAMESPACE)
    assert cluster is not None and cluster["metadata"]["labels"]["gloo-mesh-registration/stack"].endswith(STACK)
    outputs = project.outputs()["clusters"][CLUSTER]
    assert outputs["releaseStatus"] == "deployed" and outputs["clientCertificateIssued"] is True


def test_without_adopt_the_next_preview_and_up_change_nothing(
    project: PulumiProject, planes: ControlPlanes, chart_repo: ChartRepository
) -> None:
    project_copy(ROOT, project.project_dir, STACK, config(planes, chart_repo, agentReleaseName=RELEASE))
    project.run("preview", "--diff", "--expect-no-changes").check()
    project.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()


def test_destroy_then_deregisters_it(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "mgmt", PLATFORM_CLUSTER_CRD, CLUSTER, "-n", MGMT_NAMESPACE) is None
    assert get_json(planes, "remote", "namespace", NAMESPACE) is None
