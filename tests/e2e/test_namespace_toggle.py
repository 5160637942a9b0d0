"""Turning ``createNamespace`` off and on again on a registered cluster, with the real engine (issue 9, defect 2).

The namespace is a ``Namespace`` when the program owns it and a ``NamespacePatch`` when it only labels it: two types
under one name, and the type is part of the URN. Without aliases the engine would create the patch and then delete
the old Namespace, and Kubernetes everything in it (the agent, its secrets); the other way round, the create would
fail with "already exists". Here the namespace must survive both toggles as the same object (same uid), with the
agent in it, and be deleted by ``destroy`` only when the program owns it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import get_json
from lab.scenarios import Lab, one_cluster_config

CLUSTER = "toggle-e2e"
NAMESPACE = "toggle-agents"
STACK = "toggle"


class Toggle:
    """The project and a way to rewrite its stack file with another ``createNamespace``."""

    def __init__(self, cli: PulumiProject, folder: Path, planes: ControlPlanes, chart_repo: ChartRepository) -> None:
        self.cli = cli
        self.folder = folder
        self.planes = planes
        self.chart_repo = chart_repo

    def set_create_namespace(self, create: bool) -> None:
        config = one_cluster_config(
            self.planes, self.chart_repo, name=CLUSTER, namespace=NAMESPACE, createNamespace=create
        )
        project_copy(ROOT, self.folder, STACK, config)

    def namespace(self) -> dict[str, Any]:
        found = get_json(self.planes, "remote", "namespace", NAMESPACE)
        assert found is not None, f"namespace {NAMESPACE} is gone"
        return found


@pytest.fixture(scope="module")
def toggle(lab: Lab, management_plane: ManagementPlane, agent: SimulatedAgent) -> Toggle:
    cli = lab.project(STACK, lab.one_cluster_config(name=CLUSTER, namespace=NAMESPACE))
    return Toggle(cli, cli.project_dir, lab.planes, lab.chart_repo)


def _agent_is_in_place(toggle: Toggle) -> None:
    for kind, name in (
        ("secret", "relay-root-tls-secret"),
        ("secret", "relay-client-tls-secret"),
        ("sa", "enterprise-agent"),
    ):
        assert get_json(toggle.planes, "remote", kind, name, "-n", NAMESPACE) is not None, f"{kind}/{name} is gone"


def test_up_with_a_namespace_the_program_owns(toggle: Toggle) -> None:
    toggle.cli.run("up", "--yes", "--skip-preview").check()
    _agent_is_in_place(toggle)


def test_turning_create_namespace_off_keeps_the_namespace_and_the_agent(toggle: Toggle) -> None:
    uid = toggle.namespace()["metadata"]["uid"]
    toggle.set_create_namespace(False)
    preview = toggle.cli.run("preview", "--diff").check()
    assert "- kubernetes:core/v1:Namespace" not in preview.stdout, preview.stdout
    toggle.cli.run("up", "--yes", "--skip-preview").check()
    namespace = toggle.namespace()
    assert namespace["metadata"]["uid"] == uid, "the namespace was deleted and created again"
    assert "deletionTimestamp" not in namespace["metadata"]
    assert namespace["metadata"]["labels"]["istio-injection"] == "disabled"
    _agent_is_in_place(toggle)
    toggle.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()


def test_turning_it_on_again_takes_the_namespace_back_without_already_exists(toggle: Toggle) -> None:
    uid = toggle.namespace()["metadata"]["uid"]
    toggle.set_create_namespace(True)
    toggle.cli.run("up", "--yes", "--skip-preview").check()
    assert toggle.namespace()["metadata"]["uid"] == uid
    _agent_is_in_place(toggle)
    toggle.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()


def test_destroy_deletes_the_namespace_it_owns_again(toggle: Toggle) -> None:
    toggle.cli.run("destroy", "--yes", "--skip-preview").check()
    assert get_json(toggle.planes, "remote", "namespace", NAMESPACE) is None
