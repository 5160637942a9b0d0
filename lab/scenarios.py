"""The suite's scenarios: stack files for the lab's servers, and the :class:`Lab` that turns one into a project.

A scenario is a stack file's config (what ``stacks/Pulumi.<stack>.yaml`` holds) pointing at the lab's API servers and
stand-in chart repository, a project of this program with one stack of that config, and the simulated agent of each
cluster it registers. ``tests/e2e/conftest.py`` gives a test module the session's :class:`Lab` (``lab``) and the
agent of its cluster (``agent``); the demo and the upgrade check build theirs the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .cluster import ControlPlanes, control_planes
from .gloo import ChartRepository, ManagementPlane, SimulatedAgent, install_management_plane
from .pulumi_cli import PulumiProject, plugin_folder

PROJECT = "gloo-mesh-registration"
CLUSTER = "remote-e2e"
REMOTE_NAMESPACE = "gloo-mesh-agent"
CLUSTER_DOMAIN = "remote.e2e.local"


def cluster_entry(planes: ControlPlanes, server: str, name: str, namespace: str, **settings: Any) -> dict[str, Any]:
    """One ``clusters`` entry: cluster ``name`` on API server ``server``, agent namespace ``namespace``."""
    return {
        "name": name,
        "kubeconfig": str(planes.kubeconfig),
        "context": planes.clusters[server].context,
        "namespace": namespace,
        "clientCertTimeoutSeconds": 20,
        **settings,
    }


def stack_config(
    planes: ControlPlanes, chart_repo: ChartRepository, clusters: list[dict[str, Any]], **management: Any
) -> dict[str, Any]:
    """A stack file's config: the management plane on ``mgmt`` (more keys as given), and ``clusters``."""
    return {
        f"{PROJECT}:management": {
            "kubeconfig": str(planes.kubeconfig),
            "context": planes.clusters["mgmt"].context,
            "chartRepo": chart_repo.url,
            **management,
        },
        f"{PROJECT}:clusters": clusters,
    }


def one_cluster_config(
    planes: ControlPlanes,
    chart_repo: ChartRepository,
    *,
    name: str = CLUSTER,
    namespace: str = REMOTE_NAMESPACE,
    **cluster_settings: Any,
) -> dict[str, Any]:
    """A stack file's config: the management plane on ``mgmt``, one cluster on ``remote`` (more keys as given)."""
    entry = cluster_entry(planes, "remote", name, namespace, **{"clientCertTimeoutSeconds": 60, **cluster_settings})
    return stack_config(planes, chart_repo, [entry])


@dataclass(frozen=True)
class Lab:
    """What a scenario runs on: the CLI's plugin folder, a work folder, the API servers and the chart repository."""

    bin_dir: Path
    work: Path
    planes: ControlPlanes
    chart_repo: ChartRepository

    def at(self, work: Path) -> Lab:
        """The same lab with another work folder (projects and homes of their own)."""
        return replace(self, work=work)

    def one_cluster_config(self, **settings: Any) -> dict[str, Any]:
        """:func:`one_cluster_config` on this lab's servers."""
        return one_cluster_config(self.planes, self.chart_repo, **settings)

    def stack_config(self, clusters: list[dict[str, Any]], **management: Any) -> dict[str, Any]:
        """:func:`stack_config` on this lab's servers."""
        return stack_config(self.planes, self.chart_repo, clusters, **management)

    def cluster_entry(self, name: str, namespace: str, *, server: str = "remote", **settings: Any) -> dict[str, Any]:
        """:func:`cluster_entry` for a cluster on API server ``server``."""
        return cluster_entry(self.planes, server, name, namespace, **settings)

    def project(self, stack: str, config: dict[str, Any], **options: Any) -> PulumiProject:
        """A copy of this program with one initialised stack ``stack`` of ``config`` (see PulumiProject.create)."""
        return PulumiProject.create(self.bin_dir, self.work, stack, config, **options)

    def agent(
        self, cluster: str = CLUSTER, namespace: str = REMOTE_NAMESPACE, *, server: str = "remote", **options: Any
    ) -> SimulatedAgent:
        """The simulated agent of ``cluster`` (not started: use it as a context manager, or start it)."""
        return SimulatedAgent(self.planes, server, namespace=namespace, cluster_name=cluster, **options)


@contextmanager
def standalone_lab(tools: Path, work: Path, *, providers_on_path: bool = True) -> Iterator[tuple[Lab, ManagementPlane]]:
    """A lab outside pytest (the demo, the upgrade check), in ``work``: API servers ``mgmt`` and ``remote`` with the
    1.x management plane, the chart repository, and the CLI's plugin folder (providers on PATH, or installed into
    each project's plugin cache as a user's machine holds them). Everything stops on exit."""
    with control_planes(tools, work / "clusters") as planes:
        plane = install_management_plane(planes)
        charts = ChartRepository(work / "charts", tools / "helm")
        charts.build()
        charts.start()
        try:
            bin_dir = plugin_folder(tools, work / "bin", providers_on_path=providers_on_path)
            yield Lab(bin_dir, work, planes, charts), plane
        finally:
            charts.stop()
