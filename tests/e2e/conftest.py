"""Fixtures of the real-engine suite: the built tools, real control planes, the simulated Gloo pieces (the session's),
and the agent of a module's cluster.

The tools come from ``scripts/e2e-tools.sh`` (``GLOO_E2E_BIN_DIR`` names a folder it printed, to skip the call).
A missing tool fails the suite; nothing here skips.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cluster import ControlPlanes, control_planes
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent, install_management_plane
from lab.object_store import ObjectStore
from lab.object_store import object_store as running_object_store
from lab.pulumi_cli import ROOT, component_provider_copy, plugin_folder
from lab.scenarios import CLUSTER, REMOTE_NAMESPACE, Lab

_failed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _failed.append(report.nodeid)


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    given = os.environ.get("GLOO_E2E_BIN_DIR")
    if given:
        return Path(given)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "e2e-tools.sh"), "--print-bin-dir"], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/e2e-tools.sh could not provide the real tools:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def bin_dir(tools_bin: Path, e2e_dir: Path) -> Path:
    return plugin_folder(tools_bin, e2e_dir / "bin")


@pytest.fixture(scope="session")
def component_provider(e2e_dir: Path) -> Path:
    """``provider/`` (the component package served from Python) in a folder of its own (see component_provider_copy)."""
    return component_provider_copy(e2e_dir / "provider")


@pytest.fixture(scope="session")
def planes(tools_bin: Path, e2e_dir: Path) -> Iterator[ControlPlanes]:
    # A management cluster and two workload clusters (examples/python registers two).
    with control_planes(tools_bin, e2e_dir / "clusters", ("mgmt", "remote", "remote-b")) as running:
        yield running
        if _failed:
            print(f"\nreal-engine suite: server logs kept in {running.work_dir / 'logs'}\n{running.logs()}")


@pytest.fixture(scope="session")
def management_plane(planes: ControlPlanes) -> ManagementPlane:
    return install_management_plane(planes)


@pytest.fixture(scope="session")
def chart_repo(tools_bin: Path, e2e_dir: Path) -> Iterator[ChartRepository]:
    repository = ChartRepository(e2e_dir / "charts", tools_bin / "helm")
    repository.build()
    repository.start()
    yield repository
    repository.stop()


@pytest.fixture(scope="session")
def object_store(tools_bin: Path, e2e_dir: Path) -> Iterator[ObjectStore]:
    """A real S3 server (SeaweedFS) with one bucket for Pulumi state, for the session (see lab/object_store.py)."""
    with running_object_store(tools_bin, e2e_dir / "s3") as store:
        yield store
        if _failed:
            print(f"\nreal-engine suite: the S3 server's log is {store.process.log}")


@pytest.fixture(scope="session")
def lab(bin_dir: Path, e2e_dir: Path, planes: ControlPlanes, chart_repo: ChartRepository) -> Lab:
    """The session's lab in one object: stack files on its servers, projects of this program, agents."""
    return Lab(bin_dir, e2e_dir, planes, chart_repo)


@pytest.fixture(scope="module")
def agent(request: pytest.FixtureRequest, lab: Lab) -> Iterator[SimulatedAgent]:
    """The simulated agent of the module's one registered cluster, for the whole module: the module's ``CLUSTER``
    in its agent namespace ``NAMESPACE`` on the ``remote`` server (lab.scenarios' defaults where it names none)."""
    cluster = getattr(request.module, "CLUSTER", CLUSTER)
    namespace = getattr(request.module, "NAMESPACE", REMOTE_NAMESPACE)
    with lab.agent(cluster, namespace) as started:
        yield started
