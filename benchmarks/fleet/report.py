"""The tables and the targets' verdicts, from the runs alone: what a measurement prints is what ``--from-json`` prints
again from the saved runs."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence

from benchmarks.benchlib import print_table, summarize, verdict
from benchmarks.fleet.agent import AgentSettings
from benchmarks.fleet.memory_report import peak_row_cells, print_memory_by_kind, print_memory_by_n
from benchmarks.fleet.runs import PULUMI_OPS, S3_LABEL, SCRIPT_OPS, Run
from benchmarks.fleet.traces import BREAKDOWN_KINDS, union_seconds

# Targets of issue 13 (runs saved before the agent had a wait)
UP_VS_SEQUENTIAL = 0.5
UP_VS_PARALLEL = 1.2
PREVIEW_GROWTH = 5.0
NO_CHANGE_SHARE = 0.3

# Targets of issue 23: by the agent's wait W (set for W = 0 and W = 20 s), then whatever W
ISSUE_23_AT_ONCE = {"up vs sequential": 1.0, "CPU vs sequential": 1.0}
ISSUE_23_WAITING = {"up vs sequential": 0.15, "up vs parallel": 1.1}
ISSUE_23_WAITING_FROM_SECONDS = 20.0
ISSUE_23_NO_CHANGE_SHARE = 0.25
ISSUE_23_PREVIEW_GROWTH = 4.0
ISSUE_23_PSS_PER_CLUSTER_MIB = 100.0


def seconds_of(runs: Sequence[Run], op: str, n: int, variant: str | None = "default") -> list[float]:
    """The wall times of one kind of run at size N (``variant`` None: whatever it was)."""
    return [r.seconds for r in runs if r.op == op and r.n == n and (variant is None or r.variant == variant)]


def per_repeat_ratio(
    runs: Sequence[Run],
    top: tuple[str, int, str],
    bottom: tuple[str, int, str],
    value: Callable[[Run], float] = lambda r: r.seconds,
) -> list[float]:
    """``top / bottom`` within each repeat (``(op, n, variant)`` each), so that both come from the same minutes; of
    the wall time, or of another ``value`` of a run."""
    ratios = []
    for repeat in sorted({r.repeat for r in runs}):
        a = [value(r) for r in runs if (r.op, r.n, r.variant) == top and r.repeat == repeat]
        b = [value(r) for r in runs if (r.op, r.n, r.variant) == bottom and r.repeat == repeat]
        if a and b and b[0] > 0:
            ratios.append(a[0] / b[0])
    return ratios


def cell(values: Sequence[float], digits: int = 1) -> str:
    """A table cell: median ±spread, or "-" where nothing was measured."""
    return summarize(values).cell(digits) if values else "-"


def print_results(
    runs: Sequence[Run],
    repeats: int,
    xargs_width: int,
    breakdown_runs: Sequence[Run],
    remotes: int,
    agent: AgentSettings,
) -> None:
    """Every table and the targets' verdicts, from the runs and the agents' settings alone (so ``--from-json`` prints
    the same)."""
    sizes = sorted({r.n for r in runs})
    print_times(runs, sizes, repeats, xargs_width, remotes, agent)
    print_waits(runs, sizes, repeats)
    print_ratios(runs, sizes, xargs_width)
    print_requests(runs, sizes, repeats)
    print_cpu_per_cluster(runs, sizes, repeats)
    print_changes(runs, repeats)
    print_memory_by_n(runs)
    sampled_ups = [r for r in runs if r.op == "up" and r.memory is not None]
    if sampled_ups:
        print_memory_by_kind(
            "Memory at the peak by kind of process, pulumi up from empty, sampled runs",
            [r for r in sampled_ups if r.variant == "default"],
        )
    for n in sorted({r.n for r in sampled_ups if r.variant != "default"}):
        print_memory_by_kind(
            f"Memory at the peak by kind of process and change, pulumi up from empty, N={n}, sampled runs",
            [r for r in sampled_ups if r.n == n],
            by="variant",
        )
    if agent.old_run:
        print_targets(runs, sizes, xargs_width)
    else:
        print_issue_23_targets(runs, sizes, xargs_width, agent)
    if breakdown_runs:
        print_breakdown(breakdown_runs)


def print_times(
    runs: Sequence[Run], sizes: Sequence[int], repeats: int, xargs_width: int, remotes: int, agent: AgentSettings
) -> None:
    """The wall time of every kind of run by N: the table a platform team reads first."""
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
        f"parallel script: xargs -P {xargs_width}; {agent.short()})",
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


def print_waits(runs: Sequence[Run], sizes: Sequence[int], repeats: int) -> None:
    """The waits the agents drew for each kind of run, by N (nothing printed when they answered at once): what a run
    that waits for every agent cannot take less than."""
    if not any(w for r in runs for w in r.waits):
        return
    columns: list[tuple[str, str | None, Callable[[list[float]], float], str]] = [
        ("up", "default", max, "longest"),
        ("sequential script", None, sum, "sum"),
        ("parallel script", None, max, "longest"),
    ]
    rows = []
    for n in sizes:
        row = [str(n)]
        for op, variant, combine, _ in columns:
            chosen = [r for r in runs if r.op == op and r.n == n and (variant is None or r.variant == variant)]
            row.append(cell([combine(r.waits) for r in chosen if r.waits]))
        rows.append(row)
    print_table(
        f"The agents' drawn waits, seconds (median ±spread of {repeats} runs)",
        ["N", *(f"{op}: {label}" for op, _, _, label in columns)],
        rows,
    )
    print(
        "\n"
        "longest: the longest wait drawn for the run's clusters; sum: all of them added up. A run that waits for each "
        "agent takes at least the longest (the clusters at once) or the sum (one after another). A wait is drawn for "
        "the cluster's number in its fleet: the program's c007 and the scripts' s007 and p007 meet the same agent."
    )


def print_ratios(runs: Sequence[Run], sizes: Sequence[int], xargs_width: int) -> None:
    """Pulumi against the scripts and against itself, each ratio within one repeat (the machine's noise cancels)."""
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


def print_requests(runs: Sequence[Run], sizes: Sequence[int], repeats: int) -> None:
    """What a no-change preview asks of the servers and the chart repository, by N: it should not grow with N."""
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


def print_cpu_per_cluster(runs: Sequence[Run], sizes: Sequence[int], repeats: int) -> None:
    """CPU per cluster of the client and of the servers: wall time on a busy machine hides what a run costs."""
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


def print_changes(runs: Sequence[Run], repeats: int) -> None:
    """Each ``--variants`` change against the defaults of the same repeats (nothing printed without one)."""
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
    print_s3_round_trips(runs, repeats)


PER_TRIP_MIN_SECONDS = 5.0
"""The least time a proxied run's round trips can add (round trips x RTT) for its extra time per round trip to be
shown: the runs' own spread is a second or two."""


def print_s3_round_trips(runs: Sequence[Run], repeats: int) -> None:
    """The ``backend=s3:rtt=MS`` runs: the round trips the latency proxy counted, and the time they added against the
    S3 server reached directly in the same repeat (nothing printed without such a run)."""
    rows = []
    proxied = sorted({(r.s3_rtt_ms, r.variant, r.n, PULUMI_OPS.index(r.op)) for r in runs if r.s3_rtt_ms is not None})
    for rtt, label, n, op_index in proxied:
        op = PULUMI_OPS[op_index]
        chosen = [r for r in runs if (r.op, r.n, r.variant) == (op, n, label)]
        extra, per_trip = [], []
        for run in chosen:
            direct = [r.seconds for r in runs if (r.op, r.n, r.variant, r.repeat) == (op, n, S3_LABEL, run.repeat)]
            if direct:
                extra.append(run.seconds - direct[0])
                if run.s3_round_trips * rtt / 1000 >= PER_TRIP_MIN_SECONDS:
                    per_trip.append(1000 * extra[-1] / run.s3_round_trips)
        rows.append(
            [
                label,
                str(n),
                op,
                f"{rtt:g}",
                cell([r.s3_round_trips for r in chosen], 0),
                cell([r.s3_connections for r in chosen], 0),
                cell([r.s3_bytes_sent / 2**20 for r in chosen]),
                cell(seconds_of(runs, op, n, S3_LABEL)),
                cell([r.seconds for r in chosen]),
                cell(extra),
                cell(per_trip),
            ]
        )
    if not rows:
        return
    headers = ["change", "N", "run", "RTT ms", "round trips", "connections", "MiB sent", "direct s", "proxied s"]
    print_table(
        f"The state on S3 a round trip away, through the latency proxy (median ±spread of {repeats} runs)",
        [*headers, "extra s", "extra ms/trip"],
        rows,
    )
    print(
        "\nround trips, connections, MiB sent: counted by the proxy (a request after an answer on its connection; "
        "each new connection pays one RTT more; the requests with their bodies); "
        f"direct s: {S3_LABEL!r}, the same server on loopback; extra s: proxied minus direct in the same repeat; "
        "extra ms/trip: extra s / round trips, the RTT when every round trip is on the run's critical path, less when "
        "they overlap (the proxy's own cost and the connections' handshakes included; shown where round trips x RTT "
        f"is at least {PER_TRIP_MIN_SECONDS:g} s, above the runs' own spread)."
    )
    for line in rtt_slopes(runs):
        print(line)


def rtt_slopes(runs: Sequence[Run]) -> list[str]:
    """Between the smallest and the largest RTT of each run's kind: the seconds one more ms of RTT costs, per repeat,
    and per round trip (1.0: each round trip adds its RTT to the wall time). The proxy's own cost and the direct
    runs' spread cancel out."""
    lines = []
    for n, op in sorted(
        {(r.n, r.op) for r in runs if r.s3_rtt_ms is not None}, key=lambda k: (k[0], PULUMI_OPS.index(k[1]))
    ):
        proxied = [r for r in runs if (r.n, r.op) == (n, op) and r.s3_rtt_ms is not None]
        low, high = min(r.s3_rtt_ms or 0.0 for r in proxied), max(r.s3_rtt_ms or 0.0 for r in proxied)
        per_ms, per_trip = [], []
        for repeat in sorted({r.repeat for r in proxied}):
            a = [r for r in proxied if r.repeat == repeat and r.s3_rtt_ms == low]
            b = [r for r in proxied if r.repeat == repeat and r.s3_rtt_ms == high]
            if a and b and high > low and b[0].s3_round_trips:
                per_ms.append((b[0].seconds - a[0].seconds) / (high - low))
                per_trip.append(per_ms[-1] * 1000 / b[0].s3_round_trips)
        if per_ms and (high - low) * max(r.s3_round_trips for r in proxied) / 1000 >= PER_TRIP_MIN_SECONDS:
            lines.append(
                f"- N={n} {op}, RTT {low:g} to {high:g} ms: {cell(per_ms, 2)} s per ms of RTT, "
                f"{cell(per_trip, 2)} ms per round trip per ms of RTT"
            )
    return ["", "Slopes, within each repeat:", *lines] if lines else []


def print_targets(runs: Sequence[Run], sizes: Sequence[int], xargs_width: int) -> None:
    """Issue 13's targets, each ratio taken within one repeat, with its verdict."""
    verdicts: dict[str, bool] = {}
    lines = []
    big = max(sizes)
    small = 5 if 5 in sizes else sizes[0]
    target_n = 20 if 20 in sizes else big
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
    lines += requests_constant_lines(runs, sizes)
    print("\nTargets (issue 13), ratios within each repeat:\n")
    print("\n".join(lines))


def print_issue_23_targets(runs: Sequence[Run], sizes: Sequence[int], xargs_width: int, agent: AgentSettings) -> None:
    """Issue 23's targets that this run measured (those of its agent's wait), each ratio within one repeat."""
    lines: list[str] = []

    def judged(label: str, ratios: list[float], target: float | None) -> None:
        if ratios and target is None:
            lines.append(f"- {label} = {summarize(ratios).cell(2)} (no target at this W: issue 23 sets W = 0 and 20 s)")
        elif ratios and target is not None:
            held = statistics.median(ratios) <= target
            lines.append(f"- {label} = {summarize(ratios).cell(2)} (target <= {target:g}): {verdict(held)}")

    n = 20 if 20 in sizes else max(sizes)
    up, sequential = ("up", n, "default"), ("sequential script", n, "xargs -P 1")
    parallel = ("parallel script", n, f"xargs -P {xargs_width}")
    targets: dict[str, float | None] = dict(ISSUE_23_WAITING if agent.wait_seconds else ISSUE_23_AT_ONCE)
    if 0 < agent.wait_seconds < ISSUE_23_WAITING_FROM_SECONDS:
        targets = dict.fromkeys(targets)
    judged(
        f"pulumi up (N={n}) / sequential script", per_repeat_ratio(runs, up, sequential), targets["up vs sequential"]
    )
    if "up vs parallel" in targets:
        judged(f"pulumi up (N={n}) / parallel script", per_repeat_ratio(runs, up, parallel), targets["up vs parallel"])
    if "CPU vs sequential" in targets:
        judged(
            f"CPU s per cluster, pulumi up (N={n}) / sequential script (own tree and servers)",
            per_repeat_ratio(runs, up, sequential, lambda r: r.tree_cpu + r.server_cpu),
            targets["CPU vs sequential"],
        )
    big, small = max(sizes), (5 if 5 in sizes else min(sizes))
    if big >= 50:
        judged(
            f"up no-change (N={big}) / up from empty (N={big})",
            per_repeat_ratio(runs, ("up no-change", big, "default"), ("up", big, "default")),
            ISSUE_23_NO_CHANGE_SHARE,
        )
        judged(
            f"preview no-change: time(N={big}) / time(N={small}), N grew {big / small:g}x",
            per_repeat_ratio(runs, ("preview", big, "default"), ("preview", small, "default")),
            ISSUE_23_PREVIEW_GROWTH,
        )
    sampled = [r.memory.pss_mib / r.n for r in runs if (r.op, r.n) == ("up", big) and r.memory and r.memory.pss_mib]
    if sampled and big >= 50:
        held = statistics.median(sampled) <= ISSUE_23_PSS_PER_CLUSTER_MIB
        lines.append(
            f"- peak PSS of the pulumi process tree per cluster, pulumi up from empty (N={big}) = "
            f"{summarize(sampled).cell(0)} MiB (target <= {ISSUE_23_PSS_PER_CLUSTER_MIB:g} MiB): {verdict(held)}"
        )
    lines += requests_constant_lines(runs, sizes)
    print(f"\nTargets (issue 23, {agent.short()}), ratios within each repeat:\n")
    print("\n".join(lines))


def requests_constant_lines(runs: Sequence[Run], sizes: Sequence[int]) -> list[str]:
    """The last target: a no-change preview asks the management API server the same whatever N (no line unmeasured)."""
    mgmt_by_n = {
        n: [
            r.requests["mgmt"].total_namespaced
            for r in runs
            if r.op == "preview" and r.n == n and r.variant == "default"
        ]
        for n in sizes
    }
    counts = {n: statistics.median(v) for n, v in mgmt_by_n.items() if v}
    if not counts:
        return []
    constant = len({round(v) for v in counts.values()}) == 1
    shown = ", ".join(f"N={n}: {v:g}" for n, v in counts.items())
    return [
        f"- namespaced requests to the management API server in a no-change preview, constant in N ({shown}): "
        f"{verdict(constant)}"
    ]


def print_breakdown(runs: Sequence[Run]) -> None:
    """Where the time of the traced runs goes, by kind of work and by process."""
    print_work(runs)
    print_cpu_by_process(runs)
    print_memory_by_kind("Memory at the peak by kind of process, the same runs", runs)


def print_work(runs: Sequence[Run]) -> None:
    """The traced runs' kinds of work: how many, how long each, and how much of the wall time they covered."""
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
        if values["count"]  # a kind these runs did not know (a run saved before the kubectl check had none)
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


def print_cpu_by_process(runs: Sequence[Run]) -> None:
    """The traced runs' CPU by kind of process (sampled from ``/proc``) and their peak memory, all and per cluster."""
    n = runs[0].n
    walls = [run.traced_wall for run in runs]
    cpu_kinds = sorted({k for r in runs for k in r.cpu})
    cpu_rows = []
    for kind in cpu_kinds:
        values = [r.cpu.get(kind, 0.0) for r in runs]
        cpu_rows.append([kind, cell(values, 1), f"{statistics.median(values) / n:.2f}"])
    rss = [r.peak_rss_mib for r in runs]
    cpu_rows.append(["peak memory of the pulumi process tree, MiB", cell(rss, 0), f"{statistics.median(rss) / n:.0f}"])
    cpu_rows.append(["peak PSS of the pulumi process tree, MiB", *peak_row_cells(runs, n)])
    totals = [sum(r.cpu.values()) for r in runs]
    cpu_rows.append(["all", cell(totals, 1), f"{statistics.median(totals) / n:.2f}"])
    print_table(
        f"CPU seconds by process, the same runs ({os.cpu_count()} cores: "
        f"{(os.cpu_count() or 1) * statistics.median(walls):.0f} CPU s in the median wall)",
        ["process", "CPU s", "CPU s per cluster"],
        cpu_rows,
    )
