"""A staged agent upgrade with a canary (issue 25), with the real engine and the policy pack, as CI previews it.

Two clusters of one stack, ``CANARY`` on the ``remote`` server and ``HELD`` on ``remote-b``, are registered with a
management plane of this module's own (``install_second_management_plane`` in ``MGMT_NAMESPACE``) whose server runs
``OLD``; the module's chart repository serves the agent chart at ``OLD`` and ``NEW``. The server is upgraded to
``NEW`` (its Deployment's image tag, :func:`lab.gloo.set_server_version`). Then, as the operations page says:

1. ``HELD`` gets ``agentVersion: OLD`` in its ``clusters`` entry, the canary none: the preview's diff names the
   canary's agent release only, and ``up`` upgrades the canary alone (a hold newer than the server is refused);
2. the hold is removed: the preview names the held cluster's release only, and ``up`` upgrades it.

Every preview and up runs with ``--policy-pack policy`` (what ``preview.yml`` runs): the hold passes the
``agent-chart-version`` policy, which reads it from the stack file. Last, what the alternative without a hold does
after the next server upgrade (``LATER``): ``pulumi up --target`` with the canary's release URN. The release versions
on both workload servers are printed after each step (``pytest -s`` shows them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import (
    AGENT_VERSION,
    ChartRepository,
    ManagementPlane,
    install_second_management_plane,
    set_server_version,
)
from lab.policy_pack import assert_pack_ran_clean, copy_policy_pack
from lab.pulumi_cli import ROOT, PulumiProject, Result, project_copy
from lab.registration_checks import assert_no_secret_in, helm_releases, kubernetes_cluster, planned_steps
from lab.scenarios import Lab, cluster_entry, stack_config

OLD = AGENT_VERSION
NEW = "1.1.7"
LATER = "1.1.8"
"""A third server version, for the run with ``--target`` (the alternative to a hold, which holds nothing)."""
MGMT_NAMESPACE = "gloo-mesh-staged"
CANARY = "staged-canary"
HELD = "staged-held"
SERVERS = {CANARY: "remote", HELD: "remote-b"}
"""Each cluster's API server; its agent namespace is named after it."""
STACK = "staged"


@pytest.fixture(scope="module")
def plane(planes: ControlPlanes, management_plane: ManagementPlane) -> ManagementPlane:
    """A management plane of the module's own (its server is upgraded here), at ``OLD``; the session's (the
    ``management_plane`` fixture) installs the KubernetesCluster CRD it needs."""
    return install_second_management_plane(planes, MGMT_NAMESPACE)


@pytest.fixture(scope="module")
def charts(tools_bin: Path, e2e_dir: Path) -> Iterator[ChartRepository]:
    repository = ChartRepository(
        e2e_dir / "staged" / "charts", tools_bin / "helm", versions=(OLD, NEW, LATER), platform_versions=()
    )
    repository.build()
    repository.start()
    yield repository
    repository.stop()


@pytest.fixture(scope="module")
def agents(lab: Lab) -> Iterator[None]:
    started = [lab.agent(name, name, server=server).start() for name, server in SERVERS.items()]
    yield
    for agent in started:
        agent.stop()


@pytest.fixture(scope="module")
def pack(e2e_dir: Path) -> Path:
    return copy_policy_pack(e2e_dir / "policy-pack-staged")


class StagedStack:
    """The module's one stack: its CLI and the stack file an operator edits between the steps."""

    def __init__(self, lab: Lab, charts: ChartRepository, pack: Path) -> None:
        self.lab = lab
        self.charts = charts
        self.pack = pack
        self.folder = lab.work / f"project-{STACK}"
        self.write(holds={})
        self.cli = PulumiProject(lab.bin_dir, lab.work / f"home-{STACK}", self.folder, STACK)
        self.cli.init()

    def write(self, holds: dict[str, str]) -> None:
        """The stack file: both clusters, each named in ``holds`` with its own ``agentVersion``."""
        entries = [
            cluster_entry(
                self.lab.planes, server, name, name, **({"agentVersion": holds[name]} if name in holds else {})
            )
            for name, server in SERVERS.items()
        ]
        config: dict[str, Any] = stack_config(self.lab.planes, self.charts, entries, namespace=MGMT_NAMESPACE)
        project_copy(ROOT, self.folder, STACK, config)

    def run(self, *args: str, pack: bool = True, check: bool = True) -> Result:
        """``pulumi <args>``, with the policy pack unless told (as ``preview.yml`` runs it), checked unless told."""
        result = self.cli.run(*args, *(("--policy-pack", str(self.pack)) if pack else ()))
        return result.check() if check else result

    def release_versions(self, step: str) -> dict[str, str]:
        """The agent chart of each cluster's release, as helm lists it on its server (printed under ``step``)."""
        found = {}
        for name, server in SERVERS.items():
            releases = helm_releases(self.lab.planes, server, name)
            assert [(n, status) for n, _, status in releases] == [("enterprise-agent", "deployed")], releases
            found[name] = releases[0][1].removeprefix("enterprise-agent-")
        print(
            f"\n{step}: " + ", ".join(f"{name} on {SERVERS[name]}: enterprise-agent {v}" for name, v in found.items())
        )
        return found

    def output_versions(self) -> dict[str, str]:
        clusters: dict[str, Any] = self.cli.outputs()["clusters"]
        return {name: clusters[name]["agentVersion"] for name in SERVERS}


@pytest.fixture(scope="module")
def stack(lab: Lab, charts: ChartRepository, pack: Path, plane: ManagementPlane, agents: None) -> Iterator[StagedStack]:
    staged = StagedStack(lab, charts, pack)
    yield staged
    staged.cli.run("destroy", "--yes", "--skip-preview")


def _one_line(output: str) -> str:
    """The CLI's output with each run of whitespace as one space (it wraps a violation's message)."""
    return " ".join(output.split())


def only_agent_updates(preview: Result) -> list[str]:
    """The clusters whose agent release the preview's diff updates; any other change fails the test."""
    steps = planned_steps(preview.stdout)
    assert all(op == "update" and name.endswith("-agent") for op, name in steps), steps
    return sorted(name.removesuffix("-agent") for _, name in steps)


def version_change(preview: Result, cluster: str, old: str = OLD, new: str = NEW) -> bool:
    """Whether the diff shows ``cluster``'s agent chart going from ``old`` to ``new``."""
    marker = f"::{cluster}-agent]"
    block = preview.stdout.split(marker, 1)[1].split("[urn=", 1)[0] if marker in preview.stdout else ""
    return re.search(rf'version\s*:\s*"{re.escape(old)}"\s*=>\s*"{re.escape(new)}"', block) is not None


def test_both_clusters_register_at_the_servers_version(stack: StagedStack, plane: ManagementPlane) -> None:
    result = stack.run("up", "--yes")
    assert_pack_ran_clean(result)
    assert_no_secret_in(result.output, plane, "the up output")
    assert stack.release_versions(f"registered, server at {OLD}") == {CANARY: OLD, HELD: OLD}
    for name in SERVERS:
        assert kubernetes_cluster(stack.lab.planes, name, MGMT_NAMESPACE) is not None


def test_with_the_others_held_the_upgraded_server_moves_the_canary_only(stack: StagedStack) -> None:
    set_server_version(stack.lab.planes, NEW, namespace=MGMT_NAMESPACE)
    stack.write(holds={HELD: OLD})
    preview = stack.run("preview", "--diff")
    assert_pack_ran_clean(preview)
    assert only_agent_updates(preview) == [CANARY], preview.stdout[-6000:]
    assert version_change(preview, CANARY), preview.stdout[-6000:]

    result = stack.run("up", "--yes")
    assert_pack_ran_clean(result)
    assert stack.release_versions(f"server at {NEW}, {HELD} held at {OLD}") == {CANARY: NEW, HELD: OLD}
    assert stack.output_versions() == {CANARY: NEW, HELD: OLD}


def test_a_hold_newer_than_the_server_is_refused_by_the_pack(stack: StagedStack) -> None:
    """An agent may lag its server, never lead it: the pack knows the server's version as the canary's registration
    read it from the server Deployment (its agent_version output; the real engine hands the pack no reads, so not the
    Deployment itself)."""
    stack.write(holds={HELD: LATER})
    refused = stack.run("preview", "--diff", check=False)
    assert refused.returncode != 0, refused.output[-6000:]
    assert f"Release '{HELD}-agent' installs agent {LATER}, held by the stack file's agentVersion" in refused.output
    assert (
        f"newer than the management server's version as registration '{CANARY}' read it from the server "
        f"Deployment: {NEW}"
    ) in _one_line(refused.output)
    assert stack.release_versions(f"hold at {LATER} refused") == {CANARY: NEW, HELD: OLD}


def test_without_the_hold_the_rest_follow(stack: StagedStack) -> None:
    stack.write(holds={})
    preview = stack.run("preview", "--diff")
    assert_pack_ran_clean(preview)
    assert only_agent_updates(preview) == [HELD], preview.stdout[-6000:]
    assert version_change(preview, HELD), preview.stdout[-6000:]

    stack.run("up", "--yes")
    assert stack.release_versions("hold removed") == {CANARY: NEW, HELD: NEW}
    assert stack.output_versions() == {CANARY: NEW, HELD: NEW}
    stack.cli.run("preview", "--expect-no-changes").check()


def test_up_with_target_is_refused_by_the_pack_and_without_it_holds_nothing(stack: StagedStack) -> None:
    """Today's alternative to a hold, after the next server upgrade: ``pulumi up --target`` with the canary's agent
    release URN. With the policy pack it is refused (nothing in the stack file says the rest stay behind); without it,
    it upgrades that release alone (the reads and each cluster's certificate step still run: a target leaves out
    resources, not invokes), but the stack file still says "follow the server", so the next plain preview (any
    ``up``: CI on a push, ``scripts/fleet.py up``) upgrades the rest."""
    set_server_version(stack.lab.planes, LATER, namespace=MGMT_NAMESPACE)
    release = (
        f"urn:pulumi:{STACK}::gloo-mesh-registration::gloo-mesh-relay:index:RemoteClusterRegistration"
        f"$kubernetes:helm.sh/v3:Release::{CANARY}-agent"
    )
    refused = stack.run("up", "--yes", "--target", release, check=False)
    assert refused.returncode != 0, refused.output[-6000:]
    assert f"Agent versions differ across the stack's clusters ({CANARY}-agent={LATER}, {HELD}-agent={NEW})" in (
        refused.output
    )
    # The untargeted release stays at NEW while the registrations read LATER from the server: the pack sees that the
    # agent is not at the server's version, from the registrations' outputs (it is handed no read of the server).
    assert (
        f"Release '{HELD}-agent' installs agent {NEW}; the management server runs {LATER}, as registrations "
        f"'{CANARY}', '{HELD}' read it from the server Deployment."
    ) in _one_line(refused.output)
    assert stack.release_versions(f"server at {LATER}, up --target refused by the pack") == {CANARY: NEW, HELD: NEW}

    stack.run("up", "--yes", "--target", release, pack=False)
    assert stack.release_versions(f"up --target {CANARY}-agent, no pack") == {CANARY: LATER, HELD: NEW}
    preview = stack.run("preview", "--diff", pack=False)
    assert only_agent_updates(preview) == [HELD], preview.stdout[-6000:]
    assert version_change(preview, HELD, NEW, LATER), preview.stdout[-6000:]
