"""The policy pack (``policy/``) under the real CLI: ``pulumi preview``/``up --policy-pack`` on real stacks.

The CLI starts the pack through the Python language host's ``RunPlugin`` (``language_host.py``: the real v3.68 host with
the modern ``RunPlugin`` and PolicyProxy in front). The pack runs from a copy of ``policy/`` whose ``.venv`` is the
suite's interpreter (pulumi-policy and the ``gloo_mesh_registration`` package installed), as ``PulumiPolicy.yaml`` asks.
A clean stack passes and registers; a stack breaking a mandatory policy (a resource policy, and a stack policy through
``--policy-pack-config``) fails before anything is created; the stack's own config reaches the pack (``allowInsecure``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import MGMT_NAMESPACE, ManagementPlane, SimulatedAgent
from lab.policy_pack import assert_pack_ran_clean, copy_policy_pack, violation
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import assert_no_secret_in, get_json
from lab.scenarios import PROJECT, Lab

CLUSTER = "policy-e2e"
NAMESPACE = "policy-agents"

NewStack = Callable[[str, str, str, dict[str, Any]], PulumiProject]
"""(stack, cluster name, agent namespace, management settings) -> an initialised stack of the pack's project copy"""


@pytest.fixture(scope="module")
def pack(e2e_dir: Path) -> Path:
    """A copy of ``policy/`` (:func:`copy_policy_pack`)."""
    return copy_policy_pack(e2e_dir / "policy-pack")


@pytest.fixture(scope="module")
def new_stack(lab: Lab, management_plane: ManagementPlane) -> NewStack:
    """Stacks of one project copy (one state folder), each with its own cluster name and agent namespace."""

    def create(stack: str, name: str, namespace: str, management: dict[str, Any]) -> PulumiProject:
        config = lab.one_cluster_config(name=name, namespace=namespace)
        config[f"{PROJECT}:management"].update(management)
        folder = project_copy(ROOT, lab.work / "project-policy", stack, config)
        cli = PulumiProject(lab.bin_dir, lab.work / "home-policy", folder, stack)
        cli.init()
        return cli

    return create


@pytest.fixture(scope="module")
def project(new_stack: NewStack, agent: SimulatedAgent) -> PulumiProject:
    return new_stack("policy", CLUSTER, NAMESPACE, {})


def nothing_registered(planes: ControlPlanes, name: str, namespace: str) -> bool:
    return (
        get_json(planes, "remote", "namespace", namespace) is None
        and get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", name, "-n", MGMT_NAMESPACE) is None
    )


def test_preview_with_the_pack_passes_and_creates_nothing(
    project: PulumiProject, pack: Path, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = project.run("preview", "--diff", "--policy-pack", str(pack)).check()
    assert_pack_ran_clean(result)
    assert "kubernetes:helm.sh/v3:Release" in result.stdout
    assert_no_secret_in(result.output, management_plane, "the preview output")
    assert nothing_registered(planes, CLUSTER, NAMESPACE)


def test_up_with_the_pack_registers_the_cluster(
    project: PulumiProject, pack: Path, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = project.run("up", "--yes", "--policy-pack", str(pack)).check()
    assert_pack_ran_clean(result)
    assert_no_secret_in(result.output, management_plane, "the up output")
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", CLUSTER, "-n", MGMT_NAMESPACE)
    assert project.outputs()["clusters"][CLUSTER]["releaseStatus"] == "deployed"


MANDATORY_VIOLATIONS: dict[str, dict[str, Any]] = {
    # A resource policy: each agent Release, as the engine checks it before creating it.
    "relay-authority-allowed": {"management": {"relayAuthority": "relay.other.example"}, "pack_config": None},
    # A stack policy: the whole stack at the end of the preview, with a setting from --policy-pack-config.
    "agent-chart-version": {
        "management": {},
        "pack_config": {"agent-chart-version": {"expectedAgentVersion": "1.1.5"}},
    },
}


@pytest.mark.parametrize("policy", sorted(MANDATORY_VIOLATIONS))
def test_a_mandatory_violation_fails_preview_and_up_before_anything_is_created(
    policy: str,
    new_stack: NewStack,
    pack: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
) -> None:
    case = MANDATORY_VIOLATIONS[policy]
    name, namespace = f"policy-{policy}", f"pv-{policy}"
    cli = new_stack(f"violates-{policy}", name, namespace, case["management"])
    flags = ["--policy-pack", str(pack)]
    if case["pack_config"] is not None:
        config_file = e2e_dir / f"policy-config-{policy}.json"
        config_file.write_text(json.dumps(case["pack_config"]))
        flags += ["--policy-pack-config", str(config_file)]
    for command in (["preview", "--diff"], ["up", "--yes"]):
        result = cli.run(*command, *flags)
        assert result.returncode != 0, result.output
        assert violation("mandatory", policy, f"{name}-agent").search(result.output), result.output
        assert_no_secret_in(result.output, management_plane, f"the {command[0]} output")
        assert nothing_registered(planes, name, namespace), f"{command[0]} created resources"
    exported = json.loads(cli.export())
    assert not exported.get("deployment", {}).get("resources"), exported


def test_the_stack_config_reaches_the_pack_allow_insecure(
    new_stack: NewStack, pack: Path, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    name = "policy-insecure-e2e"
    cli = new_stack("insecure", name, "policy-insecure", {"insecure": True})
    refused = cli.run("preview", "--policy-pack", str(pack)).check()
    assert violation("advisory", "insecure-relay-refused", f"{name}-agent").search(refused.output), refused.output

    cli.run("config", "set", "gloo-mesh-guardrails:allowInsecure", "true").check()
    allowed = cli.run("preview", "--policy-pack", str(pack)).check()
    assert_pack_ran_clean(allowed)
    for result in (refused, allowed):
        assert_no_secret_in(result.output, management_plane, "the preview output")
    assert nothing_registered(planes, name, "policy-insecure")


def test_destroy_removes_the_registration(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    assert nothing_registered(planes, CLUSTER, NAMESPACE)
    assert get_json(planes, "remote", "secret", "relay-client-tls-secret", "-n", NAMESPACE) is None
