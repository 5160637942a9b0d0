"""The fleet and what every measurement shares: the registrations of a fleet of N, the stack config that declares
them, and the servers, management plane, chart repository, agents and stack the runs use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.benchlib import PROJECT, ROOT
from benchmarks.fleet.agent import AgentSettings, Answer, FleetAgent
from lab.cluster import ControlPlanes
from lab.gloo import ChartRepository, ManagementPlane
from lab.latency_proxy import LatencyProxy
from lab.object_store import ObjectStore
from lab.pulumi_cli import PulumiProject, project_copy

if TYPE_CHECKING:
    from benchmarks.fleet.runs import Variant

STACK = "fleet"
S3_PREFIX = "fleet-benchmark"
"""Where in the S3 server's bucket the ``backend=s3`` variant keeps the stack's state."""
CERT_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class Registration:
    """One cluster of the fleet: its cluster name, its agent namespace and the remote server it lives on."""

    name: str
    namespace: str
    server: str


def fleet(n: int, servers: Sequence[str], prefix: str) -> list[Registration]:
    """``n`` registrations named ``<prefix>001``..., each in namespace ``gm-<name>`` on server i mod R."""
    return [
        Registration(f"{prefix}{i:03d}", f"gm-{prefix}{i:03d}", servers[(i - 1) % len(servers)])
        for i in range(1, n + 1)
    ]


def stack_config(planes: ControlPlanes, repo: ChartRepository, registrations: Sequence[Registration]) -> dict[str, Any]:
    """The stack config (``project:key`` -> value) of the project's program registering ``registrations``."""
    return {
        f"{PROJECT}:management": {
            "kubeconfig": str(planes.kubeconfig),
            "context": planes.clusters["mgmt"].context,
            "chartRepo": repo.url,
        },
        f"{PROJECT}:clusters": [
            {
                "name": r.name,
                "kubeconfig": str(planes.kubeconfig),
                "context": planes.clusters[r.server].context,
                "namespace": r.namespace,
                "clientCertTimeoutSeconds": CERT_TIMEOUT_SECONDS,
            }
            for r in registrations
        ],
    }


@dataclass
class Bench:
    """What every measurement shares: the servers, the management plane, the repository, the agents, the stack."""

    planes: ControlPlanes
    plane: ManagementPlane
    repo: ChartRepository
    agents: dict[str, FleetAgent]
    cli: PulumiProject
    work: Path
    remotes: tuple[str, ...]
    xargs_parallel: int
    log: Callable[[str], None]
    agent_settings: AgentSettings
    object_store: ObjectStore | None = None
    """The S3 server of the ``backend=s3`` variant's state (None: no such variant), the stack initialised in it."""

    def variant_env(self, variant: Variant | None) -> dict[str, str]:
        """The environment a run of ``variant`` adds (the defaults: none; their state is the file backend)."""
        if variant is None:
            return {}
        env = dict(variant.env)
        if variant.s3_state:
            assert self.object_store is not None, "a backend=s3 variant without the bench's S3 server"
            env |= self.object_store.env(S3_PREFIX, variant.s3_rtt_ms)
        return env

    def s3_proxy(self, variant: Variant | None) -> LatencyProxy | None:
        """The latency proxy a run of ``variant`` reaches the S3 server through (None: none, or directly)."""
        if variant is None or not variant.s3_state or variant.s3_rtt_ms is None:
            return None
        assert self.object_store is not None, "a backend=s3 variant without the bench's S3 server"
        return self.object_store.proxy(variant.s3_rtt_ms)

    def s3_history(self) -> int:
        """Updates recorded in the S3 server's bucket so far (the backend writes one history entry per update): a
        ``backend=s3`` run that leaves the number as it was did not use the bucket."""
        if self.object_store is None:
            return 0
        return sum(1 for key in self.object_store.keys(f"{S3_PREFIX}/.pulumi/history") if key.endswith(".history.json"))

    def certificates(self) -> int:
        """Client certificates the agents have written so far: a run registered what the difference says."""
        return sum(agent.certificates_written() for agent in self.agents.values())

    def answer_marks(self) -> dict[str, int]:
        """How many certificates each server's agent has written so far (:meth:`answers_since` takes it)."""
        return {server: agent.certificates_written() for server, agent in self.agents.items()}

    def answers_since(self, marks: dict[str, int]) -> list[Answer]:
        """The certificates the agents wrote since ``marks``: a run's, with the wait drawn for each."""
        return [a for server, agent in self.agents.items() for a in agent.answers_since(marks[server])]

    def answer_records(self) -> list[dict[str, object]]:
        """Every certificate the agents wrote, with its server, as JSON (the saved run keeps them)."""
        return [{"server": server, **a.record()} for server, agent in self.agents.items() for a in agent.answers]

    def expect(self, registrations: Iterable[Registration]) -> None:
        """Tell each server's agent which cluster name to answer in which namespace."""
        for r in registrations:
            self.agents[r.server].expect(r.namespace, r.name)

    def set_fleet(self, registrations: Sequence[Registration]) -> None:
        """Make the stack declare ``registrations`` (the next ``pulumi`` run registers them) and expect them."""
        project_copy(ROOT, self.cli.project_dir, STACK, stack_config(self.planes, self.repo, registrations))
        self.expect(registrations)


def server_pids(bench: Bench) -> list[int]:
    """The API servers, their controller managers and etcd: whose CPU a run costs besides its own."""
    return [p.popen.pid for server in bench.planes.clusters.values() for p in server.processes] + [
        bench.planes.etcd.popen.pid
    ]
