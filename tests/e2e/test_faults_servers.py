"""A registered cluster's API server that goes away, with the real engine: before ``pulumi up``, while ``pulumi up``
waits for the agent's client certificate, and for one cluster of a stack of two.

The module starts its own API server and controller manager (``faults``) on the session's etcd, so stopping it
affects no other module; started again it listens on the same port and finds all its objects (same etcd prefix).
The other cluster of the two-cluster stack is on the session's ``remote`` server, in a namespace of its own.

After every fault the servers are asked what is there; the token must be gone from every end state a run converges
to, and the next ``pulumi up`` once the server is back must complete the registration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cluster import ControlPlanes, extra_servers, server_is_running, start_server, stop_server
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import PulumiProject
from lab.registration_checks import (
    TOKEN,
    assert_nothing_registered,
    assert_registered,
    error_lines,
    has_secret,
    in_background,
    kubernetes_cluster,
    up,
    wait_until,
)
from lab.scenarios import cluster_entry, stack_config

FAULTS = "faults"  # this module's own API server
DOWN = ("down-e2e", "down-agents")  # scenario 2a: the server is down before `pulumi up`
WAIT = ("wait-e2e", "wait-agents")  # scenario 2b: the server goes down during the certificate wait
HEALTHY = ("healthy-e2e", "pair-agents")  # scenario 3, on the session's `remote`
FAILING = ("failing-e2e", "pair-agents")  # scenario 3, on `faults`


@pytest.fixture(scope="module")
def servers(planes: ControlPlanes, e2e_dir: Path) -> Iterator[ControlPlanes]:
    with extra_servers(planes, e2e_dir / "faults-servers", [FAULTS]) as view:
        yield view


def _running(view: ControlPlanes) -> None:
    if not server_is_running(view, FAULTS):
        start_server(view, FAULTS)


def _stopped(view: ControlPlanes) -> None:
    if server_is_running(view, FAULTS):
        stop_server(view, FAULTS)


class Stack:
    def __init__(self, cli: PulumiProject, agents: list[SimulatedAgent]) -> None:
        self.cli = cli
        self.agents = agents
        self.destroyed = False


@pytest.fixture(scope="module")
def stacks(
    bin_dir: Path,
    e2e_dir: Path,
    servers: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
) -> Iterator[dict[str, Stack]]:
    """One project per scenario, each with the simulated agents of its clusters (started here, stopped at the end)."""
    made: dict[str, Stack] = {}

    def make(stack: str, clusters: list[tuple[str, tuple[str, str]]]) -> None:
        config = stack_config(
            servers, chart_repo, [cluster_entry(servers, server, name, ns) for server, (name, ns) in clusters]
        )
        cli = PulumiProject.create(bin_dir, e2e_dir, stack, config)
        agents = [
            SimulatedAgent(servers, server, namespace=ns, cluster_name=name).start() for server, (name, ns) in clusters
        ]
        made[stack] = Stack(cli, agents)

    make("down", [(FAULTS, DOWN)])
    make("wait", [(FAULTS, WAIT)])
    make("pair", [("remote", HEALTHY), (FAULTS, FAILING)])
    yield made
    for stack in made.values():
        for agent in stack.agents:
            agent.stop()
    _running(servers)
    for stack in made.values():
        if not stack.destroyed:
            stack.cli.run("destroy", "--yes", "--skip-preview")


def _named(lines: list[str], *names: str) -> bool:
    return any(name in line for line in lines for name in names)


# -- 2a: the server is down before `pulumi up` ---------------------------------------------------------------------


def test_up_with_the_server_down_fails_naming_the_unreachable_cluster(
    stacks: dict[str, Stack], servers: ControlPlanes
) -> None:
    _stopped(servers)
    result = up(stacks["down"].cli)
    assert result.returncode != 0
    unreachable = error_lines(result, "reachable")
    assert unreachable, result.output[-4000:]
    assert _named(unreachable, DOWN[0], servers.clusters[FAULTS].context), unreachable


def test_up_without_preview_with_the_server_down_fails_naming_the_cluster_and_creates_nothing(
    stacks: dict[str, Stack], servers: ControlPlanes
) -> None:
    _stopped(servers)
    result = up(stacks["down"].cli, "--skip-preview")
    assert result.returncode != 0
    unreachable = error_lines(result, "cluster is unreachable")
    assert _named(unreachable, f"{DOWN[0]}-namespace"), result.output[-4000:]
    assert _named(unreachable, f"127.0.0.1:{servers.clusters[FAULTS].port}"), unreachable
    start_server(servers, FAULTS)
    assert_nothing_registered(servers, FAULTS, *DOWN)
    assert not has_secret(servers, FAULTS, DOWN[1], TOKEN)


def test_the_next_up_converges_once_the_server_is_back(
    stacks: dict[str, Stack], servers: ControlPlanes, management_plane: ManagementPlane
) -> None:
    _running(servers)
    up(stacks["down"].cli).check()
    assert_registered(servers, FAULTS, *DOWN, management_plane.agent_version)


# -- 2b: the server goes down while `pulumi up` waits for the client certificate ------------------------------------


def test_server_stopped_during_the_certificate_wait_fails_the_run(
    stacks: dict[str, Stack], servers: ControlPlanes
) -> None:
    _running(servers)
    (agent,) = stacks["wait"].agents
    agent.mode = "never"  # the agent has not reached the relay yet
    pool, running = in_background(lambda: up(stacks["wait"].cli, "--skip-preview"))
    with pool:
        # The KubernetesCluster is the last step before the wait; the wait puts the token in place first.
        wait_until(
            lambda: kubernetes_cluster(servers, WAIT[0]) is not None and has_secret(servers, FAULTS, WAIT[1], TOKEN),
            "the certificate wait to begin",
        )
        time.sleep(2)
        stop_server(servers, FAULTS)
        result = running.result(timeout=300)
    assert result.returncode != 0
    output = result.output
    assert f"cluster {WAIT[0]}: cannot watch secrets in namespace {WAIT[1]}" in output, output[-4000:]
    assert f"error: cluster {WAIT[0]}: the agent got no client certificate" in output
    assert f"warning: could not remove the bootstrap token from namespace {WAIT[1]} now; a guard keeps trying" in output
    start_server(servers, FAULTS)


def test_no_token_is_left_behind_once_the_server_is_back(stacks: dict[str, Stack], servers: ControlPlanes) -> None:
    """The guard of the failed step keeps trying (every 5 s, for 10 minutes): once the server answers, the token goes,
    without another pulumi up."""
    _running(servers)
    wait_until(lambda: not has_secret(servers, FAULTS, WAIT[1], TOKEN), "the guard to remove the token", timeout=30)


def test_the_next_up_after_the_restart_converges_and_removes_the_token(
    stacks: dict[str, Stack], servers: ControlPlanes, management_plane: ManagementPlane
) -> None:
    _running(servers)
    (agent,) = stacks["wait"].agents
    agent.mode = "answers"
    up(stacks["wait"].cli).check()
    assert_registered(servers, FAULTS, *WAIT, management_plane.agent_version)
    for stack in ("down", "wait"):
        for agent in stacks[stack].agents:
            agent.stop()


# -- 3: two clusters, one of whose servers is down -----------------------------------------------------------------


def test_with_one_server_down_the_other_cluster_registers_in_the_same_up(
    stacks: dict[str, Stack], servers: ControlPlanes, management_plane: ManagementPlane
) -> None:
    """``--continue-on-error``: by default the engine starts no step after the first one failed (the next test)."""
    _stopped(servers)
    result = up(stacks["pair"].cli, "--continue-on-error")
    assert result.returncode != 0
    assert_registered(servers, "remote", *HEALTHY, management_plane.agent_version)


def test_with_continue_on_error_the_other_cluster_registers_completely(
    stacks: dict[str, Stack], servers: ControlPlanes, management_plane: ManagementPlane
) -> None:
    _stopped(servers)
    result = up(stacks["pair"].cli, "--skip-preview", "--continue-on-error")
    assert result.returncode != 0
    assert _named(error_lines(result, "cluster is unreachable"), f"{FAILING[0]}-namespace"), result.output[-4000:]
    assert_registered(servers, "remote", *HEALTHY, management_plane.agent_version)
    assert kubernetes_cluster(servers, FAILING[0]) is None


def test_the_failing_cluster_completes_on_the_next_run_once_its_server_is_back(
    stacks: dict[str, Stack], servers: ControlPlanes, management_plane: ManagementPlane
) -> None:
    _running(servers)
    up(stacks["pair"].cli).check()
    assert_registered(servers, FAULTS, *FAILING, management_plane.agent_version)
    assert_registered(servers, "remote", *HEALTHY, management_plane.agent_version)


def test_destroy_removes_every_registration(stacks: dict[str, Stack], servers: ControlPlanes) -> None:
    _running(servers)
    for stack in stacks.values():
        stack.cli.run("destroy", "--yes", "--skip-preview").check()
        stack.destroyed = True
    for server, (name, namespace) in ((FAULTS, DOWN), (FAULTS, WAIT), ("remote", HEALTHY), (FAULTS, FAILING)):
        assert kubernetes_cluster(servers, name) is None
        for secret_name in (TOKEN, "relay-client-tls-secret", "relay-root-tls-secret"):
            assert not has_secret(servers, server, namespace, secret_name)
