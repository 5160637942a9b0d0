"""Least privilege, with the real engine (issue 25, item 3): the roles of ``rbac/`` are enough, and a missing one says so.

Every other module runs ``pulumi`` as an admin in ``system:masters``, which RBAC never asks. Here the identity that runs
``pulumi`` is a user outside it (a client certificate of the clusters' CA, ``lab.access``), bound only to the roles
``gloo_mesh_registration.rbac`` makes (what ``rbac/`` holds, for this module's namespaces and user): the management role
on the management server, the workload role on the remote server. For each generation (1.x on the session's plane, 2.x
on a plane of its own), the real CLI registers a cluster (``up``: its preview first), runs again with no changes, and
destroys; then adopts a cluster registered by the guide's Helm steps (``lab.guide``, as test_adoption.py and
test_platform_adoption.py do) and destroys it. The workload role's chart part is read from the stand-in chart as
``helm template`` renders it, as a user makes it for a chart version (docs/rbac.md); its ClusterRole must be created by
a user who is not an admin, which Kubernetes allows only to a user holding every permission it grants.

Besides: a preview-only user previews with the preview roles; a user whose management role lacks the relay secrets'
read sees a preview fail with the permission named (verb, resource, name, namespace) and the fix; and the approach not
taken (``escalate`` and ``bind`` restricted to the chart's ClusterRole by name) is refused the chart's create and, where
it is allowed, lets the user grant itself everything (docs/rbac.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from gloo_mesh_registration.agent_generation import AgentGeneration
from gloo_mesh_registration.rbac import (
    RBAC_GROUP,
    Grant,
    Manifest,
    Rule,
    generation,
    management_manifest,
    preview_manifests,
    workload_manifest,
)
from lab.access import LabUser, grant, kubectl_as, lab_user, rendered_chart_rbac, revoke
from lab.cluster import ControlPlanes
from lab.gloo import (
    MGMT_NAMESPACE,
    PLATFORM_CRDS_CHART_CRD,
    ManagementPlane,
    install_platform_management_plane,
    stand_in_chart_rbac,
)
from lab.guide import GUIDE_STEPS, PLATFORM_STEPS, register_by_hand
from lab.pulumi_cli import Result
from lab.registration_checks import get_json, helm_releases
from lab.scenarios import Lab

PLATFORM_MGMT_NAMESPACE = "gloo-platform-least-privilege"
"""A 2.x management plane of this module's own (test_platform.py's is in ``gloo-platform``)."""
BY_HAND_RELEASE = {"1x": "enterprise-agent", "2x": "gloo-platform-agent"}
"""The agent release the guide's steps install (lab.guide)."""


@dataclass(frozen=True)
class Scenario:
    """One generation's run: its management plane and the namespaces and cluster names of this module."""

    label: str
    gen: AgentGeneration
    plane: ManagementPlane
    mgmt_namespace: str

    @property
    def namespace(self) -> str:
        """The agent namespace of the registration (createNamespace: false: the admin makes it)."""
        return f"least-privilege-{self.label}"

    @property
    def adopt_namespace(self) -> str:
        return f"least-privilege-adopt-{self.label}"

    @property
    def cluster(self) -> str:
        return f"least-privilege-{self.label}"

    @property
    def adopt_cluster(self) -> str:
        return f"least-privilege-adopt-{self.label}"

    @property
    def cluster_resource(self) -> str:
        return self.gen.cluster_resource


@pytest.fixture(scope="module")
def users(lab: Lab, e2e_dir: Path) -> dict[str, LabUser]:
    folder = e2e_dir / "least-privilege"
    names = ("registrar", "previewer", "no-secrets", "escalator")
    return {name: lab_user(lab.planes, f"lp-{name}", folder) for name in names}


@pytest.fixture(scope="module", params=["1x", "2x"])
def scenario(request: pytest.FixtureRequest, lab: Lab, management_plane: ManagementPlane) -> Scenario:
    gen = generation(request.param)
    if gen.crds_chart is None:
        return Scenario(request.param, gen, management_plane, MGMT_NAMESPACE)
    plane = install_platform_management_plane(lab.planes, namespace=PLATFORM_MGMT_NAMESPACE)
    return Scenario(request.param, gen, plane, PLATFORM_MGMT_NAMESPACE)


def config(lab: Lab, scenario: Scenario, user: LabUser, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A stack file's config whose every cluster access is ``user``'s kubeconfig."""
    clusters = [{**entry, "kubeconfig": str(user.kubeconfig)} for entry in entries]
    return lab.stack_config(clusters, namespace=scenario.mgmt_namespace, kubeconfig=str(user.kubeconfig))


def workload_role(lab: Lab, scenario: Scenario, user: LabUser, namespace: str, *, creates: bool) -> Manifest:
    """The workload role for ``namespace``, its chart part from the stand-in chart as ``helm template`` renders it."""
    chart = rendered_chart_rbac(lab.planes, lab.chart_repo.url, scenario.gen, scenario.plane.agent_version, namespace)
    return workload_manifest(scenario.gen, namespace, chart, user.subjects, creates_namespace=creates)


@dataclass
class Granted:
    """Roles applied for one test, revoked after it (so no test passes on another's grants)."""

    planes: ControlPlanes
    applied: list[tuple[str, Manifest]]

    def __call__(self, cluster: str, *manifests: Manifest) -> None:
        grant(self.planes, cluster, manifests)
        self.applied += [(cluster, manifest) for manifest in manifests]


@pytest.fixture
def granted(lab: Lab) -> Iterator[Granted]:
    roles = Granted(lab.planes, [])
    yield roles
    for cluster, manifest in roles.applied:
        revoke(lab.planes, cluster, [manifest])


def assert_clean(result: Result, what: str) -> None:
    """No permission was refused along the way (the kubernetes provider logs a refused dry run and carries on)."""
    refused = [line for line in result.output.splitlines() if "forbidden" in line.lower()]
    assert refused == [], f"{what}: {refused}"


def remove_namespace(planes: ControlPlanes, scenario: Scenario, namespace: str) -> None:
    """As the admin: the agent namespace, and (2.x) the CRD the retained CRDs release leaves, which a later
    registration into another namespace could not take over (test_platform.py)."""
    planes.kubectl("remote", "delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    if scenario.gen.crds_chart is not None:
        planes.kubectl("remote", "delete", "crd", PLATFORM_CRDS_CHART_CRD, "--ignore-not-found")


def test_the_chart_part_of_rbac_is_what_the_stand_in_chart_renders(lab: Lab, scenario: Scenario) -> None:
    """rbac/ is made from the stand-in chart's data (scripts/rbac_manifests.py); a user makes it from helm template.
    Both must agree, or rbac/ would ship rules no chart here has."""
    rendered = rendered_chart_rbac(
        lab.planes, lab.chart_repo.url, scenario.gen, scenario.plane.agent_version, scenario.gen.default_namespace
    )
    shipped = stand_in_chart_rbac(scenario.gen, scenario.gen.default_namespace)
    assert replace(rendered, source=shipped.source) == shipped


def test_a_user_with_only_the_shipped_roles_registers_runs_again_and_destroys(
    lab: Lab, scenario: Scenario, users: dict[str, LabUser], granted: Granted
) -> None:
    planes, user, namespace = lab.planes, users["registrar"], scenario.namespace
    granted("mgmt", management_manifest(scenario.gen, scenario.mgmt_namespace, user.subjects))
    granted("remote", workload_role(lab, scenario, user, namespace, creates=False))  # makes the namespace
    entry = lab.cluster_entry(scenario.cluster, namespace, createNamespace=False, clientCertTimeoutSeconds=60)
    project = lab.project(f"least-privilege-{scenario.label}", config(lab, scenario, user, [entry]))
    try:
        # An agent slower than the release, so that the certificate step waits (watches) for its certificate.
        with lab.agent(scenario.cluster, namespace, delay_seconds=10):
            registered = project.run("up", "--yes").check()  # its preview first, with the preview's checks
            assert_clean(registered, "up")
            assert "the agent holds its client certificate (after" in registered.output, "the step did not wait"
            releases = {name: status for name, _, status in helm_releases(planes, "remote", namespace)}
            assert releases.get(scenario.gen.release_name) == "deployed", releases
            cluster = get_json(
                planes, "mgmt", scenario.cluster_resource, scenario.cluster, "-n", scenario.mgmt_namespace
            )
            assert cluster is not None
            assert project.outputs()["clusters"][scenario.cluster]["clientCertificateIssued"] is True
            assert_clean(project.run("up", "--yes", "--expect-no-changes").check(), "a second up")
            assert_clean(project.run("destroy", "--yes", "--skip-preview").check(), "destroy")
        assert (
            get_json(planes, "mgmt", scenario.cluster_resource, scenario.cluster, "-n", scenario.mgmt_namespace) is None
        )
        assert [name for name, _, _ in helm_releases(planes, "remote", namespace)] in (
            [],
            [scenario.gen.crds_chart],  # 2.x: the CRDs release is retained by design
        )
        assert get_json(planes, "remote", "clusterrole", f"{scenario.gen.agent_deployment}-{namespace}") is None
    finally:
        remove_namespace(planes, scenario, namespace)


def test_a_user_with_only_the_shipped_roles_adopts_a_cluster_registered_by_hand(
    lab: Lab, scenario: Scenario, users: dict[str, LabUser], granted: Granted
) -> None:
    planes, user, namespace = lab.planes, users["registrar"], scenario.adopt_namespace
    steps = GUIDE_STEPS if scenario.gen.crds_chart is None else PLATFORM_STEPS
    # 1.x: the program takes the guide's namespace over (createNamespace: true, the role for it); 2.x: it only labels it.
    creates = scenario.gen.crds_chart is None
    settings: dict[str, Any] = {"adopt": True, "createNamespace": creates, "clientCertTimeoutSeconds": 60}
    if scenario.gen.crds_chart is not None:
        settings["agentReleaseName"] = BY_HAND_RELEASE[scenario.label]
    try:
        with lab.agent(scenario.adopt_cluster, namespace) as agent:
            register_by_hand(
                lab,
                steps,
                f"least-privilege-by-hand-{scenario.label}",
                cluster=scenario.adopt_cluster,
                namespace=namespace,
                plane=scenario.plane,
                mgmt_ns=scenario.mgmt_namespace,
            )
            certificates = agent.certificates_written
            granted("mgmt", management_manifest(scenario.gen, scenario.mgmt_namespace, user.subjects))
            granted("remote", workload_role(lab, scenario, user, namespace, creates=creates))
            entry = lab.cluster_entry(scenario.adopt_cluster, namespace, **settings)
            project = lab.project(f"least-privilege-adopt-{scenario.label}", config(lab, scenario, user, [entry]))
            adopted = project.run("up", "--yes").check()
            assert_clean(adopted, "the adoption's up")
            assert re.search(r"= [45] imported", adopted.stdout), adopted.stdout[-4000:]
            assert agent.certificates_written == certificates, "the agent had to bootstrap again"
            assert_clean(project.run("destroy", "--yes", "--skip-preview").check(), "destroy")
        assert (
            get_json(planes, "mgmt", scenario.cluster_resource, scenario.adopt_cluster, "-n", scenario.mgmt_namespace)
            is None
        )
    finally:
        remove_namespace(planes, scenario, namespace)


def test_a_preview_only_user_previews_with_the_preview_roles(
    lab: Lab, scenario: Scenario, users: dict[str, LabUser], granted: Granted
) -> None:
    """The preview roles hold no write: the kubernetes provider's dry runs are refused, which it only logs, and the
    preview's own looks (for objects left behind) are granted."""
    planes, user, namespace = lab.planes, users["previewer"], scenario.namespace
    planes.kubectl("remote", "create", "namespace", namespace)
    try:
        management, workload = preview_manifests(scenario.gen, scenario.mgmt_namespace, namespace, user.subjects)
        granted("mgmt", management)
        granted("remote", workload)
        entry = lab.cluster_entry(scenario.cluster, namespace, createNamespace=False)
        project = lab.project(f"least-privilege-preview-{scenario.label}", config(lab, scenario, user, [entry]))
        previewed = project.run("preview", "--diff").check()
        assert f"{scenario.gen.chart}" in previewed.stdout and scenario.plane.relay_address in previewed.stdout
        assert "cannot look" not in previewed.output and "not reachable" not in previewed.output
    finally:
        remove_namespace(planes, scenario, namespace)


def test_a_user_without_the_relay_secrets_read_is_told_which_permission_and_where_to_find_it(
    lab: Lab, management_plane: ManagementPlane, users: dict[str, LabUser], granted: Granted
) -> None:
    gen = generation("1x")
    user = users["no-secrets"]
    role = management_manifest(gen, MGMT_NAMESPACE, user.subjects)
    (full,) = role.grants
    without = replace(full, rules=tuple(rule for rule in full.rules if "secrets" not in rule.resources))
    assert len(without.rules) == len(full.rules) - 1
    granted("mgmt", replace(role, grants=(without,)))
    entry = lab.cluster_entry("least-privilege-no-secrets", "least-privilege-no-secrets")
    scenario = Scenario("1x", gen, management_plane, MGMT_NAMESPACE)
    project = lab.project("least-privilege-no-secrets", config(lab, scenario, user, [entry]))
    previewed = project.run("preview")
    assert previewed.returncode != 0
    message = " ".join(previewed.output.split())  # as one line, however the CLI wraps it
    context = f"context 'e2e-mgmt' in kubeconfig file '{user.kubeconfig}'"
    assert (
        f"error: the relay secrets in namespace 'gloo-mesh' of the management cluster ({context}) cannot be read: "
        'secrets "relay-root-tls-secret" is forbidden: User "lp-no-secrets" cannot get resource "secrets" in API '
        'group "" in the namespace "gloo-mesh". Fix: grant get on the secrets relay-root-tls-secret and '
        "relay-identity-token-secret in that namespace (the management role, rbac/management-1x.yaml in the "
        "gloo-mesh-registration repository, docs/rbac.md)."
    ) in message, previewed.output[-4000:]
    assert "Traceback" not in previewed.output


def test_escalate_and_bind_by_name_do_not_let_helm_create_the_charts_role_and_holding_its_rules_does(
    lab: Lab, management_plane: ManagementPlane, users: dict[str, LabUser], granted: Granted
) -> None:
    """docs/rbac.md, the approach: ``escalate`` restricted to the chart's ClusterRole by name does not cover its create
    (a create has no name when it is authorized), so Helm's install is refused; where it works (an update) it lets the
    user rewrite the role and, with ``bind``, grant itself anything. The shipped role holds the chart's rules instead,
    and the same create passes."""
    planes, user, gen, namespace = lab.planes, users["escalator"], generation("1x"), "least-privilege-escalation"
    chart = rendered_chart_rbac(planes, lab.chart_repo.url, gen, management_plane.agent_version, namespace)
    (name,) = chart.cluster_roles
    role = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": chart.rules}
    by_name = Rule(
        "escalate and bind, by name", (RBAC_GROUP,), ("clusterroles",), ("get", "patch", "escalate", "bind"), (name,)
    )
    creates = Rule("create", (RBAC_GROUP,), ("clusterroles", "clusterrolebindings"), ("create",))
    escalation = Grant(
        "least-privilege-escalation", "escalate and bind by name", (by_name, creates), None, user.subjects
    )
    granted("remote", Manifest("escalation.yaml", "the approach not taken", (escalation,)))
    try:
        refused = kubectl_as(planes, user, "remote", "create", "-f", "-", input=json.dumps(role))
        assert refused.returncode != 0
        assert (
            f'user "{user.name}"' in refused.stderr
            and "is attempting to grant RBAC permissions not currently held" in refused.stderr
        )
        planes.kubectl("remote", "create", "-f", "-", input=json.dumps(role))  # the admin creates it
        everything = json.dumps({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
        assert (
            kubectl_as(
                planes, user, "remote", "patch", "clusterrole", name, "--type=merge", "-p", everything
            ).returncode
            == 0
        )
        binding = ["create", "clusterrolebinding", name, f"--clusterrole={name}", f"--user={user.name}"]
        assert kubectl_as(planes, user, "remote", *binding).returncode == 0
        assert kubectl_as(planes, user, "remote", "auth", "can-i", "*", "*", "-A").stdout.strip() == "yes"
        planes.kubectl("remote", "delete", "clusterrolebinding", name)
        planes.kubectl("remote", "delete", "clusterrole", name)
        shipped = workload_manifest(gen, namespace, chart, user.subjects, creates_namespace=True)
        granted("remote", replace(shipped, grants=shipped.grants[1:2]))  # the cluster-scoped part
        held = kubectl_as(planes, user, "remote", "create", "-f", "-", input=json.dumps(role))
        assert held.returncode == 0, held.stderr
    finally:
        planes.kubectl("remote", "delete", "clusterrolebinding", name, "--ignore-not-found")
        planes.kubectl("remote", "delete", "clusterrole", name, "--ignore-not-found")
