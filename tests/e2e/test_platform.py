"""A Gloo Platform 2.x registration with the real engine (issue 12).

The management plane is the simulated 2.x one (``gloo.install_platform_management_plane``: ``gloo-mesh-mgmt-server``
at 2.5.8, its LoadBalancer, the telemetry gateway's, the relay secrets, the ``admin.gloo.solo.io/v2`` KubernetesCluster
CRD) in namespace ``gloo-platform`` of the session's management server, next to the 1.x plane in ``gloo-mesh``. The
stack names neither the generation nor the telemetry gateway's address: both are discovered. The charts are the
stand-ins ``gloo-platform-crds`` and ``gloo-platform`` of the session's chart repository; the agent is simulated.

One stack goes through its life in order: preview (nothing created), up (then the servers are asked), a second up
and a refresh with no changes, a preview with the policy pack, destroy (the CRDs release is retained by design). Then
what the retained CRDs mean for what comes after: the docs' removal of them, the same stack registering
again into the same namespace, and another registration of the workload cluster into another namespace.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import (
    PLATFORM_CLUSTER_CRD,
    PLATFORM_CRDS_CHART_CRD,
    VALUES_CONFIGMAP,
    ChartRepository,
    PlatformManagementPlane,
    SimulatedAgent,
    install_platform_management_plane,
)
from lab.policy_pack import PACK, assert_pack_ran_clean, copy_policy_pack, violation
from lab.pulumi_cli import ROOT, PulumiProject, Result
from lab.registration_checks import assert_no_secret_in, error_lines, get_json, helm_releases, planned_steps, wait_until
from lab.scenarios import Lab

CLUSTER = "platform-e2e"
NAMESPACE = "gloo-platform-agents"
"""Not test_existing_namespace.py's "platform-agents", which that module leaves in place."""
STACK = "platform"
CLUSTER_DOMAIN = "platform.e2e.local"
AUTHORITY = "gloo-mesh-mgmt-server.gloo-mesh"
"""The 2.x default authority (agent_generation.py), whatever the management namespace is."""
CRDS_RELEASE = "gloo-platform-crds"
AGENT_RELEASE = "gloo-platform"
KUBERNETES_CLUSTER_TYPE = "kubernetes:admin.gloo.solo.io/v2:KubernetesCluster"
TOKEN = "relay-identity-token-secret"
CLIENT_CERT = "relay-client-tls-secret"
ROOT_CA = "relay-root-tls-secret"
OTHER_CLUSTER = "platform-e2e-other"
OTHER_NAMESPACE = "gloo-platform-agents-other"


# -- fixtures and helpers ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform_plane(planes: ControlPlanes) -> PlatformManagementPlane:
    return install_platform_management_plane(planes)


@pytest.fixture(scope="module")
def management_versions(planes: ControlPlanes, platform_plane: PlatformManagementPlane) -> dict[str, str]:
    """The resourceVersion of each 2.x management object the registration must only read, before any run."""
    return management_objects(planes, platform_plane)


def management_objects(planes: ControlPlanes, plane: PlatformManagementPlane) -> dict[str, str]:
    found = {}
    for ref in (("secret", ROOT_CA, "-n", plane.namespace), ("secret", TOKEN, "-n", plane.namespace)):
        got = get_json(planes, "mgmt", *ref)
        found[ref[1]] = got["metadata"]["resourceVersion"] if got else "missing"
    crd = get_json(planes, "mgmt", "crd", PLATFORM_CLUSTER_CRD)
    found[PLATFORM_CLUSTER_CRD] = crd["metadata"]["resourceVersion"] if crd else "missing"
    return found


@pytest.fixture(scope="module")
def observed() -> dict[str, str]:
    """What one test saw for a later one to compare (the CRDs chart's CRD uid)."""
    return {}


@pytest.fixture(scope="module")
def project(lab: Lab, platform_plane: PlatformManagementPlane, agent: SimulatedAgent) -> PulumiProject:
    # No agentGeneration, no telemetryGatewayAddress: both are discovered from the management cluster.
    entry = lab.cluster_entry(CLUSTER, NAMESPACE, clusterDomain=CLUSTER_DOMAIN, clientCertTimeoutSeconds=90)
    return lab.project(STACK, lab.stack_config([entry], namespace=platform_plane.namespace, telemetry=True))


@pytest.fixture(scope="module")
def other_stack(lab: Lab, platform_plane: PlatformManagementPlane) -> PulumiProject:
    """Another registration of the same workload cluster (``remote``), into another agent namespace."""
    entry = lab.cluster_entry(OTHER_CLUSTER, OTHER_NAMESPACE, clientCertTimeoutSeconds=20)
    return lab.project(f"{STACK}-other", lab.stack_config([entry], namespace=platform_plane.namespace, telemetry=True))


@pytest.fixture(scope="module")
def pack(e2e_dir: Path) -> Path:
    return copy_policy_pack(e2e_dir / "policy-pack-platform")


def helm(planes: ControlPlanes, *args: str) -> subprocess.CompletedProcess[str]:
    """The suite's helm on the workload cluster ``remote``."""
    context = planes.clusters["remote"].context
    argv = [str(planes.bin_dir / "helm"), "--kubeconfig", str(planes.kubeconfig), "--kube-context", context, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


_STEP_HEADER = re.compile(r"^\s*[-+~<>]*\s*[\w.-]+:[\w./-]+:[\w.-]+: \([\w-]+\)\s*$")


def step_blocks(diff_output: str) -> dict[str, str]:
    """The text of each step of a ``--diff`` output (its header, URN and properties), by resource name."""
    blocks: dict[str, str] = {}
    current: list[str] = []

    def close() -> None:
        urn = next((line.strip()[5:-1] for line in current if line.strip().startswith("[urn=")), None)
        if urn is not None:
            blocks[urn.rsplit("::", 1)[-1]] = "\n".join(current)

    for line in diff_output.splitlines():
        if _STEP_HEADER.match(line):
            close()
            current = []
        current.append(line)
    close()
    return blocks


def kubernetes_cluster(planes: ControlPlanes, plane: PlatformManagementPlane) -> dict[str, Any] | None:
    return get_json(planes, "mgmt", PLATFORM_CLUSTER_CRD, CLUSTER, "-n", plane.namespace)


def has(planes: ControlPlanes, server: str, kind: str, name: str, namespace: str = NAMESPACE) -> bool:
    """Whether the object exists (a bool, so a failed assertion never prints a secret's data)."""
    return get_json(planes, server, kind, name, "-n", namespace) is not None


def assert_quiet(result: Result, plane: PlatformManagementPlane, what: str) -> None:
    assert_no_secret_in(result.output, plane, f"the {what} output")


def test_preview_shows_both_releases_at_the_server_version_and_creates_nothing(
    project: PulumiProject,
    planes: ControlPlanes,
    platform_plane: PlatformManagementPlane,
    chart_repo: ChartRepository,
    management_versions: dict[str, str],
) -> None:
    assert "missing" not in management_versions.values(), management_versions
    result = project.run("preview", "--diff").check()
    assert_quiet(result, platform_plane, "preview")
    version = platform_plane.agent_version
    # The provider's Check loads both charts in preview: Helm fetched them from the local repository.
    for chart in (CRDS_RELEASE, AGENT_RELEASE):
        assert f"/{chart}-{version}.tgz" in chart_repo.requests, chart_repo.requests
    creates = [name for op, name in planned_steps(result.stdout) if op == "create"]
    for name in (f"{CLUSTER}-agent-crds", f"{CLUSTER}-agent", f"{CLUSTER}-kubernetes-cluster"):
        assert name in creates, result.stdout
    blocks = step_blocks(result.stdout)
    for name, chart in ((f"{CLUSTER}-agent-crds", CRDS_RELEASE), (f"{CLUSTER}-agent", AGENT_RELEASE)):
        assert re.search(rf'chart\s*:\s*"{re.escape(chart)}"', blocks[name]), blocks[name]
        assert re.search(rf'version\s*:\s*"{re.escape(version)}"', blocks[name]), blocks[name]
    agent_release = blocks[f"{CLUSTER}-agent"]
    # The discovered relay and telemetry gateway addresses are in the plan.
    assert platform_plane.relay_address in agent_release, agent_release
    assert platform_plane.telemetry_address in agent_release, agent_release
    cluster = blocks[f"{CLUSTER}-kubernetes-cluster"]
    assert KUBERNETES_CLUSTER_TYPE in cluster, cluster
    assert platform_plane.namespace in cluster and CLUSTER_DOMAIN in cluster, cluster
    assert "enterprise-agent" not in result.stdout
    # Nothing on either server.
    assert get_json(planes, "remote", "namespace", NAMESPACE) is None
    assert kubernetes_cluster(planes, platform_plane) is None
    assert get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD) is None


def test_up_registers_the_cluster_with_the_platform_charts(
    project: PulumiProject,
    planes: ControlPlanes,
    platform_plane: PlatformManagementPlane,
    agent: SimulatedAgent,
    observed: dict[str, str],
) -> None:
    result = project.run("up", "--yes", "--skip-preview").check()
    assert_quiet(result, platform_plane, "up")
    version = platform_plane.agent_version

    namespace = get_json(planes, "remote", "namespace", NAMESPACE)
    assert namespace is not None
    assert namespace["metadata"]["labels"]["istio-injection"] == "disabled"

    root_ca = get_json(planes, "remote", "secret", ROOT_CA, "-n", NAMESPACE)
    assert root_ca is not None
    assert set(root_ca["data"]) == {"ca.crt"}
    assert base64.b64decode(root_ca["data"]["ca.crt"]).decode() == platform_plane.ca_crt

    rendered = get_json(planes, "remote", "configmap", VALUES_CONFIGMAP, "-n", NAMESPACE)
    assert rendered is not None, "the gloo-platform stand-in rendered nothing: glooAgent.enabled is not set"
    data = rendered["data"]
    assert data["cluster"] == CLUSTER
    assert data["serverAddress"] == platform_plane.relay_address
    assert data["authority"] == AUTHORITY
    assert data["insecure"] == "false"
    assert json.loads(data["rootTlsSecret"]) == {"name": ROOT_CA, "namespace": NAMESPACE}
    assert json.loads(data["clientTlsSecret"]) == {"name": CLIENT_CERT, "namespace": NAMESPACE}
    assert json.loads(data["tokenSecret"]) == {"name": TOKEN, "namespace": NAMESPACE, "key": "token"}
    assert data["telemetryEnabled"] == "true"
    assert data["telemetryEndpoint"] == platform_plane.telemetry_address
    values = json.loads(data["values.json"])
    assert values["glooAgent"]["enabled"] is True
    assert "relay" not in values, "1.x values in a 2.x release"
    assert has(planes, "remote", "serviceaccount", "gloo-mesh-agent")

    assert sorted(helm_releases(planes, "remote", NAMESPACE)) == [
        (AGENT_RELEASE, f"{AGENT_RELEASE}-{version}", "deployed"),
        (CRDS_RELEASE, f"{CRDS_RELEASE}-{version}", "deployed"),
    ]
    crd = get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD)
    assert crd is not None
    observed["crd-uid"] = crd["metadata"]["uid"]

    cluster = kubernetes_cluster(planes, platform_plane)
    assert cluster is not None
    assert cluster["apiVersion"] == "admin.gloo.solo.io/v2"
    assert cluster["spec"] == {"clusterDomain": CLUSTER_DOMAIN}

    assert has(planes, "remote", "secret", CLIENT_CERT)
    assert agent.certificates_written == 1
    assert agent.tokens_seen == [platform_plane.token]  # the token of the 2.x plane, not the 1.x one
    assert has(planes, "remote", "secret", TOKEN), "2.x keeps the bootstrap token by default"

    assert project.outputs()["clusters"][CLUSTER] == {
        "relayServerAddress": platform_plane.relay_address,
        "agentVersion": version,
        "remoteNamespace": NAMESPACE,
        "releaseStatus": "deployed",
        "clientCertificateIssued": True,
    }


def test_state_holds_no_secret_in_plain_text_and_no_key_of_the_ca_secret_but_ca_crt(
    project: PulumiProject, platform_plane: PlatformManagementPlane
) -> None:
    assert_no_secret_in(project.export(), platform_plane, "the exported state")
    revealed = project.export(show_secrets=True)
    for value in (platform_plane.ca_key, platform_plane.tls_crt):
        assert base64.b64encode(value.encode()).decode() not in revealed
        assert value.strip().splitlines()[1] not in revealed


def test_a_second_up_and_a_refresh_change_nothing_and_keep_the_token(
    project: PulumiProject, planes: ControlPlanes, platform_plane: PlatformManagementPlane, agent: SimulatedAgent
) -> None:
    for flags in ((), ("--refresh",)):
        result = project.run("up", "--yes", "--skip-preview", "--expect-no-changes", *flags).check()
        assert_quiet(result, platform_plane, f"up {' '.join(flags)}")
        assert has(planes, "remote", "secret", TOKEN)
    assert agent.certificates_written == 1


def test_the_policy_pack_sees_the_platform_resources_and_passes(
    project: PulumiProject, pack: Path, e2e_dir: Path, platform_plane: PlatformManagementPlane
) -> None:
    # This plane is in gloo-platform, not the 2.x default gloo-mesh: the pack takes the management namespace from the
    # stack's own management.namespace (the engine hands it the stack config), so it passes with no policy config.
    passed = project.run("preview", "--diff", "--policy-pack", str(pack)).check()
    assert_pack_ran_clean(passed)
    assert PACK in passed.stdout

    # Told another namespace, it refuses the admin.gloo.solo.io/v2 KubernetesCluster: it does look at 2.x resources.
    config = e2e_dir / "policy-config-platform.json"
    config.write_text(json.dumps({"kubernetes-cluster-name": {"managementNamespace": "gloo-mesh"}}))
    refused = project.run("preview", "--policy-pack", str(pack), "--policy-pack-config", str(config))
    assert refused.returncode != 0, refused.output
    assert re.search(
        rf"\[mandatory\].*  kubernetes-cluster-name  \({re.escape(KUBERNETES_CLUSTER_TYPE)}: "
        rf"{CLUSTER}-kubernetes-cluster\)",
        refused.output,
    ), refused.output
    assert not violation("mandatory", "relay-authority-allowed", f"{CLUSTER}-agent").search(refused.output)
    for result, what in ((refused, "refused preview"), (passed, "policy preview")):
        assert_quiet(result, platform_plane, what)


def test_destroy_removes_the_registration_and_keeps_the_crds(
    project: PulumiProject,
    planes: ControlPlanes,
    platform_plane: PlatformManagementPlane,
    management_versions: dict[str, str],
    observed: dict[str, str],
) -> None:
    result = project.run("destroy", "--yes", "--skip-preview").check()
    assert_quiet(result, platform_plane, "destroy")
    assert "platform-e2e-agent-crds deleted" in result.stdout and "[retain]" in result.stdout, result.stdout
    assert kubernetes_cluster(planes, platform_plane) is None
    assert get_json(planes, "remote", "namespace", NAMESPACE) is None
    assert AGENT_RELEASE not in [name for name, _, _ in helm_releases(planes, "remote", NAMESPACE)]
    # The CRDs release is retained by design (deleting it would delete the CRDs and every Gloo resource): the CRD is
    # the one the registration installed.
    crd = get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD)
    assert crd is not None
    assert crd["metadata"]["uid"] == observed["crd-uid"]
    # The management plane is only read: its secrets and CRD were never written.
    assert management_objects(planes, platform_plane) == management_versions


def test_the_retained_crds_are_owned_by_a_release_whose_record_went_with_the_namespace(planes: ControlPlanes) -> None:
    """Why docs/gloo-platform-2.md removes retained CRDs with kubectl, not ``helm uninstall``: destroy deleted the namespace it
    created, and with it Helm's record of the CRDs release (found by this suite: the README used to say ``helm uninstall``)."""
    crd = get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD)
    assert crd is not None
    annotations = crd["metadata"].get("annotations", {})
    assert annotations.get("meta.helm.sh/release-name") == CRDS_RELEASE
    assert annotations.get("meta.helm.sh/release-namespace") == NAMESPACE
    uninstall = helm(planes, "uninstall", CRDS_RELEASE, "-n", NAMESPACE)
    assert uninstall.returncode != 0 and "not found" in uninstall.stderr, uninstall


def test_registering_again_into_the_same_namespace_takes_the_retained_crds_over(
    project: PulumiProject,
    planes: ControlPlanes,
    platform_plane: PlatformManagementPlane,
    agent: SimulatedAgent,
    observed: dict[str, str],
) -> None:
    """The CRDs left by destroy carry Helm's ownership of a release of the same name and namespace: Helm takes them
    over, and the registration completes again."""
    result = project.run("up", "--yes").check()
    assert_quiet(result, platform_plane, "up again")
    assert sorted(helm_releases(planes, "remote", NAMESPACE)) == [
        (AGENT_RELEASE, f"{AGENT_RELEASE}-{platform_plane.agent_version}", "deployed"),
        (CRDS_RELEASE, f"{CRDS_RELEASE}-{platform_plane.agent_version}", "deployed"),
    ]
    crd = get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD)
    assert crd is not None and crd["metadata"]["uid"] == observed["crd-uid"]
    assert kubernetes_cluster(planes, platform_plane) is not None
    assert project.outputs()["clusters"][CLUSTER]["clientCertificateIssued"] is True
    project.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "remote", "namespace", NAMESPACE) is None


def test_a_registration_into_another_namespace_fails_in_preview_on_the_retained_crds(
    other_stack: PulumiProject, planes: ControlPlanes, platform_plane: PlatformManagementPlane
) -> None:
    """Helm will not take CRDs owned by a release in another namespace over, so `pulumi up` would fail after the
    namespace, CA copy and token exist: the preview fails first, naming the CRDs and the fix (found by this suite)."""
    preview = other_stack.run("preview", "--diff")
    assert_quiet(preview, platform_plane, "preview")
    assert preview.returncode != 0, preview.output
    assert get_json(planes, "remote", "namespace", OTHER_NAMESPACE) is None
    errors = " ".join(error_lines(preview, "error:"))
    assert f"the CRDs of chart '{CRDS_RELEASE}' exist already" in errors, preview.output[-4000:]
    assert f"Found: {NAMESPACE}/{PLATFORM_CRDS_CHART_CRD}." in errors, errors
    assert f"meta.helm.sh/release-namespace={OTHER_NAMESPACE} --overwrite" in errors, errors


def test_a_registration_whose_crds_release_cannot_be_installed_leaves_no_token_and_is_destroyed(
    other_stack: PulumiProject, planes: ControlPlanes, platform_plane: PlatformManagementPlane
) -> None:
    """What ``up --skip-preview`` of that registration does (the preview is not there to stop it): Helm refuses to
    take over CRDs owned by another release; nothing after the CRDs release runs, the token placed for the agent
    does not outlive the run, and destroy removes what was created."""
    up = other_stack.run("up", "--yes", "--skip-preview")
    assert_quiet(up, platform_plane, "failed up")
    assert up.returncode != 0, up.output
    ownership = f'key "meta.helm.sh/release-namespace" must equal "{OTHER_NAMESPACE}": current value is "{NAMESPACE}"'
    assert any(ownership in line for line in error_lines(up, "error:")), up.output[-6000:]
    assert helm_releases(planes, "remote", OTHER_NAMESPACE) == []
    assert get_json(planes, "mgmt", PLATFORM_CLUSTER_CRD, OTHER_CLUSTER, "-n", platform_plane.namespace) is None
    wait_until(lambda: not has(planes, "remote", "secret", TOKEN, OTHER_NAMESPACE), "the token's removal", timeout=60)
    other_stack.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(planes, "remote", "namespace", OTHER_NAMESPACE) is None
    assert get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD) is not None


def test_the_fix_the_preview_names_hands_the_crds_over_and_the_registration_completes(
    other_stack: PulumiProject, planes: ControlPlanes, platform_plane: PlatformManagementPlane
) -> None:
    """The preview's fix, done as it says (annotate each CRD it found), lets the other registration complete."""
    preview = other_stack.run("preview", "--diff")
    found = re.search(r"Found: ((?:\S+/\S+ ?)+)\.", " ".join(error_lines(preview, "error:")))
    assert preview.returncode != 0 and found is not None, preview.output[-4000:]
    for owned in found.group(1).split():
        crd = owned.split("/", 1)[1]
        planes.kubectl(
            "remote", "annotate", "crd", crd, f"meta.helm.sh/release-namespace={OTHER_NAMESPACE}", "--overwrite"
        )
    agent = SimulatedAgent(planes, "remote", namespace=OTHER_NAMESPACE, cluster_name=OTHER_CLUSTER).start()
    try:
        other_stack.run("preview", "--diff").check()
        assert_quiet(other_stack.run("up", "--yes").check(), platform_plane, "up")
        assert (CRDS_RELEASE, f"{CRDS_RELEASE}-{platform_plane.agent_version}", "deployed") in helm_releases(
            planes, "remote", OTHER_NAMESPACE
        )
        assert other_stack.outputs()["clusters"][OTHER_CLUSTER]["clientCertificateIssued"] is True
        other_stack.run("destroy", "--yes", "--skip-preview").check()
    finally:
        agent.stop()


def test_the_retained_crds_are_removed_as_the_docs_say(planes: ControlPlanes, tmp_path: Path) -> None:
    """docs/gloo-platform-2.md's command for a cluster that leaves Gloo for good, run as written (with the suite's
    context)."""
    page = (ROOT / "docs" / "gloo-platform-2.md").read_text()
    (command,) = [line.strip() for line in page.splitlines() if "| xargs kubectl delete crd" in line]
    context = planes.clusters["remote"].context
    as_run = command.replace("kubectl ", f"kubectl --context {context} ")
    environment = {
        "PATH": f"{planes.bin_dir}:/usr/bin:/bin",
        "KUBECONFIG": str(planes.kubeconfig),
        "HOME": str(tmp_path),
    }
    subprocess.run(["/bin/sh", "-ec", as_run], env=environment, check=True, capture_output=True, timeout=120)
    assert get_json(planes, "remote", "crd", PLATFORM_CRDS_CHART_CRD) is None
