"""Objects left on a cluster by an earlier registration, with the real engine (issue 9, defect 6).

pulumi-kubernetes lets AlreadyExists pass in a preview (its dry run swallows it, and a Release create never calls Helm
in preview), so before the preflight check a left-over namespace or agent release passed ``pulumi preview`` and failed
``pulumi up`` half way. Now the preview fails, naming the object and the fix, and nothing is created on either
server. And a namespace whose ``istio-injection`` label another field manager owns is still labelled
(``createNamespace: false``: the NamespacePatch forces the server-side apply conflict).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import PulumiProject
from lab.registration_checks import get_json
from lab.scenarios import Lab

LEFTOVER_NAMESPACE = "leftover-ns"
LEFTOVER_RELEASE_NAMESPACE = "leftover-release"
FOREIGN_LABEL_NAMESPACE = "foreign-label"


def _project(lab: Lab, name: str, **settings: Any) -> PulumiProject:
    return lab.project(name, lab.one_cluster_config(name=name, **settings))


def _nothing_created(planes: ControlPlanes, cluster: str, namespace: str) -> None:
    for name in ("relay-root-tls-secret", "relay-identity-token-secret"):
        assert get_json(planes, "remote", "secret", name, "-n", namespace) is None
    assert get_json(planes, "mgmt", "kubernetesclusters.multicluster.solo.io", cluster, "-n", MGMT_NAMESPACE) is None


def test_a_leftover_namespace_fails_the_preview_and_up_before_anything_is_created(
    lab: Lab, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    planes.kubectl("remote", "create", "namespace", LEFTOVER_NAMESPACE)
    cli = _project(lab, "leftover-ns-e2e", namespace=LEFTOVER_NAMESPACE)
    for command in (("preview", "--diff"), ("up", "--yes")):
        result = cli.run(*command)
        assert result.returncode != 0, result.output
        assert f"namespace '{LEFTOVER_NAMESPACE}' exists already and this stack does not manage it" in result.output
        assert "Fix: set createNamespace: false" in result.output
        _nothing_created(planes, "leftover-ns-e2e", LEFTOVER_NAMESPACE)
    assert "kubernetes:core/v1:Namespace" not in cli.export()


def test_a_leftover_agent_release_fails_the_preview(
    lab: Lab, planes: ControlPlanes, management_plane: ManagementPlane, chart_repo: ChartRepository
) -> None:
    planes.kubectl("remote", "create", "namespace", LEFTOVER_RELEASE_NAMESPACE)
    helm = [str(planes.bin_dir / "helm"), "--kubeconfig", str(planes.kubeconfig)]
    subprocess.run(
        [
            *helm,
            "--kube-context",
            planes.clusters["remote"].context,
            "install",
            "enterprise-agent",
            "enterprise-agent",
            "--repo",
            chart_repo.url,
            "--version",
            management_plane.agent_version,
            "-n",
            LEFTOVER_RELEASE_NAMESPACE,
        ],
        check=True,
        capture_output=True,
    )
    cli = _project(
        lab,
        "leftover-release-e2e",
        namespace=LEFTOVER_RELEASE_NAMESPACE,
        createNamespace=False,
    )
    result = cli.run("preview", "--diff")
    assert result.returncode != 0, result.output
    assert (
        f"Helm release 'enterprise-agent' exists already in namespace '{LEFTOVER_RELEASE_NAMESPACE}'" in result.output
    )
    assert "deregister that registration first" in result.output
    _nothing_created(planes, "leftover-release-e2e", LEFTOVER_RELEASE_NAMESPACE)


@pytest.fixture(scope="module")
def agent(lab: Lab) -> Iterator[SimulatedAgent]:
    with lab.agent("foreign-label-e2e", FOREIGN_LABEL_NAMESPACE) as started:
        yield started


def test_a_label_owned_by_another_field_manager_is_taken_over(
    lab: Lab, planes: ControlPlanes, management_plane: ManagementPlane, agent: SimulatedAgent
) -> None:
    manifest = (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n"
        f"  name: {FOREIGN_LABEL_NAMESPACE}\n  labels:\n    istio-injection: enabled\n"
    )
    planes.kubectl("remote", "apply", "--server-side", "--field-manager=platform-team", "-f", "-", input=manifest)
    cli = _project(
        lab,
        "foreign-label-e2e",
        namespace=FOREIGN_LABEL_NAMESPACE,
        createNamespace=False,
    )
    cli.run("up", "--yes").check()
    namespace = get_json(planes, "remote", "namespace", FOREIGN_LABEL_NAMESPACE)
    assert namespace is not None and namespace["metadata"]["labels"]["istio-injection"] == "disabled"
    cli.run("destroy", "--yes").check()
    assert get_json(planes, "remote", "namespace", FOREIGN_LABEL_NAMESPACE) is not None


def test_a_kubectl_too_old_fails_the_run_once_with_the_fix_before_anything_is_created(
    lab: Lab, planes: ControlPlanes, management_plane: ManagementPlane, tmp_path: Path
) -> None:
    """kubectl is checked once per program run, before the first step that needs it: a kubectl older than the steps'
    minimum fails the preview and ``pulumi up`` with the check's message and its fix, not a traceback, and nothing is
    created on either cluster (``KUBECTL``, which every step reads, names the old one here)."""
    old = tmp_path / "kubectl"
    old.write_text('#!/bin/sh\necho \'{"clientVersion": {"gitVersion": "v1.28.3"}}\'\n')
    old.chmod(0o755)
    cli = _project(lab, "old-kubectl-e2e", namespace="old-kubectl")
    cli.extra_env["KUBECTL"] = str(old)
    for command in (("preview",), ("up", "--yes", "--skip-preview")):
        result = cli.run(*command)
        assert result.returncode != 0, result.output
        assert "kubectl 1.31 or newer is required (found: 1 28); install a newer kubectl" in result.output
        assert "Traceback" not in result.output, result.output
        _nothing_created(planes, "old-kubectl-e2e", "old-kubectl")
