"""Reading the Markdown tables the benchmark scripts print (tests/test_benchmarks_smoke.py and the real-engine suite's
tests/e2e/test_benchmark_wait_latency.py): only their shape, never a timing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

NUMBER = r"-?\d+(?:\.\d+)?"
MEDIAN_SPREAD = re.compile(rf"^{NUMBER} ±{NUMBER}$")
INTEGER = re.compile(r"^\d+$")

Table = list[dict[str, str]]


def tables(output: str) -> dict[str, Table]:
    """Markdown tables by their title (the last text line before the header)."""
    found: dict[str, Table] = {}
    lines = output.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|-"):
            title = next(line for line in reversed(lines[:i]) if line.strip() and not line.startswith("|"))
            headers = [cell.strip() for cell in lines[i].strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [cell.strip() for cell in lines[i].strip("|").split("|")]
                assert len(cells) == len(headers), lines[i]
                rows.append(dict(zip(headers, cells, strict=True)))
                i += 1
            found[title] = rows
        else:
            i += 1
    return found


def table(output: str, title_start: str) -> Table:
    matching = [rows for title, rows in tables(output).items() if title.startswith(title_start)]
    assert len(matching) == 1, f"expected one table titled {title_start!r} in:\n{output}"
    assert matching[0], f"table {title_start!r} has no rows"
    return matching[0]


def assert_median_spread(row: dict[str, str], *columns: str) -> None:
    for column in columns:
        assert MEDIAN_SPREAD.match(row[column]), f"{column}: {row[column]!r} is not 'median ±spread'"


def fleet_reprint(saved: str) -> str:
    """What ``python -m benchmarks.fleet --from-json <saved>`` prints from the repository root (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.fleet", "--from-json", saved],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
