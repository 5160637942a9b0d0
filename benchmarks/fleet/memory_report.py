"""The memory tables, from the runs whose processes were sampled (``--sample-sizes``, the traced runs): the process
tree's peak PSS and RSS by N and change, and the memory at the peak by kind of process. A run saved before PSS was
sampled prints "not measured" where a figure would be."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from benchmarks.benchlib import print_table
from benchmarks.fleet.proc import PROVIDER_KIND, Memory, MemoryPeak
from benchmarks.fleet.runs import PULUMI_OPS, Run

NOT_MEASURED = "not measured"


def _median(peaks: Sequence[MemoryPeak], value: Callable[[MemoryPeak], float], digits: int = 0) -> str:
    """The median of a figure over the runs' peaks (repeats), or "not measured"."""
    return _cell([value(p) for p in peaks], digits)


def _cell(values: Sequence[float], digits: int = 0) -> str:
    """The median of the values, or "not measured"."""
    return f"{statistics.median(values):.{digits}f}" if values else NOT_MEASURED


def _per_provider(peak: MemoryPeak, part: Callable[[Memory], float]) -> float:
    """A figure of the kubernetes providers at the peak, per provider process."""
    count = peak.processes.get(PROVIDER_KIND, 0)
    return part(peak.by_kind[PROVIDER_KIND]) / count if count else 0.0


def peak_row_cells(runs: Sequence[Run], n: int) -> list[str]:
    """The breakdown table's rows' cells for the peak PSS: all, and per cluster (or "not measured")."""
    peaks = [r.memory for r in runs if r.memory is not None]
    if not peaks:
        return [NOT_MEASURED, NOT_MEASURED]
    pss = [p.pss_mib for p in peaks]
    spread = (max(pss) - min(pss)) / 2
    return [f"{statistics.median(pss):.0f} ±{spread:.0f}", f"{statistics.median(pss) / n:.0f}"]


def print_memory_by_n(runs: Sequence[Run]) -> None:
    """The sampled ``pulumi`` runs' peak memory by N, run and change (nothing printed if no such run)."""
    sampled = [r for r in runs if r.memory is not None and r.op in PULUMI_OPS]
    groups = sorted({(r.n, PULUMI_OPS.index(r.op), r.variant) for r in sampled})
    rows = []
    for n, op_index, variant in groups:
        chosen = [r for r in sampled if (r.n, r.op, r.variant) == (n, PULUMI_OPS[op_index], variant)]
        peaks = [r.memory for r in chosen if r.memory is not None]
        rows.append(
            [
                str(n),
                PULUMI_OPS[op_index],
                variant,
                f"{statistics.median([r.peak_rss_mib for r in chosen]):.0f}",
                _median(peaks, lambda p: p.pss_mib),
                _cell([p.pss_mib / n for p in peaks]),
                _median(peaks, lambda p: p.processes.get(PROVIDER_KIND, 0)),
                _median(peaks, lambda p: _per_provider(p, lambda m: m.pss), 1),
                _median(peaks, lambda p: _per_provider(p, lambda m: m.anonymous), 1),
                _median(peaks, lambda p: _per_provider(p, lambda m: m.pss_file), 1),
                _median(peaks, lambda p: p.provider_max.anonymous, 1),
                f"{statistics.median([r.seconds for r in chosen]):.1f}",
                f"{statistics.median([r.tree_cpu for r in chosen]):.1f}",
                _median(peaks, lambda p: p.samples),
                _median(peaks, lambda p: p.sampling_cpu_s, 1),
                _median(peaks, lambda p: p.smaps_cpu_s, 1),
            ]
        )
    if not rows:
        return
    print_table(
        "Peak memory of the pulumi process tree, sampled runs (median of the repeats)",
        [
            "N",
            "run",
            "change",
            "peak RSS MiB",
            "peak PSS MiB",
            "PSS MiB/cluster",
            "providers at peak",
            "provider PSS MiB each",
            "provider anon MiB each",
            "provider file PSS MiB each",
            "largest provider anon MiB",
            "wall s",
            "CPU s",
            "samples",
            "sampling CPU s",
            "of it smaps_rollup",
        ],
        rows,
    )
    print(
        "\n"
        "peak RSS: the largest sum of the tree's resident sets in one sample (every process counts the pages it "
        "shares with others, so the 21 or 51 provider binaries' code counts 21 or 51 times); peak PSS: the largest "
        "sum of the tree's proportional set sizes (each shared page divided among the processes mapping it), from "
        "/proc/<pid>/smaps_rollup; providers: the kubernetes provider processes at that peak; anon: each one's "
        "anonymous resident memory (heap, stacks), file PSS: its share of the binary's pages; largest: the one "
        "provider with the most anonymous memory in any sample. sampling: the benchmark's own CPU for the samples "
        "(every 0.5 s after the last ended: stat of every process, smaps_rollup of every tree process, which makes "
        "the kernel walk its page tables), on the same cores, not in CPU s."
    )


def _kind_memory(peak: MemoryPeak, kind: str) -> Memory:
    """One kind's memory at the peak ("all": every kind's added up)."""
    if kind == "all":
        return sum(peak.by_kind.values(), Memory())
    return peak.by_kind.get(kind, Memory())


def print_memory_by_kind(title: str, runs: Sequence[Run], by: str = "n") -> None:
    """Memory at the peak PSS by kind of process, per N of the runs (``by="variant"``: per change, one N), the median
    of the repeats, per cluster too."""
    sampled = [r for r in runs if r.memory is not None]
    if not sampled:
        print(f"\n{title}: {NOT_MEASURED} (saved before PSS was sampled)")
        return
    columns: dict[str, list[Run]] = {}
    for run in sorted(sampled, key=lambda r: (r.n, r.variant != "default", r.variant)):
        columns.setdefault(f"N={run.n}" if by == "n" else run.variant, []).append(run)
    kinds = sorted({kind for r in sampled if r.memory is not None for kind in r.memory.by_kind})
    rows = []
    for kind in [*kinds, "all"]:
        row = [kind]
        for chosen in columns.values():
            peaks = [r.memory for r in chosen if r.memory is not None]
            memories = [_kind_memory(p, kind) for p in peaks]
            counts = [sum(p.processes.values()) if kind == "all" else p.processes.get(kind, 0) for p in peaks]
            row += [
                _cell(counts),
                _cell([m.pss for m in memories], 1),
                _cell([m.pss_anon for m in memories], 1),
                _cell([m.pss_file for m in memories], 1),
                _cell([m.pss / chosen[0].n for m in memories], 1),
            ]
        rows.append(row)
    headers = ["process"]
    for label in columns:
        headers += [f"{label}: processes", "PSS MiB", "anon", "file", "PSS MiB/cluster"]
    print_table(title, headers, rows)
    print(
        "\n"
        "At the sample with the largest total PSS of the pulumi run's process tree; anon and file: the PSS of its "
        "anonymous pages (heap, stacks) and of its file-backed pages (executables, libraries), which add up to the "
        "PSS but for shared memory."
    )
