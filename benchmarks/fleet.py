"""Fleet: `pulumi up`, preview and destroy of 1 to 50 registrations on the real engine, against the guide's shell steps.

Everything runs on this machine, started by the script: a control plane (``tests/e2e/cluster.control_planes``: one
etcd, a management kube-apiserver and ``--remotes`` remote kube-apiservers, each with its controller manager), the
simulated Gloo management plane and the stand-in chart repository of ``lab/gloo.py``, and one watch-based
simulated agent per remote server (``benchmarks/fleet_agent.py``: it answers every registration at once, with two
watches per server instead of ``SimulatedAgent``'s kubectl polls). A fleet of N registrations spreads over the remote
servers (registration i on server i mod R), each in its own agent namespace and under its own cluster name.

Measured for each N, in each repeat, in this order and on the same servers:

* the project's own program (``Pulumi.yaml``, ``__main__.py``, a copy made by ``tests/e2e/pulumi_cli.project_copy``)
  in one stack of N clusters, through the real CLI: ``pulumi up --skip-preview`` from an empty stack, ``pulumi
  preview --expect-no-changes``, ``pulumi up --skip-preview --expect-no-changes``, ``pulumi destroy --skip-preview``,
  each with the engine's default ``--parallel`` (4 x the cores) unless told;
* the guide's Helm path as a shell script per cluster (``lab.guide.GUIDE_STEPS``: create the namespace
  and the two secrets, ``helm install`` at the version, apply the KubernetesCluster, ``kubectl wait`` for the client
  certificate, delete the token), run one cluster after another (``xargs -P 1``, as meshctl registers) and with the
  clusters in parallel (``xargs -P <--xargs-parallel>``); what a script registered is removed afterwards (not timed).

During each no-change preview, the requests served by the management API server (its ``/metrics``, as
``lab/observe.py`` reads them), by the remote servers, and by the chart repository are counted. At
``--breakdown-size`` N, extra ``pulumi up`` runs from empty with ``--otel-traces`` (and their destroys) show where
the time goes (provider start-up, steps by kind, the certificate wait, checkpoint writes) and a sampler of ``/proc``
shows which processes used the CPU. ``--variants`` repeats Pulumi runs with a change (``parallel=64@20``: the four
runs with ``--parallel 64`` at N = 20; ``skip-checkpoints@50``: up and destroy with
``PULUMI_SKIP_CHECKPOINTS=true`` at N = 50), in the same repeat as the defaults.

The command provider is ``lab/command_provider.py`` (the real-engine suite's one double), served as wide as the
real Go provider (``benchmarks/fleet_plugins.py``). Every figure is the median of ``--repeats`` runs with its spread
(half the range); ratios are taken per repeat, from runs made minutes apart on the same servers. ``--json`` keeps
every run, the traced runs' work by kind included, so that ``--from-json`` prints the same tables and plot again.

    python -m benchmarks.fleet                       # N = 1, 5, 20, 50, 3 repeats, breakdown at 20 (about an hour)
    python -m benchmarks.fleet --quick               # N = 1 and 2, one repeat, breakdown at 2: the smoke test
    python -m benchmarks.fleet --from-json benchmarks/results/fleet.json   # the tables of a saved run, nothing run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.benchlib import (
    PROJECT,
    ROOT,
    Summary,
    machine_summary,
    print_table,
    summarize,
    tools_folder,
    verdict,
)
from benchmarks.fleet_agent import FleetAgent
from benchmarks.fleet_plugins import WORKERS, plugin_folder
from lab.cluster import ControlPlanes, control_planes
from lab.gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane, install_management_plane
from lab.guide import GUIDE_STEPS
from lab.observe import ApiClient, RequestCounts
from lab.pulumi_cli import PulumiProject, project_copy

STACK = "fleet"
DEFAULT_SIZES = (1, 5, 20, 50)
QUICK_SIZES = (1, 2)
CERT_TIMEOUT_SECONDS = 180
CLUSTERS_RESOURCE = "kubernetesclusters.multicluster.solo.io"
PULUMI_OPS = ("up", "preview", "up no-change", "destroy")
SCRIPT_OPS = ("sequential script", "parallel script")
NOISE_RESOURCES = frozenset({"leases"})
"""Namespaced requests that are the API server's own (its identity lease, renewed every 10 s), not a client's."""

# Targets of issue 13
UP_VS_SEQUENTIAL = 0.5
UP_VS_PARALLEL = 1.2
PREVIEW_GROWTH = 5.0
NO_CHANGE_SHARE = 0.3


# -- the fleet ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
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


@dataclass(frozen=True)
class Variant:
    """A change measured against the defaults in the same repeat: CLI flags or environment of the ``pulumi`` runs."""

    label: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ops: tuple[str, ...] = PULUMI_OPS
    sizes: tuple[int, ...] = ()


def parse_variant(text: str, default_sizes: Sequence[int]) -> Variant:
    """``parallel=P`` or ``skip-checkpoints``, optionally ``@N,N`` (the sizes; all sizes without)."""
    spec, _, at = text.partition("@")
    name, _, value = spec.partition("=")
    sizes = tuple(int(n) for n in at.split(",")) if at else tuple(default_sizes)
    if name == "parallel":
        return Variant(f"--parallel {int(value)}", args=("--parallel", str(int(value))), sizes=sizes)
    if name == "skip-checkpoints":
        # pulumi/pulumi sdk/go/common/env: "skip saving state checkpoints and only save the final deployment"
        return Variant(
            "PULUMI_SKIP_CHECKPOINTS",
            env=(("PULUMI_SKIP_CHECKPOINTS", "true"),),
            ops=("up", "destroy"),
            sizes=sizes,
        )
    raise SystemExit(f"error: unknown variant {text!r} (parallel=P, skip-checkpoints)")


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

    def certificates(self) -> int:
        return sum(agent.certificates_written() for agent in self.agents.values())

    def expect(self, registrations: Iterable[Registration]) -> None:
        for r in registrations:
            self.agents[r.server].expect(r.namespace, r.name)

    def set_fleet(self, registrations: Sequence[Registration]) -> None:
        project_copy(ROOT, self.cli.project_dir, STACK, stack_config(self.planes, self.repo, registrations))
        self.expect(registrations)


# -- counting requests -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """Requests one server served between two scrapes: namespaced ones by ``resource VERB``, and discovery."""

    namespaced: dict[str, int]
    discovery: int
    cluster_scoped: int

    @property
    def total_namespaced(self) -> int:
        return sum(self.namespaced.values())

    def describe(self) -> str:
        return ", ".join(f"{key} {count}" for key, count in sorted(self.namespaced.items())) or "none"


def requests_between(before: RequestCounts, after: RequestCounts) -> Requests:
    namespaced: dict[str, int] = defaultdict(int)
    cluster_scoped = 0
    for key, value in after.served.items():
        moved = int(value - before.served.get(key, 0.0))
        if moved <= 0:
            continue
        resource, scope, verb = key
        if resource and scope in ("namespace", "resource") and resource not in NOISE_RESOURCES:
            namespaced[f"{resource} {verb}"] += moved
        elif resource and scope == "cluster":
            cluster_scoped += moved
    return Requests(dict(namespaced), after.discovery() - before.discovery(), cluster_scoped)


def scrape(bench: Bench) -> dict[str, RequestCounts]:
    return {name: ApiClient(bench.planes, name).counts() for name in ("mgmt", *bench.remotes)}


# -- CPU by process, from /proc ----------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    parent: int
    cpu: float
    """CPU seconds (user + system) so far."""
    rss_mib: float


def proc_stat(pid: int) -> ProcStat | None:
    """What ``/proc/<pid>/stat`` says of a process (proc(5)), or None once it is gone."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces and parentheses
    return ProcStat(
        int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_BYTES / 2**20
    )


def _classify(cmdline: str) -> str:
    words = cmdline.split("\0")
    executable = Path(words[0]).name if words else ""
    text = " ".join(words)
    if "pulumi-resource-kubernetes" in executable:
        return "kubernetes providers (Helm included)"
    if "fleet_plugins" in text or "command_provider" in text:  # a path, or `-m lab.command_provider`
        return "command provider stand-in"
    if "pulumi-language-python-exec" in text:
        return "the program (Python)"
    if "language_host" in text or executable == "pulumi-language-python":  # `-m lab.language_host`
        return "language host"
    if executable == "pulumi":
        return "pulumi CLI and engine"
    if executable == "kubectl":
        return "kubectl (steps)"
    if executable in ("kube-apiserver", "etcd", "kube-controller-manager"):
        return f"servers: {executable}"
    return "shell and other"


class CpuSampler:
    """CPU seconds by kind of process while a command runs: its descendants and the benchmark's servers, from
    ``/proc/<pid>/stat`` every ``interval`` s. Short-lived processes (kubectl, sh) are mostly missed by the samples:
    the command's whole tree is taken from the children's rusage (``os.times``), and what the samples did not see
    of it is shown as "short-lived (kubectl, sh, python helpers)"."""

    def __init__(self, root_pid: int, server_pids: Iterable[int], interval: float = 0.5) -> None:
        self.root_pid = root_pid
        self.server_pids = set(server_pids)
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self.peak_rss_mib = 0.0
        """The largest total resident memory of the command's process tree seen in one sample."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()
        totals: dict[str, float] = defaultdict(float)
        for pid, last in self._last.items():
            start = self._first[pid] if pid in self.server_pids else 0.0
            totals[self._kind[pid]] += last - start
        return dict(totals)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        rss: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
            if stat is None:
                continue
            pid = int(entry.name)
            parents[pid], times[pid], rss[pid] = stat.parent, stat.cpu, stat.rss_mib
        tree_rss = 0.0
        for pid, cpu in times.items():
            if pid not in self.server_pids and not self._descends(pid, parents):
                continue
            if pid not in self._kind:
                try:
                    self._kind[pid] = _classify((Path("/proc") / str(pid) / "cmdline").read_text())
                except OSError:
                    continue
                self._first[pid] = cpu
            self._last[pid] = cpu
            if pid not in self.server_pids:
                tree_rss += rss[pid]
        self.peak_rss_mib = max(self.peak_rss_mib, tree_rss)

    def _descends(self, pid: int, parents: Mapping[int, int]) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == self.root_pid:
                return True
            pid = parents.get(pid, 0)
            seen += 1
        return False


def server_pids(bench: Bench) -> list[int]:
    return [p.popen.pid for server in bench.planes.clusters.values() for p in server.processes] + [
        bench.planes.etcd.popen.pid
    ]


def cpu_of(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) the processes used so far."""
    total = 0.0
    for pid in pids:
        stat = proc_stat(pid)
        if stat is not None:
            total += stat.cpu
    return total


def token_guards(bench: Bench) -> list[int]:
    """The token guards started by this benchmark's runs (their environment names its ``PULUMI_HOME``)."""
    marker = f"PULUMI_HOME={bench.cli.home / 'pulumi-home'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"gm-token-guard" not in (entry / "cmdline").read_bytes():
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_for_guards(bench: Bench, timeout: float = 120) -> tuple[int, float]:
    """After ``pulumi up``, each token Command's guard outlives the command provider: once it is gone, the guard
    asks its cluster whether the agent holds its certificate (one kubectl run) and exits. Waits for them, so that the
    next measurement starts on a quiet machine; returns how many there were and how long they took."""
    started = time.monotonic()
    running = token_guards(bench)
    count = len(running)
    while running and time.monotonic() - started < timeout:
        time.sleep(0.2)
        running = token_guards(bench)
    return count, (time.monotonic() - started) if count else 0.0


def tree_cpu(before: os.times_result, after: os.times_result) -> float:
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


# -- running pulumi ----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    op: str
    n: int
    repeat: int
    seconds: float
    variant: str = "default"
    certificates: int = 0
    requests: dict[str, Requests] = field(default_factory=dict)
    chart_requests: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    tree_cpu: float = 0.0
    """CPU seconds of the command's whole process tree (the children's rusage)."""
    server_cpu: float = 0.0
    """CPU seconds of the API servers, their controller managers and etcd while the command ran."""
    peak_rss_mib: float = 0.0
    guards: int = 0
    """Token guards (``gloo_mesh_registration.lifecycle``) still running when the command had exited."""
    guards_seconds: float = 0.0
    """From the command's exit until the last of them had exited."""
    trace: Path | None = None
    traced_wall: float = 0.0
    """A traced run's wall time as its trace shows it (the CLI's root span)."""
    work: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """A traced run's kinds of work (:data:`BREAKDOWN_KINDS`), each with the intervals it ran in, from the trace."""

    def record(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "n": self.n,
            "repeat": self.repeat,
            "variant": self.variant,
            "seconds": self.seconds,
            "certificates": self.certificates,
            "requests": {k: v.__dict__ for k, v in self.requests.items()},
            "chart_requests": self.chart_requests,
            "cpu": self.cpu,
            "tree_cpu": self.tree_cpu,
            "server_cpu": self.server_cpu,
            "peak_rss_mib": self.peak_rss_mib,
            "guards": self.guards,
            "guards_seconds": self.guards_seconds,
            "trace": str(self.trace) if self.trace else None,
            "traced_wall": self.traced_wall,
            "work": self.work,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Run:
        fields = {k: v for k, v in record.items() if k not in ("requests", "trace", "work")}
        return cls(
            **fields,
            requests={name: Requests(**counts) for name, counts in record["requests"].items()},
            trace=Path(record["trace"]) if record.get("trace") else None,
            work={kind: [(a, b) for a, b in spans] for kind, spans in record.get("work", {}).items()},
        )


def pulumi(
    bench: Bench,
    op: str,
    n: int,
    repeat: int,
    *,
    variant: Variant | None = None,
    trace: Path | None = None,
    sample_cpu: bool = False,
) -> Run:
    """One CLI run: ``op`` is ``up``, ``preview``, ``up no-change`` or ``destroy``; fails on any error."""
    args = {
        "up": ["up", "--yes", "--skip-preview"],
        "preview": ["preview", "--expect-no-changes"],
        "up no-change": ["up", "--yes", "--skip-preview", "--expect-no-changes"],
        "destroy": ["destroy", "--yes", "--skip-preview"],
    }[op]
    if variant is not None:
        args += list(variant.args)
    if trace is not None:
        args += ["--otel-traces", trace.as_uri()]
    certificates = bench.certificates()
    chart_requests = len(bench.repo.requests)
    before = scrape(bench) if op == "preview" else {}
    servers = server_pids(bench)
    cpu_before, servers_before = os.times(), cpu_of(servers)
    bench.cli.extra_env = dict(variant.env) if variant is not None else {}
    started = time.monotonic()
    process = bench.cli.start(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = CpuSampler(process.pid, servers).start() if sample_cpu else None
    output, _ = process.communicate(timeout=3600)
    seconds = time.monotonic() - started
    cpu_after, servers_after = os.times(), cpu_of(servers)
    bench.cli.extra_env = {}
    if process.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} (N={n}) exited {process.returncode}:\n{output[-8000:]}")
    run = Run(op, n, repeat, seconds, "default" if variant is None else variant.label, trace=trace)
    run.tree_cpu = tree_cpu(cpu_before, cpu_after)
    run.server_cpu = servers_after - servers_before
    run.guards, run.guards_seconds = wait_for_guards(bench)
    run.certificates = bench.certificates() - certificates
    run.chart_requests = len(bench.repo.requests) - chart_requests
    if before:
        after = scrape(bench)
        run.requests = {name: requests_between(before[name], after[name]) for name in before}
    if trace is not None:
        run.traced_wall, run.work = breakdown(read_spans(trace))
    if sampler is not None:
        run.cpu = sampler.stop()
        run.peak_rss_mib = sampler.peak_rss_mib
        seen = sum(v for k, v in run.cpu.items() if not k.startswith("servers"))
        run.cpu["short-lived (kubectl, sh, python helpers)"] = max(0.0, run.tree_cpu - seen)
    expected = {"up": n, "preview": 0, "up no-change": 0, "destroy": 0}[op]
    if run.certificates != expected:
        raise RuntimeError(f"pulumi {op} (N={n}): the agents wrote {run.certificates} certificates, not {expected}")
    bench.log(f"  N={n} repeat {repeat + 1} {op:<13} {run.variant:<13} {seconds:7.1f} s")
    return run


# -- the guide's steps as shell scripts --------------------------------------------------------------------------------

REGISTER_ONE = """\
#!/bin/sh
# register-one.sh NAMESPACE CLUSTER CONTEXT: the guide's Helm steps for one cluster (tests/e2e/test_adoption.py)
NS=$1 CLUSTER=$2 REMOTE=$3 WORK="$SCRIPTS_WORK/$2"
export NS CLUSTER REMOTE WORK
mkdir -p "$WORK"
exec /bin/sh "$SCRIPTS_WORK/guide-steps.sh"
"""


def run_script(bench: Bench, op: str, n: int, repeat: int) -> Run:
    """The guide's steps for N clusters through ``xargs``: one at a time, or ``--xargs-parallel`` at once."""
    prefix = "s" if op == SCRIPT_OPS[0] else "p"
    registrations = fleet(n, bench.remotes, prefix)
    bench.expect(registrations)
    folder = bench.work / "scripts" / f"{prefix}-{n}-{repeat}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guide-steps.sh").write_text(GUIDE_STEPS)
    (folder / "register-one.sh").write_text(REGISTER_ONE)
    (folder / "clusters").write_text(
        "".join(f"{r.namespace} {r.name} {bench.planes.clusters[r.server].context}\n" for r in registrations)
    )
    width = 1 if prefix == "s" else bench.xargs_parallel
    environment = {
        "PATH": f"{bench.planes.bin_dir}:/usr/bin:/bin",
        "KUBECONFIG_FILE": str(bench.planes.kubeconfig),
        "MGMT": bench.planes.clusters["mgmt"].context,
        "REPO": bench.repo.url,
        "VERSION": bench.plane.agent_version,
        "RELAY": bench.plane.relay_address,
        "HOME": str(bench.work / "operator-home"),
        "SCRIPTS_WORK": str(folder),
    }
    certificates = bench.certificates()
    servers = server_pids(bench)
    cpu_before, servers_before = os.times(), cpu_of(servers)
    command = f"xargs -P {width} -L 1 /bin/sh {shlex.quote(str(folder / 'register-one.sh'))} < clusters"
    started = time.monotonic()
    done = subprocess.run(
        ["/bin/sh", "-c", command], cwd=folder, env=environment, capture_output=True, text=True, timeout=3600
    )
    seconds = time.monotonic() - started
    cpu_after, servers_after = os.times(), cpu_of(servers)
    if done.returncode != 0:
        raise RuntimeError(f"{op} (N={n}) exited {done.returncode}:\n{done.stderr[-6000:]}")
    run = Run(op, n, repeat, seconds, variant=f"xargs -P {width}")
    run.tree_cpu = tree_cpu(cpu_before, cpu_after)
    run.server_cpu = servers_after - servers_before
    run.certificates = bench.certificates() - certificates
    if run.certificates != n:
        raise RuntimeError(f"{op} (N={n}): the agents wrote {run.certificates} certificates, not {n}")
    bench.log(f"  N={n} repeat {repeat + 1} {op:<13} {run.variant:<13} {seconds:7.1f} s")
    remove_registrations(bench, registrations)
    return run


def remove_registrations(bench: Bench, registrations: Sequence[Registration]) -> None:
    """What a script registered, gone (the KubernetesClusters, the agent namespaces), before the next measurement."""
    planes = bench.planes
    names = [r.name for r in registrations]
    planes.kubectl("mgmt", "delete", CLUSTERS_RESOURCE, "-n", MGMT_NAMESPACE, "--ignore-not-found", *names)
    for server in bench.remotes:
        namespaces = [r.namespace for r in registrations if r.server == server]
        if namespaces:
            planes.kubectl(server, "delete", "namespace", "--ignore-not-found", "--timeout=300s", *namespaces)


# -- where the time goes, from the OTel trace --------------------------------------------------------------------------

_URN = re.compile(r'urn:pulumi:[^"\\ ]*')


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    start: float
    end: float
    peer: str
    urn: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


def read_spans(path: Path) -> list[Span]:
    spans: list[Span] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            attributes = resource_spans.get("resource", {}).get("attributes", [])
            service = next((a["value"].get("stringValue", "") for a in attributes if a["key"] == "service.name"), "")
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    values: dict[str, Any] = {}
                    for attribute in span.get("attributes", []):  # the first "Msg" is the request, with the URN
                        values.setdefault(attribute["key"], next(iter(attribute["value"].values()), ""))
                    message = str(values.get("Msg", ""))
                    urn = _URN.search(message)
                    spans.append(
                        Span(
                            service,
                            span["name"],
                            int(span["startTimeUnixNano"]) / 1e9,
                            int(span["endTimeUnixNano"]) / 1e9,
                            str(values.get("net.peer.name", "")),
                            urn.group(0) if urn else "",
                        )
                    )
    return spans


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """The time covered by at least one of the intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


BREAKDOWN_KINDS = (
    "kubernetes provider start-up (Configure)",
    "management reads (Deployment, Service)",
    "management invokes (generation, relay secrets)",
    "Namespace create",
    "CA copy create (Secret)",
    "bootstrap token (Command)",
    "Helm release: Check (chart download)",
    "Helm release: Create (install)",
    "KubernetesCluster create",
    "certificate wait (invoke)",
    "checkpoint writes (state file)",
)


def breakdown(spans: Sequence[Span]) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The run's wall time and, per kind of work, the intervals it ran in (see :data:`BREAKDOWN_KINDS`), in seconds
    from the run's start (to the microsecond: what ``--json`` keeps, so a saved run prints the same table).

    The engine's Invoke spans carry no request (no token, no arguments): the command provider's invokes are told
    apart by order. The program makes the generation discovery and the relay secrets read before it declares
    anything, and each certificate wait only after its release, so the first two are the management invokes."""
    root = next(s for s in spans if s.service == "pulumi-cli" and s.name == "pulumi")
    kinds: dict[str, list[tuple[float, float]]] = {kind: [] for kind in BREAKDOWN_KINDS}

    def add(kind: str, span: Span) -> None:
        kinds[kind].append((round(span.start - root.start, 6), round(span.end - root.start, 6)))

    cli = [s for s in spans if s.service == "pulumi-cli"]
    command_peers = {s.peer for s in cli if s.name == "pulumirpc.ResourceProvider/Invoke"}
    invokes = sorted((s for s in cli if s.name == "pulumirpc.ResourceProvider/Invoke"), key=lambda s: s.start)
    for index, span in enumerate(invokes):
        add("management invokes (generation, relay secrets)" if index < 2 else "certificate wait (invoke)", span)
    for span in cli:
        if span.name == "pulumirpc.ResourceProvider/Create" and span.peer in command_peers:
            add("bootstrap token (Command)", span)
        elif span.name == "gocloud.dev/blob.NewWriter" or span.name == "gocloud.dev/blob.Copy":
            add("checkpoint writes (state file)", span)
    for span in spans:
        if span.service != "pulumi-resource-provider":
            continue
        if span.name == "/pulumirpc.ResourceProvider/Configure":
            add("kubernetes provider start-up (Configure)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Read":
            add("management reads (Deployment, Service)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Check" and "helm.sh/v3:Release" in span.urn:
            add("Helm release: Check (chart download)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Create":
            for marker, kind in (
                ("core/v1:Namespace::", "Namespace create"),
                ("core/v1:Secret::", "CA copy create (Secret)"),
                ("helm.sh/v3:Release::", "Helm release: Create (install)"),
                (":KubernetesCluster::", "KubernetesCluster create"),
            ):
                if marker in span.urn:
                    add(kind, span)
    return round(root.seconds, 6), kinds


# -- tables ------------------------------------------------------------------------------------------------------------


def seconds_of(runs: Sequence[Run], op: str, n: int, variant: str | None = "default") -> list[float]:
    return [r.seconds for r in runs if r.op == op and r.n == n and (variant is None or r.variant == variant)]


def per_repeat_ratio(runs: Sequence[Run], top: tuple[str, int, str], bottom: tuple[str, int, str]) -> list[float]:
    """``top / bottom`` within each repeat (``(op, n, variant)`` each), so that both come from the same minutes."""
    ratios = []
    for repeat in sorted({r.repeat for r in runs}):
        a = [r.seconds for r in runs if (r.op, r.n, r.variant) == top and r.repeat == repeat]
        b = [r.seconds for r in runs if (r.op, r.n, r.variant) == bottom and r.repeat == repeat]
        if a and b and b[0] > 0:
            ratios.append(a[0] / b[0])
    return ratios


def cell(values: Sequence[float], digits: int = 1) -> str:
    return summarize(values).cell(digits) if values else "-"


def print_results(
    runs: Sequence[Run], repeats: int, xargs_width: int, breakdown_runs: Sequence[Run], remotes: int
) -> None:
    """Every table and the targets' verdicts, from the runs alone (so ``--from-json`` prints the same)."""
    sizes = sorted({r.n for r in runs})
    ops = [*PULUMI_OPS, *SCRIPT_OPS]
    rows = []
    for n in sizes:
        row = [str(n)] + [cell(seconds_of(runs, op, n, None if op in SCRIPT_OPS else "default")) for op in ops]
        up = seconds_of(runs, "up", n)
        row.append(f"{statistics.median(up) / n:.2f}" if up else "-")
        guards = [r for r in runs if r.op == "up" and r.n == n and r.variant == "default"]
        row.append(cell([r.guards_seconds for r in guards], 1) if guards else "-")
        rows.append(row)
    print_table(
        f"Fleet on the real engine, seconds (median ±spread of {repeats} runs; {remotes} remote servers; "
        f"parallel script: xargs -P {xargs_width})",
        [
            "N",
            "up from empty",
            "preview no-change",
            "up no-change",
            "destroy",
            "sequential script",
            "parallel script",
            "up s/cluster",
            "token guards after up s",
        ],
        rows,
    )
    print(
        "\n"
        "token guards after up: from the end of `pulumi up` until the last token guard had exited (each one checks "
        "its cluster with kubectl once the command provider is gone); the next measurement waits for them."
    )

    small = 5 if 5 in sizes else sizes[0]
    ratio_rows = []
    for n in sizes:
        ratio_rows.append(
            [
                str(n),
                cell(per_repeat_ratio(runs, ("up", n, "default"), ("sequential script", n, "xargs -P 1")), 2),
                cell(
                    per_repeat_ratio(runs, ("up", n, "default"), ("parallel script", n, f"xargs -P {xargs_width}")), 2
                ),
                cell(per_repeat_ratio(runs, ("up no-change", n, "default"), ("up", n, "default")), 2),
                cell(per_repeat_ratio(runs, ("preview", n, "default"), ("preview", small, "default")), 2),
            ]
        )
    print_table(
        "Ratios, per repeat (median ±spread)",
        [
            "N",
            "up / sequential script",
            "up / parallel script",
            "up no-change / up",
            f"preview / preview(N={small})",
        ],
        ratio_rows,
    )

    request_rows = []
    for n in sizes:
        previews = [r for r in runs if r.op == "preview" and r.n == n and r.variant == "default"]
        if not previews:
            continue
        mgmt = [r.requests["mgmt"] for r in previews]
        remote_total = [sum(v.total_namespaced for k, v in r.requests.items() if k != "mgmt") for r in previews]
        remote_discovery = [sum(v.discovery for k, v in r.requests.items() if k != "mgmt") for r in previews]
        request_rows.append(
            [
                str(n),
                cell([float(m.total_namespaced) for m in mgmt], 0),
                mgmt[len(mgmt) // 2].describe(),
                cell([float(m.discovery) for m in mgmt], 0),
                cell([float(v) for v in remote_total], 0),
                cell([float(v) for v in remote_discovery], 0),
                cell([float(r.chart_requests) for r in previews], 0),
            ]
        )
    print_table(
        f"Requests during a no-change preview (median ±spread of {repeats} runs)",
        [
            "N",
            "management: namespaced",
            "management: by resource and verb (one run)",
            "management: discovery",
            "remote servers: namespaced",
            "remote servers: discovery",
            "chart repository",
        ],
        request_rows,
    )
    print(
        "\n"
        "namespaced: requests for objects in a namespace (the API server's own lease renewals left out); discovery: "
        "requests to paths that are no resource (/api, /apis, /openapi/v3...), which the controller manager also "
        "makes every 30 s or so; chart repository: HTTP GETs of index.yaml and the chart."
    )

    cpu_rows = []
    for n in sizes:
        row = [str(n)]
        for op in [*PULUMI_OPS, *SCRIPT_OPS]:
            chosen = [r for r in runs if r.op == op and r.n == n and (op in SCRIPT_OPS or r.variant == "default")]
            row.append(cell([r.tree_cpu / n for r in chosen], 2) if chosen else "-")
            row.append(cell([r.server_cpu / n for r in chosen], 2) if chosen else "-")
        cpu_rows.append(row)
    headers = ["N"]
    for op in [*PULUMI_OPS, *SCRIPT_OPS]:
        headers += [f"{op}: client", "servers"]
    print_table(
        f"CPU seconds per cluster (median ±spread of {repeats} runs): the command's own process tree (client) and "
        "the API servers with etcd (servers)",
        headers,
        cpu_rows,
    )

    verdicts: dict[str, bool] = {}
    lines = []
    big = max(sizes)
    target_n = 20 if 20 in sizes else big
    variant_rows = []
    changed = sorted(
        {(r.variant, r.n, PULUMI_OPS.index(r.op)) for r in runs if r.op in PULUMI_OPS and r.variant != "default"}
    )
    for label, n, op_index in changed:
        op = PULUMI_OPS[op_index]
        ratio = per_repeat_ratio(runs, (op, n, label), (op, n, "default"))
        cpu_before = [r.tree_cpu for r in runs if (r.op, r.n, r.variant) == (op, n, "default")]
        cpu_after = [r.tree_cpu for r in runs if (r.op, r.n, r.variant) == (op, n, label)]
        variant_rows.append(
            [
                label,
                str(n),
                op,
                cell(seconds_of(runs, op, n, "default")),
                cell(seconds_of(runs, op, n, label)),
                cell(ratio, 2),
                cell(cpu_before),
                cell(cpu_after),
            ]
        )
    if variant_rows:
        print_table(
            f"Changes measured against the defaults, in the same repeats (median ±spread of {repeats} runs)",
            ["change", "N", "run", "default s", "changed s", "changed/default", "default CPU s", "changed CPU s"],
            variant_rows,
        )
        print("\nCPU s: the whole process tree of the pulumi run (the servers not included).")

    sequential = per_repeat_ratio(runs, ("up", target_n, "default"), ("sequential script", target_n, "xargs -P 1"))
    parallel = per_repeat_ratio(
        runs, ("up", target_n, "default"), ("parallel script", target_n, f"xargs -P {xargs_width}")
    )
    if sequential:
        verdicts["up vs sequential"] = statistics.median(sequential) <= UP_VS_SEQUENTIAL
        lines.append(
            f"- pulumi up (N={target_n}) / sequential script = {summarize(sequential).cell(2)} "
            f"(target <= {UP_VS_SEQUENTIAL}): {verdict(verdicts['up vs sequential'])}"
        )
    if parallel:
        verdicts["up vs parallel"] = statistics.median(parallel) <= UP_VS_PARALLEL
        lines.append(
            f"- pulumi up (N={target_n}) / parallel script = {summarize(parallel).cell(2)} "
            f"(target <= {UP_VS_PARALLEL}): {verdict(verdicts['up vs parallel'])}"
        )
    growth = per_repeat_ratio(runs, ("preview", big, "default"), ("preview", small, "default"))
    if growth and big != small:
        verdicts["preview growth"] = statistics.median(growth) <= PREVIEW_GROWTH
        lines.append(
            f"- preview no-change: time(N={big}) / time(N={small}) = {summarize(growth).cell(2)} "
            f"(target <= {PREVIEW_GROWTH:g}; N grew {big / small:g}x): {verdict(verdicts['preview growth'])}"
        )
    share = per_repeat_ratio(runs, ("up no-change", big, "default"), ("up", big, "default"))
    if share:
        verdicts["no-change share"] = statistics.median(share) <= NO_CHANGE_SHARE
        lines.append(
            f"- up no-change (N={big}) / up from empty (N={big}) = {summarize(share).cell(2)} "
            f"(target <= {NO_CHANGE_SHARE}): {verdict(verdicts['no-change share'])}"
        )
    mgmt_by_n = {
        n: [
            r.requests["mgmt"].total_namespaced
            for r in runs
            if r.op == "preview" and r.n == n and r.variant == "default"
        ]
        for n in sizes
    }
    counts = {n: statistics.median(v) for n, v in mgmt_by_n.items() if v}
    if counts:
        verdicts["requests constant"] = len({round(v) for v in counts.values()}) == 1
        shown = ", ".join(f"N={n}: {v:g}" for n, v in counts.items())
        lines.append(
            f"- namespaced requests to the management API server in a no-change preview, constant in N ({shown}): "
            f"{verdict(verdicts['requests constant'])}"
        )
    print("\nTargets (issue 13), ratios within each repeat:\n")
    print("\n".join(lines))

    if breakdown_runs:
        print_breakdown(breakdown_runs)


def print_breakdown(runs: Sequence[Run]) -> None:
    n = runs[0].n
    walls: list[float] = []
    per_kind: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in BREAKDOWN_KINDS}
    idle: list[float] = []
    for run in runs:
        wall = run.traced_wall
        walls.append(wall)
        everything: list[tuple[float, float]] = []
        for kind, intervals in run.work.items():
            everything += intervals
            durations = [end - start for start, end in intervals]
            per_kind[kind]["count"].append(float(len(intervals)))
            per_kind[kind]["median"].append(statistics.median(durations) if durations else 0.0)
            per_kind[kind]["sum"].append(sum(durations))
            per_kind[kind]["union"].append(union_seconds(intervals))
            per_kind[kind]["share"].append(union_seconds(intervals) / wall)
        idle.append(wall - union_seconds(everything))
    rows = [
        [
            kind,
            f"{statistics.median(values['count']):.0f}",
            cell(values["median"], 2),
            cell(values["sum"], 1),
            cell(values["union"], 1),
            f"{100 * statistics.median(values['share']):.0f} %",
        ]
        for kind, values in per_kind.items()
    ]
    rows.append(
        [
            "none of these (CLI start, program, engine, plugin loads)",
            "",
            "",
            "",
            cell(idle, 1),
            f"{100 * statistics.median([i / w for i, w in zip(idle, walls, strict=True)]):.0f} %",
        ]
    )
    print_table(
        f"Where the time goes: pulumi up from empty, N={n}, traced (--otel-traces), median ±spread of "
        f"{len(runs)} runs; wall {summarize(walls).cell(1)} s",
        ["work", "count", "each s", "sum s", "wall s while running", "share of wall"],
        rows,
    )
    print(
        "\n"
        "each: the median duration of one; sum: all of them added up (work done in parallel counts each time); wall "
        "while running: the time at least one of them was running. The kinds overlap in time, so the shares add up "
        "to more than 100 %. Kubernetes provider spans are the provider's own (its gRPC server); the token Command, "
        "the invokes and the checkpoint writes are the engine's calls (the command provider stand-in is not traced)."
    )
    cpu_kinds = sorted({k for r in runs for k in r.cpu})
    cpu_rows = []
    for kind in cpu_kinds:
        values = [r.cpu.get(kind, 0.0) for r in runs]
        cpu_rows.append([kind, cell(values, 1), f"{statistics.median(values) / n:.2f}"])
    rss = [r.peak_rss_mib for r in runs]
    cpu_rows.append(["peak memory of the pulumi process tree, MiB", cell(rss, 0), f"{statistics.median(rss) / n:.0f}"])
    totals = [sum(r.cpu.values()) for r in runs]
    cpu_rows.append(["all", cell(totals, 1), f"{statistics.median(totals) / n:.2f}"])
    print_table(
        f"CPU seconds by process, the same runs ({os.cpu_count()} cores: "
        f"{(os.cpu_count() or 1) * statistics.median(walls):.0f} CPU s in the median wall)",
        ["process", "CPU s", "CPU s per cluster"],
        cpu_rows,
    )


# -- the plot ----------------------------------------------------------------------------------------------------------


def plot(runs: Sequence[Run], path: Path, xargs_width: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r.n for r in runs})
    figure, axis = plt.subplots(figsize=(8, 5))
    series = [
        ("up", "default", "pulumi up from empty", "-o"),
        ("preview", "default", "pulumi preview, no change", "-s"),
        ("up no-change", "default", "pulumi up, no change", "-^"),
        ("destroy", "default", "pulumi destroy", "-v"),
        ("sequential script", "xargs -P 1", "guide's steps, one cluster after another", "--o"),
        ("parallel script", f"xargs -P {xargs_width}", f"guide's steps, xargs -P {xargs_width}", "--s"),
    ]
    for op, variant, label, style in series:
        points = [(n, summarize(seconds_of(runs, op, n, variant))) for n in sizes if seconds_of(runs, op, n, variant)]
        if not points:
            continue
        xs = [n for n, _ in points]
        summaries: list[Summary] = [s for _, s in points]
        axis.errorbar(
            xs,
            [s.median for s in summaries],
            yerr=[[s.median - s.low for s in summaries], [s.high - s.median for s in summaries]],
            fmt=style,
            label=label,
            capsize=3,
        )
    axis.set_xlabel("clusters in the stack (N)")
    axis.set_ylabel("wall time, s (median, bars: min to max)")
    axis.set_title("Registering N clusters on the real engine, against the guide's steps")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# -- main --------------------------------------------------------------------------------------------------------------


def save(path: Path, header: Mapping[str, Any], runs: Sequence[Run], breakdown_runs: Sequence[Run]) -> None:
    """Every run, and what the tables need besides, as JSON (``--from-json`` prints the tables again from it)."""
    document = {**header, "runs": [r.record() for r in runs], "breakdown": [r.record() for r in breakdown_runs]}
    path.write_text(json.dumps(document, indent=1))


def reprint(path: Path, plot_path: Path | None) -> None:
    """The tables (and the plot) of a run saved with ``--json``, from the file alone."""
    document = json.loads(path.read_text())
    runs = [Run.from_record(r) for r in document["runs"]]
    breakdown_runs = [Run.from_record(r) for r in document["breakdown"]]
    print(f"re-printed from {path}")
    print(document["machine"])
    print(document["servers"])
    print_results(runs, document["repeats"], document["xargs_parallel"], breakdown_runs, document["remotes"])
    if plot_path:
        plot(runs, plot_path, document["xargs_parallel"])


def pulumi_cycle(bench: Bench, n: int, repeat: int, variant: Variant | None = None) -> list[Run]:
    bench.set_fleet(fleet(n, bench.remotes, "c"))
    ops = PULUMI_OPS if variant is None else variant.ops
    return [pulumi(bench, op, n, repeat, variant=variant) for op in ops]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--repeats-at", type=str, nargs="*", default=[], metavar="N=R", help="fewer (or more) repeats at size N"
    )
    parser.add_argument("--remotes", type=int, default=3, help="remote API servers the registrations share")
    parser.add_argument(
        "--xargs-parallel", type=int, default=0, help="xargs -P of the parallel script (0: all at once)"
    )
    parser.add_argument("--breakdown-size", type=int, default=20, help="N of the traced runs (0: none)")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["parallel=64@20", "skip-checkpoints@50"],
        help="changes measured against the defaults in the same repeats: parallel=P, skip-checkpoints; @N,N: sizes",
    )
    parser.add_argument("--command-workers", type=int, default=WORKERS, help="threads of the command stand-in")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 2, one repeat: the smoke test")
    parser.add_argument("--plot", type=Path, help="write a plot of the times (PNG)")
    parser.add_argument("--json", type=Path, help="write every run (JSON)")
    parser.add_argument("--trace-dir", type=Path, help="keep the OTel traces of the breakdown runs here")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="run nothing: print the tables (and --plot) of a run saved with --json",
    )
    parser.add_argument("--bin-dir", help="the tools' folder (scripts/e2e-tools.sh --print-bin-dir)")
    args = parser.parse_args(argv)
    if args.from_json:
        reprint(args.from_json, args.plot)
        return 0
    # Stop the servers on SIGTERM and on Ctrl-C (a shell's background job starts with SIGINT ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.quick:
        args.sizes, args.repeats, args.remotes, args.breakdown_size = list(QUICK_SIZES), 1, 2, 2
        args.variants = [v.partition("@")[0] + "@2" for v in args.variants]
    variants = [parse_variant(text, args.sizes) for text in args.variants]
    repeats_at = {int(k): int(v) for k, v in (item.split("=") for item in args.repeats_at)}
    bin_dir = tools_folder(args.bin_dir)
    machine = machine_summary()
    print(machine)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    remotes = tuple(f"r{i}" for i in range(1, args.remotes + 1))
    runs: list[Run] = []
    breakdown_runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="fleet-") as scratch:
        work = Path(scratch)
        with control_planes(bin_dir, work / "planes", ("mgmt", *remotes)) as planes:
            plane = install_management_plane(planes)
            repo = ChartRepository(work / "charts", bin_dir / "helm")
            repo.build()
            repo.start()
            agents = {server: FleetAgent(planes, server).start() for server in remotes}
            try:
                folder = project_copy(ROOT, work / "project", STACK, stack_config(planes, repo, []))
                cli = PulumiProject(
                    plugin_folder(bin_dir, work / "bin", args.command_workers), work / "home", folder, STACK
                )
                cli.init()
                _, server_version = ApiClient(planes, "mgmt").request("GET", "/version")
                helm = subprocess.run([str(bin_dir / "helm"), "version", "--short"], capture_output=True, text=True)
                pulumi_version = subprocess.run([str(bin_dir / "pulumi"), "version"], capture_output=True, text=True)
                servers = (
                    f"servers: 1 management + {len(remotes)} remote kube-apiservers "
                    f"{server_version.get('gitVersion', '?')} (one etcd); pulumi {pulumi_version.stdout.strip()}, "
                    f"helm {helm.stdout.strip()}; command provider stand-in served by {args.command_workers} threads"
                )
                print(servers)
                bench = Bench(planes, plane, repo, agents, cli, work, remotes, args.xargs_parallel, log)
                for repeat in range(max([args.repeats, *repeats_at.values()])):
                    for n in args.sizes:
                        if repeat >= repeats_at.get(n, args.repeats):
                            continue
                        runs += pulumi_cycle(bench, n, repeat)
                        for variant in variants:
                            if n in variant.sizes:
                                runs += pulumi_cycle(bench, n, repeat, variant)
                        runs += [run_script(bench, op, n, repeat) for op in SCRIPT_OPS]
                if args.breakdown_size:
                    n = args.breakdown_size
                    bench.set_fleet(fleet(n, remotes, "c"))
                    for repeat in range(args.repeats):
                        trace = (args.trace_dir or work) / f"up-{n}-{repeat}.otel.json"
                        breakdown_runs.append(pulumi(bench, "up", n, repeat, trace=trace, sample_cpu=True))
                        pulumi(bench, "destroy", n, repeat)
                problems = [p for agent in agents.values() for p in agent.mismatches + agent.errors]
                if problems:
                    raise RuntimeError("the simulated agents saw: " + "; ".join(problems[:10]))
                print_results(runs, args.repeats, args.xargs_parallel, breakdown_runs, len(remotes))
                if args.json:
                    header = {
                        "machine": machine,
                        "servers": servers,
                        "remotes": len(remotes),
                        "repeats": args.repeats,
                        "xargs_parallel": args.xargs_parallel,
                    }
                    save(args.json, header, runs, breakdown_runs)
                if args.plot:
                    plot(runs, args.plot, args.xargs_parallel)
            finally:
                for agent in agents.values():
                    agent.stop()
                repo.stop()
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
