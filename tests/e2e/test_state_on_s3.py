"""Stacks on a shared S3 state backend (issue 24): a real S3 server (SeaweedFS, built from its Go module by
``scripts/e2e-tools.sh``, see lab/object_store.py) holds the state of every stack of this module, as a team's bucket
does. What runs for real: the CLI's diy backend on S3 (each checkpoint a signed network write, a lock object per update
under ``.pulumi/locks/``), two stacks at once, a second run of one stack refused by its lock, a runner killed in the
middle of an update and the README's recovery (``pulumi cancel``, then ``pulumi up``), and one cluster name in two
stacks refused by the second stack's preview.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fleet.agent import FleetAgent
from lab.cluster import CONTROLLERS, WORKLOAD_CONTROLLERS, ControlPlanes, extra_servers
from lab.gloo import ChartRepository, ManagementPlane
from lab.object_store import ObjectStore
from lab.pulumi_cli import PulumiProject, Result
from lab.registration_checks import (
    assert_nothing_registered,
    assert_registered,
    helm_releases,
    helm_uninstall,
    kubernetes_cluster,
    up,
    wait_until,
)
from lab.scenarios import PROJECT, Lab, cluster_entry, stack_config

PREFIX = "fleet-e2e"
LOCKS = f"{PREFIX}/.pulumi/locks/"
# stack: (cluster name, API server, agent namespace)
STACKS = {
    "fleet-a": ("s3-a", "remote", "s3-a-agent"),
    "fleet-b": ("s3-b", "remote-b", "s3-b-agent"),
}


@pytest.fixture(scope="module")
def projects(lab: Lab, object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A checkout of the program per stack (as two CI runners have), both with their state in the one bucket."""
    work = lab.at(tmp_path_factory.mktemp("s3"))
    made: dict[str, PulumiProject] = {}
    for stack, (cluster, server, namespace) in STACKS.items():
        made[stack] = _s3_stack(work, object_store, stack, cluster, server, namespace, clientCertTimeoutSeconds=60)
    yield {"lab": work, "projects": made}
    for cli in made.values():
        cli.run("destroy", "--yes", timeout=600)


def _state_keys(store: ObjectStore) -> list[str]:
    return store.keys(PREFIX)


def _locks(store: ObjectStore) -> list[str]:
    return [key for key in _state_keys(store) if key.startswith(LOCKS)]


def _s3_stack(
    work: Lab, store: ObjectStore, stack: str, cluster: str, server: str, namespace: str, **settings: Any
) -> PulumiProject:
    """A project with one stack registering ``cluster`` (agent namespace ``namespace`` on ``server``), its state in
    this module's folder of the S3 bucket."""
    config = work.stack_config([work.cluster_entry(cluster, namespace, server=server, **settings)])
    return work.project(stack, config, extra_env=store.env(PREFIX))


def _assert_refused_by(result: Result, lock: str) -> None:
    """A run refused by the stack's lock ``lock`` (an object key), which the message names with the fix."""
    assert result.returncode != 0, result.output
    assert "the stack is currently locked by 1 lock(s)" in result.output, result.output
    assert lock.rsplit("/", 1)[-1] in result.output, f"the lock {lock} is not named:\n{result.output}"
    assert "pulumi cancel" in result.output


def _another_checkout(work: Lab, cli: PulumiProject, name: str) -> PulumiProject:
    """The same stack in a checkout of its own (another runner): the stack file copied, its state the same."""
    folder = work.work / name
    shutil.copytree(cli.project_dir, folder, symlinks=True)
    return PulumiProject(cli.bin_dir, work.work / f"home-{name}", folder, cli.stack, cli.extra_env)


def _runner_processes(cli: PulumiProject) -> list[int]:
    """Every process of a runner: the CLI, its plugins and the shell steps (and what they started, the token guard
    among them, though it runs in a session of its own), told by the TMPDIR the runner gave them."""
    marker = f"TMPDIR={cli.home / 'tmp'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill_runner(cli: PulumiProject) -> list[int]:
    """SIGKILL to every process of the runner at once, as a runner's machine that goes away ends them."""
    killed = _runner_processes(cli)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _runner_processes(cli), "the runner's processes to end", timeout=30)
    return killed


def _assert_state_is_clean(cli: PulumiProject) -> None:
    """No pending operation, every resource once."""
    deployment = json.loads(cli.export())["deployment"]
    assert not deployment.get("pending_operations"), deployment.get("pending_operations")
    urns = [resource["urn"] for resource in deployment["resources"]]
    assert len(urns) == len(set(urns)), sorted(urns)


def test_two_stacks_register_their_clusters_at_the_same_time(
    projects: dict[str, Any], planes: ControlPlanes, management_plane: ManagementPlane, object_store: ObjectStore
) -> None:
    lab: Lab = projects["lab"]
    clis: dict[str, PulumiProject] = projects["projects"]
    agents = [lab.agent(cluster, namespace, server=server).start() for cluster, server, namespace in STACKS.values()]
    try:
        outputs = {stack: lab.work / f"up-{stack}.log" for stack in clis}
        running = {}
        for stack, cli in clis.items():
            with outputs[stack].open("w") as log:
                running[stack] = cli.start("up", "--yes", stdout=log, stderr=subprocess.STDOUT)
        for stack, process in running.items():
            assert process.wait(timeout=600) == 0, outputs[stack].read_text()[-6000:]
    finally:
        for agent in agents:
            agent.stop()
    for cluster, server, namespace in STACKS.values():
        assert_registered(planes, server, cluster, namespace, management_plane.agent_version)
    keys = _state_keys(object_store)
    for stack in STACKS:
        assert f"{PREFIX}/.pulumi/stacks/{PROJECT}/{stack}.json" in keys, keys
    assert _locks(object_store) == [], "a finished update leaves no lock"
    # Each stack's KubernetesCluster carries its own stack's mark.
    for stack, (cluster, _, _) in STACKS.items():
        registered = kubernetes_cluster(planes, cluster)
        assert registered is not None
        assert registered["metadata"]["labels"]["gloo-mesh-registration/stack"] == f"{PROJECT}.{stack}"


def test_a_second_run_of_a_stack_is_refused_by_its_lock_and_the_first_finishes(
    projects: dict[str, Any], planes: ControlPlanes, management_plane: ManagementPlane, object_store: ObjectStore
) -> None:
    work: Lab = projects["lab"]
    cluster, server, namespace = "s3-locked", "remote", "s3-locked-agent"
    first = _s3_stack(work, object_store, "fleet-locked", cluster, server, namespace, clientCertTimeoutSeconds=90)
    second = _another_checkout(work, first, "second-runner")
    log = work.work / "up-fleet-locked.log"
    # The agent answers 20 s after the token is there: the first update holds the lock that long, at least.
    with work.agent(cluster, namespace, server=server, delay_seconds=20), log.open("w") as output:
        running = first.start("up", "--yes", stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: bool(_locks(object_store)), "the first update's lock", timeout=120)
            [lock] = _locks(object_store)
            _assert_refused_by(up(second), lock)
            assert running.poll() is None, "the refused run must not end the first"
            assert running.wait(timeout=600) == 0, log.read_text()[-6000:]
        finally:
            if running.poll() is None:
                running.kill()
    try:
        assert_registered(planes, server, cluster, namespace, management_plane.agent_version)
        assert _locks(object_store) == []
        _assert_state_is_clean(first)
    finally:
        first.run("destroy", "--yes", timeout=600).check()
    assert_nothing_registered(planes, server, cluster, namespace)


def test_a_killed_runner_leaves_a_lock_that_cancel_clears_and_the_next_up_converges(
    projects: dict[str, Any], planes: ControlPlanes, management_plane: ManagementPlane, object_store: ObjectStore
) -> None:
    work: Lab = projects["lab"]
    cluster, server, namespace = "s3-killed", "remote", "s3-killed-agent"
    cli = _s3_stack(work, object_store, "fleet-killed", cluster, server, namespace, clientCertTimeoutSeconds=120)
    log = work.work / "up-fleet-killed.log"
    try:
        with log.open("w") as output:
            cli.start("up", "--yes", stdout=output, stderr=subprocess.STDOUT)
            # No agent yet: the update waits for the client certificate, after the release and the KubernetesCluster.
            wait_until(
                lambda: (
                    kubernetes_cluster(planes, cluster) is not None and bool(helm_releases(planes, server, namespace))
                ),
                "the update to reach the client certificate wait",
                timeout=300,
            )
            killed = _kill_runner(cli)
        assert len(killed) >= 3, f"the CLI, its plugins and a step: {killed}"
        [lock] = _locks(object_store)

        _assert_refused_by(up(cli), lock)

        # The README's recovery: `pulumi cancel` deletes the dead run's lock, then `pulumi up` converges.
        cli.run("cancel", "--yes").check()
        assert _locks(object_store) == []
        with work.agent(cluster, namespace, server=server):
            recovered = up(cli)
        assert recovered.returncode == 0, recovered.output[-8000:]
        assert_registered(planes, server, cluster, namespace, management_plane.agent_version)
        assert [name for name, _, _ in helm_releases(planes, server, namespace)] == ["enterprise-agent"]
        _assert_state_is_clean(cli)
        assert cli.run("preview", "--expect-no-changes").returncode == 0
        assert _locks(object_store) == []
    finally:
        cli.run("destroy", "--yes", timeout=600)
    assert_nothing_registered(planes, server, cluster, namespace)


def test_a_runner_killed_while_it_installs_the_agent_release_is_recovered_as_the_readme_says(
    projects: dict[str, Any],
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    object_store: ObjectStore,
    tools_bin: Path,
) -> None:
    """Killed inside a create: the engine's state holds a pending create of the release, and Helm a release in
    ``pending-install``. The README's steps (troubleshooting, "killed process") clear it: ``pulumi cancel``, ``pulumi
    refresh --clear-pending-creates``, ``helm uninstall``, ``pulumi up``. The chart here holds the agent's Deployment,
    so the install waits for its Pod (on a server of this test with the deployment and replicaset controllers), and
    the fleet benchmark's agent makes that Pod Ready once it has written the certificate."""
    work: Lab = projects["lab"].at(projects["lab"].work / "killed-in-create")
    cluster, server, namespace = "s3-killed-in-create", "remote-w", "s3-killed-in-create-agent"
    charts = ChartRepository(work.work / "charts", tools_bin / "helm", agent_deployment=True)
    charts.build()
    charts.start()
    workloads = dataclasses.replace(planes, controllers=(*CONTROLLERS, *WORKLOAD_CONTROLLERS))
    with extra_servers(workloads, work.work / "servers", (server,)) as view:
        config = stack_config(view, charts, [cluster_entry(view, server, cluster, namespace)])
        cli = work.project("fleet-killed-in-create", config, extra_env=object_store.env(PREFIX))
        try:
            with (work.work / "up.log").open("w") as output:
                cli.start("up", "--yes", stdout=output, stderr=subprocess.STDOUT)
                wait_until(
                    lambda: helm_releases(view, server, namespace) != [],
                    "the agent release's install to begin",
                    timeout=300,
                )
                time.sleep(2)  # inside the install's wait for the agent's Pod, which no agent makes Ready yet
                _kill_runner(cli)
            [(_, _, status)] = helm_releases(view, server, namespace)
            assert status == "pending-install"
            pending = json.loads(cli.export())["deployment"].get("pending_operations") or []
            assert [(op["type"], op["resource"]["type"]) for op in pending] == [
                ("creating", "kubernetes:helm.sh/v3:Release")
            ]
            assert kubernetes_cluster(view, cluster) is None, "the KubernetesCluster comes after the release"

            cli.run("cancel", "--yes").check()
            cli.run("refresh", "--yes", "--clear-pending-creates").check()
            helm_uninstall(view, server, namespace)
            agent = FleetAgent(view, server, expected={namespace: cluster}).start()
            try:
                recovered = up(cli)
            finally:
                agent.stop()
            assert recovered.returncode == 0, recovered.output[-8000:]
            assert_registered(view, server, cluster, namespace, management_plane.agent_version)
            _assert_state_is_clean(cli)
            assert _locks(object_store) == []
        finally:
            cli.run("cancel", "--yes")
            cli.run("destroy", "--yes", timeout=600)
            charts.stop()
        assert_nothing_registered(view, server, cluster, namespace)


def test_a_cluster_name_in_two_stacks_is_refused_by_the_second_stacks_preview(
    projects: dict[str, Any], planes: ControlPlanes, management_plane: ManagementPlane, object_store: ObjectStore
) -> None:
    """The KubernetesCluster of ``fleet-a`` (registered above) is a leftover to another stack that names the same
    cluster: the preview fails, names the other stack by its label, and nothing is created."""
    work: Lab = projects["lab"]
    cluster = STACKS["fleet-a"][0]
    namespace = "s3-duplicate-agent"
    cli = _s3_stack(work, object_store, "fleet-duplicate", cluster, "remote-b", namespace)
    for command in (("preview", "--diff"), ("up", "--yes")):
        result = cli.run(*command)
        assert result.returncode != 0, result.output
        assert (
            f"KubernetesCluster '{cluster}' exists already in namespace 'gloo-mesh' of the management cluster, "
            "registered by another stack: one cluster name can be registered by one stack only." in result.output
        ), result.output[-6000:]
        assert f"It carries the other stack's label gloo-mesh-registration/stack={PROJECT}.fleet-a." in result.output
    assert planes.kubectl("remote-b", "get", "namespace", namespace, "--ignore-not-found").strip() == ""
    registered = kubernetes_cluster(planes, cluster)
    assert registered is not None and registered["metadata"]["labels"]["gloo-mesh-registration/stack"] == (
        f"{PROJECT}.fleet-a"
    )
