"""Users of the lab's clusters who are not admins, and the registration's roles (``rbac/``) granted to them.

A user here is what a platform team gives the identity that runs ``pulumi``: a client certificate signed by the
clusters' CA, outside ``system:masters`` (:meth:`lab.cluster.ControlPlanes.user_kubeconfig`), allowed only what the
roles of :mod:`gloo_mesh_registration.rbac` (the generator of ``rbac/``) grant it. The workload role's chart part is
read as a user reads it, from the agent chart ``helm template`` renders (:func:`rendered_chart_rbac`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from gloo_mesh_registration.agent_generation import AgentGeneration
from gloo_mesh_registration.rbac import ChartRbac, Manifest, Subject, agent_switch, chart_rbac, render

from .cluster import ControlPlanes


@dataclass(frozen=True)
class LabUser:
    """A user and its kubeconfig (one context per cluster, named as the admin's)."""

    name: str
    kubeconfig: Path

    @property
    def subjects(self) -> tuple[Subject, ...]:
        """What a binding names to grant this user a role."""
        return (Subject("User", self.name),)


def lab_user(planes: ControlPlanes, name: str, folder: Path) -> LabUser:
    """A user ``name`` with no permission yet (beyond what Kubernetes gives every authenticated user: discovery)."""
    return LabUser(name, planes.user_kubeconfig(name, folder / f"{name}.kubeconfig"))


def kubectl_as(
    planes: ControlPlanes, user: LabUser, cluster: str, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The lab's kubectl on ``cluster`` as ``user`` (not checked: a refusal is what some tests look for)."""
    argv = [str(planes.bin_dir / "kubectl"), "--kubeconfig", str(user.kubeconfig)]
    argv += ["--context", planes.clusters[cluster].context, *args]
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)


def grant(planes: ControlPlanes, cluster: str, manifests: Iterable[Manifest]) -> None:
    """Applies ``manifests`` (as ``rbac/`` holds them, comments and all) on ``cluster``, as the admin."""
    for manifest in manifests:
        planes.kubectl(cluster, "apply", "-f", "-", input=render(manifest))


def revoke(planes: ControlPlanes, cluster: str, manifests: Iterable[Manifest]) -> None:
    """Deletes the roles and bindings of ``manifests`` from ``cluster`` (a namespace one of them made stays)."""
    objects = [obj for manifest in manifests for _, obj in manifest.objects() if obj["kind"] != "Namespace"]
    planes.kubectl(cluster, "delete", "--ignore-not-found", "-f", "-", input=yaml.safe_dump_all(objects))


def rendered_chart_rbac(
    planes: ControlPlanes,
    chart_repo: str,
    generation: AgentGeneration,
    version: str,
    namespace: str,
) -> ChartRbac:
    """What the agent chart of ``generation`` at ``version`` demands of the identity that installs it into
    ``namespace``, read from the chart as ``helm template`` renders it (docs/rbac.md: how a user makes the workload
    role for a chart version)."""
    argv = [str(planes.bin_dir / "helm"), "template", generation.release_name, generation.chart, "--repo", chart_repo]
    argv += ["--version", version, "-n", namespace, *agent_switch(generation)]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    return chart_rbac(yaml.safe_load_all(rendered.stdout), f"the {generation.chart} {version} chart, helm template")
