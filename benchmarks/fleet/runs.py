"""The project's stack through the real CLI: one ``pulumi`` run measured (wall, CPU, requests, certificates, token
guards, and for a traced run its trace), the four runs of a size, the changes measured against the defaults, and the
record of a run that ``--json`` keeps."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fleet.api_requests import Requests, requests_between, scrape
from benchmarks.fleet.bench import Bench, fleet, server_pids
from benchmarks.fleet.plugins import PROVIDER_ENV
from benchmarks.fleet.proc import CpuSampler, MemoryPeak, cpu_of, tree_cpu, wait_for_guards
from benchmarks.fleet.traces import breakdown, read_spans

PULUMI_OPS = ("up", "preview", "up no-change", "destroy")
SCRIPT_OPS = ("sequential script", "parallel script")


@dataclass(frozen=True)
class Variant:
    """A change measured against the defaults in the same repeat: CLI flags or environment of the ``pulumi`` runs."""

    label: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ops: tuple[str, ...] = PULUMI_OPS
    sizes: tuple[int, ...] = ()
    engine_parallel: bool = False
    """Run without ``--parallel``: the engine's own default, 4 x the cores (``parallel=engine``)."""
    s3_state: bool = False
    """The stack's state in the bench's S3 server (``backend=s3``: :attr:`Bench.object_store`), not the file backend."""
    s3_rtt_ms: float | None = None
    """The S3 server reached through a latency proxy with this round-trip time (``backend=s3:rtt=MS``; None: directly,
    on loopback)."""


S3_LABEL = "state on S3"
"""The label of ``backend=s3`` (its ``rtt=`` forms add the round-trip time to it)."""


def s3_variant(value: str, sizes: tuple[int, ...]) -> Variant | None:
    """``s3`` (the state in the bench's S3 server, on loopback) or ``s3:rtt=MS`` (the same server ``MS`` ms of round
    trip away, through ``lab/latency_proxy.py``); None for anything else."""
    backend, _, option = value.partition(":")
    if backend != "s3":
        return None
    if not option:
        return Variant(S3_LABEL, sizes=sizes, s3_state=True)
    key, _, milliseconds = option.partition("=")
    try:
        rtt = float(milliseconds)
    except ValueError:
        return None
    if key != "rtt" or not rtt >= 0 or rtt == float("inf"):
        return None
    return Variant(f"{S3_LABEL}, RTT {rtt:g} ms", sizes=sizes, s3_state=True, s3_rtt_ms=rtt)


def up_sh_parallel(n: int) -> int:
    """The ``--parallel`` that ``scripts/up.sh`` passes for a stack of ``n`` clusters, which the default runs use, as
    users run ``pulumi up`` through it (``tests/test_up_script.py`` checks that the two agree)."""
    return max(16, 4 * n)


def parse_variant(text: str, default_sizes: Sequence[int]) -> Variant:
    """``parallel=P`` (``parallel=engine``: the engine's default), ``skip-checkpoints``, ``backend=s3`` (the state
    in a real S3 server, every checkpoint a network write; ``backend=s3:rtt=MS``: that server ``MS`` ms of round trip
    away, latency alone, through ``lab/latency_proxy.py``; ``rtt=0``: through the proxy, no delay) or
    ``env=NAME=VALUE``, optionally ``@N,N`` (the sizes; all sizes without). The default runs pass
    ``scripts/up.sh``'s ``--parallel``. ``env=``: one variable in the ``pulumi`` run's environment, which the plugins
    inherit (``GOGC``, ``GOMEMLIMIT``, the kubernetes provider's ``PULUMI_K8S_*`` settings); ``provider-env=``: in the
    kubernetes providers' alone (the plugin folder's shim, :data:`~benchmarks.fleet.plugins.PROVIDER_ENV`); up and
    destroy only, as for ``skip-checkpoints``."""
    spec, _, at = text.partition("@")
    name, _, value = spec.partition("=")
    sizes = tuple(int(n) for n in at.split(",")) if at else tuple(default_sizes)
    if name == "parallel" and value == "engine":
        return Variant("engine's --parallel", engine_parallel=True, sizes=sizes)
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
    if name == "backend" and (s3 := s3_variant(value, sizes)) is not None:  # the same stack in lab/object_store.py
        return s3
    if name == "env" and "=" in value:
        variable, _, setting = value.partition("=")
        return Variant(value, env=((variable, setting),), ops=("up", "destroy"), sizes=sizes)
    if name == "provider-env" and "=" in value:  # the plugin folder's shim adds it to the providers' environment
        return Variant(f"providers: {value}", env=((PROVIDER_ENV, value),), ops=("up", "destroy"), sizes=sizes)
    raise SystemExit(
        f"error: unknown variant {text!r} (parallel=P, skip-checkpoints, env=NAME=VALUE, provider-env=NAME=VALUE, "
        "backend=s3, backend=s3:rtt=MS)"
    )


@dataclass
class Run:
    """One measured command (a ``pulumi`` run or a script) and what it cost; the tables are made of these alone."""

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
    memory: MemoryPeak | None = None
    """The sampled run's memory at its peak PSS, by kind of process (None: not sampled, or saved before PSS was)."""
    guards: int = 0
    """Token guards (``gloo_mesh_registration.lifecycle``) still running when the command had exited."""
    guards_seconds: float = 0.0
    """From the command's exit until the last of them had exited."""
    trace: Path | None = None
    traced_wall: float = 0.0
    """A traced run's wall time as its trace shows it (the CLI's root span)."""
    work: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """A traced run's kinds of work (:data:`BREAKDOWN_KINDS`), each with the intervals it ran in, from the trace."""
    waits: list[float] = field(default_factory=list)
    """The waits the agents drew for the certificates the run had written (none in a run saved before they had)."""
    s3_rtt_ms: float | None = None
    """The round-trip time the latency proxy added to the S3 server (None: no proxy, or saved before it existed)."""
    s3_round_trips: int = 0
    """Round trips to the S3 server through the latency proxy during the run (requests, each paying one RTT)."""
    s3_connections: int = 0
    """Connections to the S3 server the run opened through the latency proxy (each paying one RTT more)."""
    s3_bytes_sent: int = 0
    """Bytes the run sent to the S3 server through the latency proxy (requests and their bodies: the checkpoints)."""

    def record(self) -> dict[str, Any]:
        """The run as JSON for ``--json``, everything the tables need (:meth:`from_record` reads it back)."""
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
            "memory": self.memory.record() if self.memory is not None else None,
            "guards": self.guards,
            "guards_seconds": self.guards_seconds,
            "trace": str(self.trace) if self.trace else None,
            "traced_wall": self.traced_wall,
            "work": self.work,
            "waits": self.waits,
            "s3_rtt_ms": self.s3_rtt_ms,
            "s3_round_trips": self.s3_round_trips,
            "s3_connections": self.s3_connections,
            "s3_bytes_sent": self.s3_bytes_sent,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Run:
        """A run saved by :meth:`record`, so that ``--from-json`` prints the tables the run printed."""
        fields = {k: v for k, v in record.items() if k not in ("requests", "trace", "work", "memory")}
        return cls(
            **fields,
            memory=MemoryPeak.from_record(record["memory"]) if record.get("memory") else None,
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
    if "--parallel" not in args and not (variant is not None and variant.engine_parallel):
        args += ["--parallel", str(up_sh_parallel(n))]
    if trace is not None:
        args += ["--otel-traces", trace.as_uri()]
    certificates, marks = bench.certificates(), bench.answer_marks()
    chart_requests = len(bench.repo.requests)
    before = scrape(bench) if op == "preview" else {}
    servers = server_pids(bench)
    cpu_before, servers_before = os.times(), cpu_of(servers)
    bench.cli.extra_env = bench.variant_env(variant)
    s3_updates = bench.s3_history()
    proxy = bench.s3_proxy(variant)
    proxied = proxy.counts() if proxy is not None else None
    started = time.monotonic()
    process = bench.cli.start(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = CpuSampler(process.pid, servers).start() if sample_cpu else None
    output, _ = process.communicate(timeout=3600)
    seconds = time.monotonic() - started
    cpu_after, servers_after = os.times(), cpu_of(servers)
    bench.cli.extra_env = {}
    if process.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} (N={n}) exited {process.returncode}:\n{output[-8000:]}")
    if variant is not None and variant.s3_state and op != "preview" and bench.s3_history() == s3_updates:
        raise RuntimeError(f"pulumi {' '.join(args)} (N={n}) of {variant.label!r} recorded no update in the S3 bucket")
    run = Run(op, n, repeat, seconds, "default" if variant is None else variant.label, trace=trace)
    if proxy is not None and proxied is not None and variant is not None:
        sent = proxy.counts() - proxied
        run.s3_rtt_ms, run.s3_round_trips, run.s3_connections = variant.s3_rtt_ms, sent.round_trips, sent.connections
        run.s3_bytes_sent = sent.bytes_to_server
        if sent.round_trips == 0:
            raise RuntimeError(f"pulumi {' '.join(args)} (N={n}) of {variant.label!r} sent nothing through the proxy")
    run.tree_cpu = tree_cpu(cpu_before, cpu_after)
    run.server_cpu = servers_after - servers_before
    run.guards, run.guards_seconds = wait_for_guards(bench.cli.home / "pulumi-home")
    run.certificates = bench.certificates() - certificates
    run.waits = [answer.wait_seconds for answer in bench.answers_since(marks)]
    run.chart_requests = len(bench.repo.requests) - chart_requests
    if before:
        after = scrape(bench)
        run.requests = {name: requests_between(before[name], after[name]) for name in before}
    if trace is not None:
        run.traced_wall, run.work = breakdown(read_spans(trace))
    if sampler is not None:
        run.cpu = sampler.stop()
        run.peak_rss_mib = sampler.peak_rss_mib
        run.memory = sampler.memory
        seen = sum(v for k, v in run.cpu.items() if not k.startswith("servers"))
        run.cpu["short-lived (kubectl, sh, python helpers)"] = max(0.0, run.tree_cpu - seen)
    expected = {"up": n, "preview": 0, "up no-change": 0, "destroy": 0}[op]
    if run.certificates != expected:
        raise RuntimeError(f"pulumi {op} (N={n}): the agents wrote {run.certificates} certificates, not {expected}")
    proxied_line = (
        f" ({run.s3_round_trips} S3 round trips, {run.s3_connections} connections, {run.s3_bytes_sent} bytes sent)"
        if proxy
        else ""
    )
    bench.log(f"  N={n} repeat {repeat + 1} {op:<13} {run.variant:<13} {seconds:7.1f} s{proxied_line}")
    return run


def pulumi_cycle(
    bench: Bench, n: int, repeat: int, variant: Variant | None = None, *, sample: bool = False
) -> list[Run]:
    """The stack at N clusters, then its runs in order (up, preview, up no-change, destroy, or the variant's);
    ``sample``: each run's CPU and memory by kind of process sampled from ``/proc`` as well."""
    bench.set_fleet(fleet(n, bench.remotes, "c"))
    ops = PULUMI_OPS if variant is None else variant.ops
    return [pulumi(bench, op, n, repeat, variant=variant, sample_cpu=sample) for op in ops]
