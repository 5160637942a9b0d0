"""The command line of ``python -m benchmarks.fleet``: the options, the servers started for a measurement, the
measurements in their order, and the saved runs printed again (``--from-json``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import benchmarks.fleet
from benchmarks.benchlib import ROOT, machine_summary, tools_folder
from benchmarks.fleet.agent import AgentSettings, FleetAgent, drawn_wait
from benchmarks.fleet.bench import S3_PREFIX, STACK, Bench, fleet, stack_config
from benchmarks.fleet.guide import run_script
from benchmarks.fleet.plot import plot
from benchmarks.fleet.plugins import WORKERS, plugin_folder
from benchmarks.fleet.report import print_results
from benchmarks.fleet.runs import SCRIPT_OPS, Run, Variant, parse_variant, pulumi, pulumi_cycle
from lab.cluster import CONTROLLERS, WORKLOAD_CONTROLLERS, ControlPlanes, control_planes
from lab.gloo import ChartRepository, install_management_plane
from lab.object_store import object_store
from lab.observe import ApiClient
from lab.pulumi_cli import PulumiProject, project_copy

DEFAULT_SIZES = (1, 5, 20, 50)
QUICK_SIZES = (1, 2)


def parser() -> argparse.ArgumentParser:
    """The options; the package's docstring is the help's description."""
    parsed = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet",
        description=benchmarks.fleet.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parsed.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parsed.add_argument("--repeats", type=int, default=3)
    parsed.add_argument(
        "--repeats-at", type=str, nargs="*", default=[], metavar="N=R", help="fewer (or more) repeats at size N"
    )
    parsed.add_argument("--remotes", type=int, default=3, help="remote API servers the registrations share")
    parsed.add_argument(
        "--xargs-parallel", type=int, default=0, help="xargs -P of the parallel script (0: all at once)"
    )
    parsed.add_argument("--breakdown-size", type=int, default=20, help="N of the traced runs (0: none)")
    parsed.add_argument(
        "--sample-sizes",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="sizes whose pulumi runs (defaults and variants) are sampled from /proc: CPU and memory (PSS) by process",
    )
    parsed.add_argument(
        "--variants",
        nargs="*",
        default=["parallel=engine@20", "skip-checkpoints@50"],
        help="changes measured against the defaults in the same repeats: parallel=P (engine: the engine's default "
        "instead of scripts/up.sh's), skip-checkpoints, env=NAME=VALUE, "
        "provider-env=NAME=VALUE (the kubernetes providers' alone), backend=s3 (the state in a real S3 server on "
        "127.0.0.1), backend=s3:rtt=MS (that server MS ms of round trip away, through a latency proxy); @N,N: sizes",
    )
    parsed.add_argument("--command-workers", type=int, default=WORKERS, help="threads of the command stand-in")
    parsed.add_argument(
        "--agent-wait",
        type=float,
        default=0.0,
        metavar="W",
        help="seconds from the token and the values to the agent's certificate (0: at once)",
    )
    parsed.add_argument(
        "--agent-spread",
        type=float,
        metavar="S",
        help="each cluster's wait is uniform in W x (1 - S) .. W x (1 + S) (default 0.5 when W > 0)",
    )
    parsed.add_argument(
        "--agent-seed", type=int, default=1, help="the seed of the waits (one draw per cluster number in the fleet)"
    )
    parsed.add_argument(
        "--no-agent-deployment",
        action="store_true",
        help="the stand-in chart without the agent's Deployment (Helm's await then waits for nothing), to compare",
    )
    parsed.add_argument("--quick", action="store_true", help="N = 1 and 2, one repeat: the smoke test")
    parsed.add_argument("--plot", type=Path, help="write a plot of the times (PNG)")
    parsed.add_argument("--json", type=Path, help="write every run (JSON)")
    parsed.add_argument("--trace-dir", type=Path, help="keep the OTel traces of the breakdown runs here")
    parsed.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="run nothing: print the tables (and --plot) of a run saved with --json",
    )
    parsed.add_argument("--bin-dir", help="the tools' folder (scripts/e2e-tools.sh --print-bin-dir)")
    return parsed


def agent_settings(args: argparse.Namespace) -> AgentSettings:
    """The agents' wait and the chart's Deployment, from the options."""
    spread = args.agent_spread if args.agent_spread is not None else (0.5 if args.agent_wait > 0 else 0.0)
    try:
        drawn_wait(args.agent_wait, spread, args.agent_seed, "")
    except ValueError as error:
        raise SystemExit(f"error: --agent-wait, --agent-spread: {error}") from None
    return AgentSettings(args.agent_wait, spread, args.agent_seed, deployment=not args.no_agent_deployment)


def save(
    path: Path,
    header: Mapping[str, Any],
    runs: Sequence[Run],
    breakdown_runs: Sequence[Run],
    answers: Sequence[Mapping[str, Any]],
) -> None:
    """Every run, and what the tables need besides, as JSON (``--from-json`` prints the tables again from it); with
    every certificate the agents wrote (its drawn wait, when they saw token and values, when they wrote)."""
    document = {
        **header,
        "runs": [r.record() for r in runs],
        "breakdown": [r.record() for r in breakdown_runs],
        "answers": list(answers),
    }
    path.write_text(json.dumps(document, indent=1))


def reprint(path: Path, plot_path: Path | None) -> None:
    """The tables (and the plot) of a run saved with ``--json``, from the file alone."""
    document = json.loads(path.read_text())
    runs = [Run.from_record(r) for r in document["runs"]]
    breakdown_runs = [Run.from_record(r) for r in document["breakdown"]]
    agent = AgentSettings.from_header(document)
    print(f"re-printed from {path}")
    print(document["machine"])
    print(document["servers"])
    print(agent.line())
    print_results(runs, document["repeats"], document["xargs_parallel"], breakdown_runs, document["remotes"], agent)
    if plot_path:
        plot(runs, plot_path, document["xargs_parallel"])


def describe_servers(planes: ControlPlanes, bin_dir: Path, remotes: int, command_workers: int) -> str:
    """The line that names what ran: the servers' and the tools' versions, the command stand-in's width."""
    _, server_version = ApiClient(planes, "mgmt").request("GET", "/version")
    helm = subprocess.run([str(bin_dir / "helm"), "version", "--short"], capture_output=True, text=True)
    pulumi_version = subprocess.run([str(bin_dir / "pulumi"), "version"], capture_output=True, text=True)
    return (
        f"servers: 1 management + {remotes} remote kube-apiservers "
        f"{server_version.get('gitVersion', '?')} (one etcd); pulumi {pulumi_version.stdout.strip()}, "
        f"helm {helm.stdout.strip()}; command provider stand-in served by {command_workers} threads"
    )


@contextlib.contextmanager
def started_bench(
    args: argparse.Namespace, bin_dir: Path, work: Path, log: Callable[[str], None]
) -> Iterator[tuple[Bench, str]]:
    """The servers, the management plane, the chart repository, the agents and the stack, started in ``work`` and
    stopped on the way out whatever happened; with the line that describes them (printed here)."""
    remotes = tuple(f"r{i}" for i in range(1, args.remotes + 1))
    settings = agent_settings(args)
    controllers = CONTROLLERS + WORKLOAD_CONTROLLERS if settings.deployment else CONTROLLERS
    with control_planes(bin_dir, work / "planes", ("mgmt", *remotes), controllers) as planes:
        plane = install_management_plane(planes)
        repo = ChartRepository(work / "charts", bin_dir / "helm", agent_deployment=settings.deployment)
        repo.build()
        repo.start()
        origin = time.monotonic()
        agents = {
            server: FleetAgent(
                planes,
                server,
                wait_seconds=settings.wait_seconds,
                spread=settings.spread,
                seed=settings.seed,
                clock_origin=origin,
            ).start()
            for server in remotes
        }
        stack = contextlib.ExitStack()
        try:
            folder = project_copy(ROOT, work / "project", STACK, stack_config(planes, repo, []))
            shim = any(v.startswith("provider-env=") for v in args.variants)
            plugins = plugin_folder(bin_dir, work / "bin", args.command_workers, provider_env=shim)
            cli = PulumiProject(plugins, work / "home", folder, STACK)
            cli.init()
            store = None
            if any(parse_variant(v, args.sizes).s3_state for v in args.variants):
                store = stack.enter_context(object_store(bin_dir, work / "s3"))
                cli.extra_env = store.env(S3_PREFIX)
                cli.init()  # the same stack in the S3 server's bucket, for the backend=s3 runs
                cli.extra_env = {}
            servers = describe_servers(planes, bin_dir, len(remotes), args.command_workers)
            print(servers)
            print(settings.line())
            bench = Bench(planes, plane, repo, agents, cli, work, remotes, args.xargs_parallel, log, settings, store)
            yield bench, servers
        finally:
            stack.close()
            for agent in agents.values():
                agent.stop()
            repo.stop()


def measure(
    bench: Bench, args: argparse.Namespace, variants: Sequence[Variant], repeats_at: Mapping[int, int]
) -> tuple[list[Run], list[Run]]:
    """Every run in its order (per repeat, per N: the defaults, the variants, the scripts), then the traced runs at
    ``--breakdown-size``; fails if an agent saw a registration it did not expect."""
    runs: list[Run] = []
    for repeat in range(max([args.repeats, *repeats_at.values()])):
        for n in args.sizes:
            if repeat >= repeats_at.get(n, args.repeats):
                continue
            sample = n in args.sample_sizes
            runs += pulumi_cycle(bench, n, repeat, sample=sample)
            for variant in variants:
                if n in variant.sizes:
                    runs += pulumi_cycle(bench, n, repeat, variant, sample=sample)
            runs += [run_script(bench, op, n, repeat) for op in SCRIPT_OPS]
    breakdown_runs: list[Run] = []
    if args.breakdown_size:
        n = args.breakdown_size
        bench.set_fleet(fleet(n, bench.remotes, "c"))
        for repeat in range(args.repeats):
            trace = (args.trace_dir or bench.work) / f"up-{n}-{repeat}.otel.json"
            breakdown_runs.append(pulumi(bench, "up", n, repeat, trace=trace, sample_cpu=True))
            pulumi(bench, "destroy", n, repeat)
    problems = [p for agent in bench.agents.values() for p in agent.mismatches + agent.errors]
    if problems:
        raise RuntimeError("the simulated agents saw: " + "; ".join(problems[:10]))
    return runs, breakdown_runs


def main(argv: Sequence[str] | None = None) -> int:
    """Measure (or re-print a saved measurement), print the tables, and save the runs and the plot if asked."""
    args = parser().parse_args(argv)
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

    with (
        tempfile.TemporaryDirectory(prefix="fleet-") as scratch,
        started_bench(args, bin_dir, Path(scratch), log) as (bench, servers),
    ):
        runs, breakdown_runs = measure(bench, args, variants, repeats_at)
        print_results(runs, args.repeats, args.xargs_parallel, breakdown_runs, args.remotes, bench.agent_settings)
        if args.json:
            header = {
                "machine": machine,
                "servers": servers,
                "remotes": args.remotes,
                "repeats": args.repeats,
                "xargs_parallel": args.xargs_parallel,
                "agent": bench.agent_settings.record(),
            }
            save(args.json, header, runs, breakdown_runs, bench.answer_records())
        if args.plot:
            plot(runs, args.plot, args.xargs_parallel)
    log("done")
    return 0
