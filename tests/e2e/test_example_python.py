"""``examples/python``: the component imported by another program, with that program's own Providers.

Two workload clusters (two API servers) registered with one management plane reached through the ambient
kubeconfig's context, workload kubeconfigs as secret config (set through stdin, never on a command line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import assert_no_secret_in, get_json

CLUSTERS = {"eu-west-1-a": "remote", "eu-west-1-b": "remote-b"}
NAMESPACE = "gloo-mesh"  # the component's default


@pytest.fixture(scope="module")
def agents(planes: ControlPlanes) -> Iterator[list[SimulatedAgent]]:
    started = [
        SimulatedAgent(planes, server, namespace=NAMESPACE, cluster_name=name).start()
        for name, server in CLUSTERS.items()
    ]
    yield started
    for agent in started:
        agent.stop()


@pytest.fixture(scope="module")
def project(
    bin_dir: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    agents: list[SimulatedAgent],
) -> PulumiProject:
    management_kubeconfig = e2e_dir / "example-management.kubeconfig"
    management_kubeconfig.write_text(planes.kubeconfig_text("mgmt", "mgmt-e2e"))
    config = {"register-from-python:managementContext": "mgmt-e2e", "register-from-python:chartRepo": chart_repo.url}
    folder = project_copy(ROOT / "examples" / "python", e2e_dir / "project-example", "example", config)
    cli = PulumiProject(
        bin_dir, e2e_dir / "home-example", folder, "example", extra_env={"KUBECONFIG": str(management_kubeconfig)}
    )
    cli.init()
    for name, server in CLUSTERS.items():
        kubeconfig = planes.kubeconfig_text(server, name)
        cli.run("config", "set", "--secret", f"{name}-kubeconfig", stdin=kubeconfig).check()
    return cli


def test_up_registers_both_clusters(
    project: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = project.run("up", "--yes", "--skip-preview").check()
    assert_no_secret_in(result.output, management_plane, "the up output")
    assert project.outputs()["releaseStatus"] == ["deployed", "deployed"]
    for name, server in CLUSTERS.items():
        assert get_json(planes, server, "secret", "relay-client-tls-secret", "-n", NAMESPACE) is not None
        assert get_json(planes, server, "secret", "relay-identity-token-secret", "-n", NAMESPACE) is None
        assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", name, "-n", "gloo-mesh") is not None
    assert_no_secret_in(project.export(), management_plane, "the exported state")


def test_destroy_removes_both_registrations(project: PulumiProject, planes: ControlPlanes) -> None:
    project.run("destroy", "--yes", "--skip-preview").check()
    for name, server in CLUSTERS.items():
        assert get_json(planes, server, "namespace", NAMESPACE) is None
        assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", name, "-n", "gloo-mesh") is None
