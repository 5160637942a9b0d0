"""The plot of the fleet's wall times against N (``--plot``): the Pulumi runs and the guide's scripts, median with
min-to-max bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.benchlib import Summary, summarize
from benchmarks.fleet.report import seconds_of
from benchmarks.fleet.runs import Run


def plot(runs: Sequence[Run], path: Path, xargs_width: int) -> None:
    """Write the PNG; matplotlib is imported here, so that a run without ``--plot`` never loads it."""
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
