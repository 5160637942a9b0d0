"""The fleet command: ``preview``, ``up`` or ``destroy`` of many stacks of this project, K at a time, on Pulumi's
Automation API, with a live line per stack, a summary table at the end and one log file per stack (docs/fleets.md,
"Many stacks at once"). Also the one rule for ``--parallel`` that it and ``scripts/up.sh`` share.

    .venv/bin/python scripts/fleet.py preview                         # every stacks/Pulumi.<stack>.yaml
    .venv/bin/python scripts/fleet.py up --yes eu-west us-east        # those two, 2 at a time
    .venv/bin/python scripts/fleet.py destroy --yes eu-west
    .venv/bin/python scripts/fleet.py parallel stacks/Pulumi.dev.yaml -- [pulumi up flags]   # what up.sh calls

A module of ``scripts/`` as ``structure.py`` is: run by its path, imported by the tests as ``scripts.fleet``. It needs
only what the program's ``.venv`` holds (the Pulumi SDK, which brings PyYAML), so ``pulumi install`` (or
``scripts/up.sh``) once makes everything it needs.

What runs is split at one seam, a :data:`Runner` (one stack's run, given a job and a function that writes its log):
:func:`automation_runner` is the real one; the tests give their own to check the rest (stack discovery, the
scheduling, the live lines, the summary, the exit status, the log files) without the engine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml
from pulumi import automation as auto
from pulumi.automation.errors import create_command_error

ROOT = Path(__file__).resolve().parents[1]
OPS = ("preview", "up", "destroy")
DEFAULT_JOBS = 2
"""Stacks at a time. Each stack already runs its clusters in parallel (``--parallel``); on a 2-core runner one stack's
``pulumi up`` is CPU-bound at about 1.5 CPU s per cluster, and each running stack holds about 0.35 GiB + 58 MiB per
cluster (BENCHMARKS.md, "How many clusters one stack should hold"). Two at a time lets one stack's waits (its agents,
the API servers, the state backend) overlap another's CPU, without doubling the memory more than once; more pays on a
runner with more cores and memory (``--jobs``)."""
LOG_ROOT = ".fleet-logs"
INSTALL_LOG = "_install.log"

PARALLEL_PER_CLUSTER = 4
MIN_PARALLEL = 16

# A stack's result, in the summary; its state while it runs is one of these or "waiting" / "running".
SUCCEEDED = "succeeded"
NO_CHANGES = "no changes"
FAILED = "failed"
INTERRUPTED = "interrupted"
NOT_RUN = "not run"
WAITING = "waiting"
RUNNING = "running"

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# --- The --parallel rule (scripts/up.sh runs `fleet.py parallel`) --------------------------------------------------


def cluster_count(stack_file: Path) -> int:
    """The clusters a stack file lists: the longest ``<project>:clusters`` list of its config (0 without one)."""
    config = (yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}).get("config") or {}
    return max([len(v) for k, v in config.items() if k.endswith(":clusters") and isinstance(v, list)] or [0])


def parallel_for(clusters: int) -> int:
    """``--parallel`` for a stack of ``clusters``: 4 per cluster, at least 16.

    Pulumi's default (4 x the runner's cores, 8 on a 2-core CI runner) would queue a fleet's clusters, each of whose
    agent releases waits for the agent to come up; a cluster has at most 3 steps running at once. Measured:
    BENCHMARKS.md (``benchmarks.fleet.runs.up_sh_parallel`` is the benchmark's copy, which a test holds equal)."""
    return max(MIN_PARALLEL, PARALLEL_PER_CLUSTER * clusters)


def parallel_given(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the user chose the parallelism: ``-p N``, ``-pN``, ``--parallel N`` or ``--parallel=N`` among
    ``args``, or ``PULUMI_PARALLEL`` set (the CLI reads it)."""
    return bool(environ.get("PULUMI_PARALLEL")) or any(
        arg in ("-p", "--parallel") or arg.startswith("--parallel=") or re.match(r"-p[0-9]", arg) is not None
        for arg in args
    )


def parallel_args(stack_file: Path, args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The ``--parallel`` flag ``scripts/up.sh`` adds to ``pulumi up <args>`` for ``stack_file``: none if the user
    chose, else :func:`parallel_for` its clusters."""
    if parallel_given(args, environ):
        return []
    return ["--parallel", str(parallel_for(cluster_count(stack_file)))]


# --- Stacks ----------------------------------------------------------------------------------------------------------


class UsageError(Exception):
    """A command line or a stack file that cannot run: reported before anything runs."""


@dataclass(frozen=True)
class StackFile:
    name: str
    path: Path
    clusters: int


def stack_folder(project_dir: Path) -> Path:
    """Where the project's stack files are: ``stackConfigDir`` of its ``Pulumi.yaml`` (the project's folder without)."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    return project_dir / str(project.get("stackConfigDir") or ".")


def stack_files(project_dir: Path) -> dict[str, Path]:
    """Every ``Pulumi.<stack>.yaml`` of the project, by stack name."""
    return {
        path.name.removeprefix("Pulumi.").removesuffix(".yaml"): path
        for path in sorted(stack_folder(project_dir).glob("Pulumi.*.yaml"))
    }


def select_stacks(project_dir: Path, names: Sequence[str]) -> list[StackFile]:
    """The stacks named (each once, in the order given), or every stack of the project; an unknown name, or a stack
    file that cannot be read, is a :class:`UsageError` that lists the stacks there."""
    found = stack_files(project_dir)
    folder = stack_folder(project_dir)
    shown = folder.relative_to(project_dir) if folder.is_relative_to(project_dir) else folder
    if not found:
        raise UsageError(f"there is no stack file (Pulumi.<stack>.yaml) in {folder}")
    unknown = [name for name in names if name not in found]
    if unknown:
        missing = ", ".join(str(shown / f"Pulumi.{name}.yaml") for name in unknown)
        raise UsageError(f"there is no {missing}; stacks there: {' '.join(found)}")
    chosen = list(dict.fromkeys(names)) or list(found)
    stacks = []
    for name in chosen:
        try:
            clusters = cluster_count(found[name])
        except (OSError, yaml.YAMLError, AttributeError) as problem:
            raise UsageError(f"cannot read {shown / found[name].name}: {first_line(str(problem))}") from problem
        stacks.append(StackFile(name, found[name], clusters))
    return stacks


# --- Results, changes and error lines --------------------------------------------------------------------------------

QUIET_OPS = ("same", "read")
"""Operations that change nothing: a run with only these has no changes."""
OP_ORDER = (
    "create",
    "update",
    "replace",
    "create-replacement",
    "delete-replaced",
    "delete",
    "discard",
    "import",
    "read",
    "same",
)

_COLOR_TAG = re.compile(r"<\{%[^%]*%\}>")  # the engine's colour directives, e.g. <{%reset%}>
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    return _ANSI.sub("", _COLOR_TAG.sub("", text))


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped, without colour."""
    return next((line.strip() for line in plain(text).splitlines() if line.strip()), "")


def diagnostic_line(message: str) -> str:
    """An engine error diagnostic in one line: its first line, and when that only introduces what follows (it ends
    with ``:``), its last line too, which then holds the cause. The kubernetes provider's "configured Kubernetes
    cluster is unreachable: ... Make sure you have:" ends, after a line of advice, with what is wrong (``context
    "x" does not exist``)."""
    lines = [line.strip() for line in plain(message).splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} ... {lines[-1]}"
    return lines[0]


def first_error_line(text: str) -> str:
    """The first ``error:`` line of a CLI's output (how the CLI starts its errors), else its first non-blank line."""
    lines = [line.strip() for line in plain(text).splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")


def command_error_line(error: BaseException) -> str:
    """The first error line of a failed ``pulumi`` run (an Automation API ``CommandError``, whose text is ``code:``,
    ``stdout:`` and ``stderr:``): the CLI's ``error:`` line from its stderr, else from its stdout, else the first line
    of either; for any other exception, the first error line of its text."""
    text = str(error)
    head, marker, rest = text.partition("\n stdout: ")
    if not marker or not head.strip().startswith("code:"):
        return first_error_line(text)
    stdout, _, stderr = rest.partition("\n stderr: ")
    for part in (stderr, stdout):
        if first_error_line(part).startswith("error:"):
            return first_error_line(part)
    return first_line(stderr) or first_line(stdout) or first_line(text)


def has_changes(changes: Mapping[str, int]) -> bool:
    return any(count for op, count in changes.items() if op not in QUIET_OPS)


def format_changes(changes: Mapping[str, int] | None) -> str:
    """``create 9, same 1``: the counts by operation, in the order a reader looks for them (zeros left out)."""
    if not changes:
        return "-"
    ops = sorted((op for op, count in changes.items() if count), key=lambda op: (_rank(op), op))
    return ", ".join(f"{op} {changes[op]}" for op in ops) or "-"


def _rank(op: str) -> int:
    return OP_ORDER.index(op) if op in OP_ORDER else len(OP_ORDER)


def op_counts(changes: Mapping[auto.OpType, int] | None) -> dict[str, int] | None:
    """The Automation API's counts by operation with plain names (its keys are the summary's JSON strings, typed
    as ``OpType``, a ``str`` enum)."""
    if changes is None:
        return None
    return {getattr(op, "value", op): int(count) for op, count in changes.items()}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


# --- One stack's run: the seam ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the command line gives every stack's run (the Automation API's options of the same names)."""

    refresh: bool = False
    diff: bool = False
    expect_no_changes: bool = False
    message: str | None = None
    skip_preview: bool = False
    """``up`` only: no preview first (``pulumi up --yes`` previews first, and so does ``scripts/up.sh``)."""


@dataclass(frozen=True)
class Job:
    op: str
    stack: StackFile
    parallel: int | None
    """``--parallel`` for this stack; None leaves it to the CLI (``PULUMI_PARALLEL``)."""
    settings: Settings = Settings()


@dataclass(frozen=True)
class Outcome:
    """What one stack's run gave: the resource changes (the Automation API's summary; for a failed run, what the
    engine's summary event counted, if it got that far), when it failed its first error line, and the engine's
    warnings, each once (a preview passes with a warning that a cluster is unreachable, say: a reader of the summary
    must see it)."""

    changes: Mapping[str, int] | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


Log = Callable[[str], None]
Runner = Callable[[Job, Log], Outcome]
"""Runs one stack (``job``), writing every line of its output with ``log``; returns its outcome. An exception it
raises is a failure whose first error line is taken from the exception's text."""
Prepare = Callable[[Log], None]
"""Runs once before the stacks (``pulumi install``); an exception fails the fleet before any stack runs."""


def job_parallel(stack: StackFile, given: int | None, environ: Mapping[str, str]) -> int | None:
    """A stack's ``--parallel``: the one given, else none when ``PULUMI_PARALLEL`` is set, else the shared rule."""
    if given is not None:
        return given
    return None if parallel_given((), environ) else parallel_for(stack.clusters)


# --- The fleet: K stacks at a time -----------------------------------------------------------------------------------


@dataclass
class Record:
    """One stack of the fleet, as the live lines and the summary show it."""

    job: Job
    log: Path
    state: str = WAITING
    started: float | None = None
    ended: float | None = None
    changes: Mapping[str, int] | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.job.stack.name

    def duration(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started


class Fleet:
    """Runs ``jobs`` with ``runner``, ``concurrency`` at a time, in the order given, after ``prepare``.

    Only the main thread writes to the display. ``interrupts`` counts Ctrl-C (and SIGTERM): the signal handler only
    adds one (a handler must take no lock); the main thread, which polls it while it waits, stops starting stacks and
    calls ``on_interrupt`` with the count, which passes each one to the running ``pulumi`` processes as a terminal's
    Ctrl-C would (the first cancels gracefully, the second ends them)."""

    POLL_SECONDS = 0.2

    def __init__(
        self,
        jobs: Sequence[Job],
        runner: Runner,
        *,
        log_dir: Path,
        display: Display,
        concurrency: int = DEFAULT_JOBS,
        prepare: Prepare | None = None,
        on_interrupt: Callable[[int], None] = lambda count: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = [Record(job, log_dir / f"{job.stack.name}.log") for job in jobs]
        self.runner = runner
        self.log_dir = log_dir
        self.display = display
        self.concurrency = concurrency
        self.prepare = prepare
        self.on_interrupt = on_interrupt
        self.clock = clock
        self.interrupts = 0
        self.prepare_error: str | None = None
        self._handled = 0
        self._stopping = threading.Event()
        self._changed: queue.SimpleQueue[Record] = queue.SimpleQueue()  # copies, as each state was

    @property
    def interrupted(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        self.display.start(self.records)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="fleet") as pool:
            if self.prepare is not None and not self._prepared(pool, self.prepare):
                for record in self.records:
                    record.state = NOT_RUN
                self.display.finish()
                return
            runs = [pool.submit(self._run_one, record) for record in self.records]
            self._wait(runs)
            for run in runs:
                run.result()  # a bug of this module (a stack's failure is its record's): let it show
        self._show_changes()
        self.display.finish()

    def exit_status(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.prepare_error is not None or any(record.state == FAILED for record in self.records):
            return EXIT_FAILED
        return 0

    def _prepared(self, pool: ThreadPoolExecutor, prepare: Prepare) -> bool:
        log_path = self.log_dir / INSTALL_LOG
        self.display.note(f"pulumi install (log: {log_path})")
        started = self.clock()
        with _LogFile(log_path) as log:
            done = pool.submit(prepare, log.write)
            self._wait([done])
            problem = done.exception()
            if problem is not None:
                log.write(f"# {problem}")
        if self.interrupted:
            self.display.note("pulumi install: interrupted")
            return False
        if problem is not None:
            self.prepare_error = command_error_line(problem) or type(problem).__name__
            self.display.note(f"pulumi install: failed: {self.prepare_error}")
            return False
        self.display.note(f"pulumi install: done in {format_duration(self.clock() - started)}")
        return True

    def _wait(self, futures: list[Future[None]]) -> None:
        pending = set(futures)
        while pending:
            _, pending = wait_for(pending, timeout=self.POLL_SECONDS)
            if self.interrupts > self._handled:
                self._handled = self.interrupts
                self._stop()
            self._show_changes()
            self.display.tick()

    def _stop(self) -> None:
        first = not self._stopping.is_set()
        self._stopping.set()
        running = [record.name for record in self.records if record.state == RUNNING]
        if first:
            waiting = sum(record.state == WAITING for record in self.records)
            self.display.note(
                f"interrupted: stopping {len(running)} running stack(s) ({', '.join(running) or 'none'}), "
                f"{waiting} waiting will not start; Ctrl-C again to end them at once"
            )
        else:
            self.display.note(f"interrupted again: ending {', '.join(running) or 'nothing'} at once")
        self.on_interrupt(self._handled)

    def _show_changes(self) -> None:
        while True:
            try:
                record = self._changed.get_nowait()
            except queue.Empty:
                return
            self.display.change(record)

    def _run_one(self, record: Record) -> None:
        if self._stopping.is_set():
            record.state = NOT_RUN
            self._changed.put(replace(record))
            return
        record.started = self.clock()
        record.state = RUNNING
        self._changed.put(replace(record))
        job = record.job
        with _LogFile(record.log) as log:
            log.write(
                f"# fleet {job.op}: stack {record.name} ({describe(job)}), {datetime.datetime.now():%Y-%m-%d %H:%M:%S}"
            )
            try:
                outcome = self.runner(job, log.write)
            except Exception as problem:  # any failure of one stack is that stack's result
                outcome = Outcome(error=command_error_line(problem) or type(problem).__name__)
            record.ended = self.clock()
            record.changes = outcome.changes
            record.error = outcome.error
            record.warnings = outcome.warnings
            if outcome.error is not None:
                record.state = INTERRUPTED if self._stopping.is_set() else FAILED
            else:
                record.state = SUCCEEDED if outcome.changes is None or has_changes(outcome.changes) else NO_CHANGES
            detail = f": {record.error}" if record.error else f" ({format_changes(record.changes)})"
            log.write(f"# {record.state} in {format_duration(record.duration(record.ended))}{detail}")
        self._changed.put(replace(record))


class _LogFile:
    """A stack's log: each line written as it comes (from the CLI's stdout and stderr readers at once), so the file
    can be followed while the stack runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def __enter__(self) -> _LogFile:
        self._file = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def write(self, line: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()


def describe(job: Job) -> str:
    clusters = f"{job.stack.clusters} cluster{'' if job.stack.clusters == 1 else 's'}"
    return f"{clusters}, --parallel {job.parallel}" if job.parallel is not None else clusters


# --- What the operator sees: live lines and the summary --------------------------------------------------------------


def warned(record: Record) -> str:
    """``; 1 warning: <the first>`` when the engine warned, else nothing."""
    count = len(record.warnings)
    return f"; {count} warning{'' if count == 1 else 's'}: {record.warnings[0]}" if count else ""


def event_line(record: Record, now: float) -> str:
    """One line per change of a stack's state (the form for logs that are not a terminal)."""
    took = format_duration(record.duration(now))
    if record.state == RUNNING:
        return f"{record.name}: running ({describe(record.job)})"
    if record.state in (SUCCEEDED, NO_CHANGES):
        changes = format_changes(record.changes)
        done = f"{record.name}: done in {took} ({'no changes: ' if record.state == NO_CHANGES else ''}{changes})"
        return done + warned(record)
    if record.state == FAILED:
        return f"{record.name}: failed in {took}: {record.error}"
    if record.state == INTERRUPTED:
        return f"{record.name}: interrupted after {took}"
    return f"{record.name}: {record.state}"


def live_line(record: Record, now: float, width: int) -> str:
    """A stack's line in the block a terminal redraws in place."""
    state = "done" if record.state in (SUCCEEDED, NO_CHANGES) else record.state
    if record.state == RUNNING:
        detail = describe(record.job)
    elif record.state in (SUCCEEDED, NO_CHANGES):
        detail = ("no changes: " if record.state == NO_CHANGES else "") + format_changes(record.changes)
        detail += warned(record)
    else:
        detail = record.error or ""
    took = format_duration(record.duration(now)) if record.started is not None else ""
    return f"{record.name:<{width}}  {state:<11} {took:>7}  {detail}".rstrip()


class Display:
    """The live lines: on a terminal, a block of one line per stack redrawn in place; otherwise (CI logs) one line per
    change of a stack's state, never a carriage return or a cursor movement."""

    REDRAW_SECONDS = 0.5

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.out = out
        self.tty = tty
        self.clock = clock
        self.columns = columns
        self._records: list[Record] = []
        self._drawn = 0
        self._last_draw = 0.0

    def start(self, records: list[Record]) -> None:
        self._records = records

    def note(self, text: str) -> None:
        """A line above the block (a terminal) or in the stream (otherwise)."""
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        self.out.write(text + "\n")
        if self.tty and any(record.state != WAITING for record in self._records):
            self._draw()
        self.out.flush()

    def change(self, record: Record) -> None:
        if self.tty:
            self._draw()
        else:
            self.out.write(event_line(record, self.clock()) + "\n")
            self.out.flush()

    def tick(self) -> None:
        if self.tty and self._drawn and self.clock() - self._last_draw >= self.REDRAW_SECONDS:
            self._draw()

    def finish(self) -> None:
        if self.tty and self._drawn:
            self._draw()

    def _draw(self) -> None:
        now = self.clock()
        width = max((len(record.name) for record in self._records), default=0)
        limit = max(self.columns() - 1, 20)
        lines = [live_line(record, now, width)[:limit] for record in self._records]
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)
        self._last_draw = now


def summary_table(records: Sequence[Record]) -> list[str]:
    """The table printed at the end: stack, clusters (from its stack file), result, duration, changes."""
    rows = [("stack", "clusters", "result", "duration", "changes")]
    for record in records:
        took = format_duration(record.duration(record.ended)) if record.ended is not None else "-"
        rows.append((record.name, str(record.job.stack.clusters), record.state, took, format_changes(record.changes)))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    right = (False, True, False, True)
    return [
        "  ".join(
            [
                *(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row[:4], widths, right, strict=True)),
                row[4],
            ]
        ).rstrip()
        for row in rows
    ]


def closing_lines(fleet: Fleet, op: str) -> list[str]:
    """Under the table: each failed stack with its first error line and its log, each stack the engine warned about
    with its warnings, and the verdict."""
    lines = [f"{r.name} failed: {r.error} (log: {r.log})" for r in fleet.records if r.state == FAILED]
    for record in fleet.records:
        lines += [f"{record.name} warning: {warning}" for warning in record.warnings]
    failed = [r.name for r in fleet.records if r.state == FAILED]
    if fleet.prepare_error is not None:
        lines.append(f"pulumi install failed: {fleet.prepare_error} (log: {fleet.log_dir / INSTALL_LOG}); no stack ran")
    if fleet.interrupted:
        stopped = [r.name for r in fleet.records if r.state in (INTERRUPTED, NOT_RUN)]
        lines.append(f"fleet {op}: interrupted; not completed: {', '.join(stopped) or 'none'}")
    elif failed:
        lines.append(f"fleet {op}: {len(failed)} of {len(fleet.records)} stacks failed: {', '.join(failed)}")
    elif fleet.prepare_error is None:
        count = len(fleet.records)
        lines.append(f"fleet {op}: " + ("the stack succeeded" if count == 1 else f"all {count} stacks succeeded"))
    lines.append(f"logs: {fleet.log_dir}")
    return lines


# --- The real runner: Pulumi's Automation API ------------------------------------------------------------------------


class FleetInterruptedError(Exception):
    """A ``pulumi`` run not started because the fleet was interrupted."""


READ_ONLY = (("stack", "output"), ("stack", "history"))
"""Runs that still start after a Ctrl-C: what the Automation API reads after an ``up`` or ``destroy`` completed."""


class FleetCommand(auto.PulumiCommand):
    """The Automation API's ``pulumi`` runner (``PulumiCommand.run``, as the SDK's own does it: ``--non-interactive``,
    the environment with the workspace's variables, each output line to the callbacks, a typed error on failure),
    except that each run gets stdin from /dev/null and a process group of its own, which :meth:`interrupt` signals as
    a terminal's Ctrl-C signals a foreground ``pulumi``: the fleet decides who gets a Ctrl-C and how many times, never
    the terminal (which would also reach runs the fleet has not told yet, or a second time)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._running: dict[subprocess.Popen[str], int] = {}  # each run: the interrupts it has been sent
        self._interrupts = 0

    def interrupt(self, count: int) -> None:
        """Until each running ``pulumi`` has had ``count`` SIGINTs (the fleet's Ctrl-Cs so far): one each."""
        with self._lock:
            self._interrupts = count
            for process, sent in self._running.items():
                for _ in range(count - sent):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGINT)
                self._running[process] = max(count, sent)

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: auto.OnOutput | None = None,
        on_error: auto.OnOutput | None = None,
    ) -> auto.CommandResult:
        separator = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:separator]:
            args = ["--non-interactive", *args]
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        with self._lock:
            if self._interrupts and not any(_runs(args, words) for words in READ_ONLY):
                words = [arg for arg in args if not arg.startswith("-")][:2]
                raise FleetInterruptedError(f"interrupted before `pulumi {' '.join(words)}` started")
            process = subprocess.Popen(
                [self.command, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                encoding="utf-8",
                process_group=0,
            )
            self._running[process] = self._interrupts
        stdout: list[str] = []
        stderr: list[str] = []
        readers = [
            threading.Thread(target=_read, args=(process.stdout, on_output, stdout), daemon=True),
            threading.Thread(target=_read, args=(process.stderr, on_error, stderr), daemon=True),
        ]
        try:
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            code = process.wait()
        finally:
            with self._lock:
                self._running.pop(process, None)
        result = auto.CommandResult(stdout="\n".join(stdout), stderr="\n".join(stderr), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def _runs(args: Sequence[str], words: Sequence[str]) -> bool:
    positional = [arg for arg in args if not arg.startswith("-")]
    return positional[: len(words)] == list(words)


def _read(stream: TextIO | None, callback: auto.OnOutput | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in iter(stream.readline, ""):
        stripped = line.rstrip()
        if callback is not None:
            callback(stripped)
        lines.append(stripped)
    stream.close()


def run_tmpdir(stack: str) -> Path:
    """A ``TMPDIR`` of the run's own (mode 700), for what the kubernetes provider writes there (see
    :func:`remove_provider_copies`)."""
    return Path(tempfile.mkdtemp(prefix=f"gloo-registration-{stack}.", dir=os.environ.get("TMPDIR") or None))


_REMOVERS: list[subprocess.Popen[bytes]] = []


def remove_provider_copies(folder: Path) -> None:
    """What ``scripts/up.sh``'s trap does. The kubernetes provider writes a copy of every kubeconfig it is given
    (contents included: client keys, tokens) into ``$TMPDIR`` each time it starts, and never deletes it
    (pulumi-kubernetes ``pkg/provider/util.go``, ``writeKubeconfigToFile``): those copies are deleted, then the folder.
    A token guard (components/lifecycle.py) may outlive the run with a folder of its own in there: then a detached
    ``sh`` removes ours once the guard is done (a guard gives up after 10 minutes)."""
    for copy in folder.glob("kubeconfig*"):
        if copy.is_file() and not copy.is_symlink():
            copy.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except FileNotFoundError:
        return
    except OSError:
        _REMOVERS.append(
            subprocess.Popen(
                [
                    "sh",
                    "-c",
                    'for _ in $(seq 900); do rmdir "$1" 2>/dev/null && exit 0; sleep 1; done',
                    "sh",
                    str(folder),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )


def automation_install(project_dir: Path, command: FleetCommand) -> Prepare:
    """``pulumi install`` of the project (its ``.venv`` from requirements.txt, its plugins), once for the fleet."""

    def install(log: Log) -> None:
        tmp = run_tmpdir("install")
        try:
            workspace = auto.LocalWorkspace(
                work_dir=str(project_dir), env_vars={"TMPDIR": str(tmp)}, pulumi_command=command
            )
            workspace.install(on_output=log)
        finally:
            remove_provider_copies(tmp)

    return install


def automation_runner(project_dir: Path, command: FleetCommand) -> Runner:
    """One stack's run on the Automation API, as ``scripts/up.sh`` runs one: a ``LocalWorkspace`` of its own on the
    project with a ``TMPDIR`` of its own, ``stack select --create`` with the passphrase secrets provider (``destroy``
    only selects: it never creates a stack to destroy nothing), then the operation with the stack's ``--parallel``,
    every output line to the log. ``up`` previews first, as ``pulumi up --yes`` does (the Automation API's ``up``
    alone is ``pulumi up --skip-preview``): the checks that only a preview makes (docs/how-it-works.md, "A preview
    fails where up would": objects that exist already) stop the stack before anything changes. The first error line
    is the engine's first error diagnostic (:func:`diagnostic_line`), else the CLI's ``error:`` line. Secrets: the
    summaries are read with ``show_secrets=False``, and what is logged is what the CLI prints, which masks them."""

    def run(job: Job, log: Log) -> Outcome:
        errors: list[str] = []
        warnings: dict[str, None] = {}  # each once: a preview and then an update give the same ones
        summaries: list[dict[str, int] | None] = []

        def on_event(event: auto.EngineEvent) -> None:
            diagnostic = event.diagnostic_event
            if diagnostic is not None and diagnostic.severity == "error" and diagnostic_line(diagnostic.message):
                errors.append(diagnostic_line(diagnostic.message))
            if diagnostic is not None and diagnostic.severity == "warning" and diagnostic_line(diagnostic.message):
                warnings.setdefault(diagnostic_line(diagnostic.message))
            if event.summary_event is not None:
                summaries.append(op_counts(event.summary_event.resource_changes))

        tmp = run_tmpdir(job.stack.name)
        options = auto.LocalWorkspaceOptions(
            secrets_provider="passphrase", env_vars={"TMPDIR": str(tmp)}, pulumi_command=command
        )
        settings = job.settings
        running = False  # the operation itself started (before: selecting the stack, whose output is not streamed)
        try:
            if job.op == "destroy":
                stack = auto.select_stack(job.stack.name, work_dir=str(project_dir), opts=options)
            else:
                stack = auto.create_or_select_stack(job.stack.name, work_dir=str(project_dir), opts=options)
            changes: Mapping[str, int] | None
            running = True
            # What every operation is given; preview and up also take the diff and expect-no-changes flags.
            common: dict[str, Any] = {
                "parallel": job.parallel,
                "refresh": settings.refresh or None,
                "message": settings.message,
                "color": "never",
                "on_output": log,
                "on_error": log,
                "on_event": on_event,
            }
            planned: dict[str, Any] = {
                "diff": settings.diff or None,
                "expect_no_changes": settings.expect_no_changes or None,
            }
            if job.op == "preview" or (job.op == "up" and not settings.skip_preview):
                changes = op_counts(stack.preview(**common, **planned).change_summary)
            if job.op == "up":
                changes = op_counts(stack.up(**common, **planned, show_secrets=False).summary.resource_changes)
            if job.op == "destroy":
                changes = op_counts(stack.destroy(**common, show_secrets=False).summary.resource_changes)
            return Outcome(changes=changes, warnings=tuple(warnings))
        except auto.CommandError as error:
            if not running:
                log(str(error).strip())
            return Outcome(
                changes=summaries[-1] if summaries else None,
                error=errors[0] if errors else command_error_line(error),
                warnings=tuple(warnings),
            )
        finally:
            remove_provider_copies(tmp)

    return run


# --- The command line ------------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="fleet.py",
        description="preview, up or destroy many stacks of this project at once, K at a time, on Pulumi's Automation "
        "API: a live line per stack, a summary table at the end, each stack's whole output in a log file. Runs "
        "`pulumi install` once, then per stack `pulumi stack select --create` (passphrase secrets provider; destroy "
        "only selects) and the operation, with a TMPDIR of its own that is emptied afterwards, as scripts/up.sh does.",
        epilog="Exit status: 0 when every stack succeeded, 1 when one failed (named at the end), 2 for a usage error, "
        "130 when interrupted (Ctrl-C: running stacks are cancelled, as pulumi cancels on Ctrl-C; again: ended at "
        "once). The environment passes through to pulumi: PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE[_FILE] (the "
        "runs cannot prompt for it), cloud credentials, KUBECONFIG.",
    )
    parse.add_argument("op", choices=OPS, help="the operation, on every stack")
    parse.add_argument(
        "stacks",
        nargs="*",
        metavar="STACK",
        help="stacks to run (default: every Pulumi.<stack>.yaml of stackConfigDir)",
    )
    parse.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=DEFAULT_JOBS,
        metavar="K",
        help=f"stacks at a time (default {DEFAULT_JOBS})",
    )
    parse.add_argument(
        "-p",
        "--parallel",
        type=_positive,
        metavar="N",
        help="pulumi's --parallel for every stack (default: 4 per cluster of its stack file, at least 16, unless "
        "PULUMI_PARALLEL is set)",
    )
    parse.add_argument("-y", "--yes", action="store_true", help="needed for up and destroy, which do not ask")
    parse.add_argument(
        "--skip-preview",
        action="store_true",
        help="up: no preview of each stack first (the preview's checks stop a stack before anything changes)",
    )
    parse.add_argument("--refresh", action="store_true", help="refresh each stack's state first")
    parse.add_argument("--diff", action="store_true", help="preview and up: the detailed diff, in the logs")
    parse.add_argument(
        "--expect-no-changes", action="store_true", help="preview and up: a stack that would change fails"
    )
    parse.add_argument("-m", "--message", help="the update's message, in each stack's history")
    parse.add_argument(
        "--log-dir", type=Path, metavar="DIR", help=f"where <stack>.log goes (default: a new folder under {LOG_ROOT}/)"
    )
    parse.add_argument(
        "--project-dir", type=Path, default=ROOT, metavar="DIR", help="the Pulumi project (default: this checkout)"
    )
    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def parallel_main(argv: Sequence[str]) -> int:
    """``fleet.py parallel STACK_FILE [-- PULUMI_UP_ARGS...]``: prints the ``--parallel N`` flag ``scripts/up.sh`` adds
    to ``pulumi up`` for that stack file and those arguments, or an empty line when the user chose."""
    if not argv:
        print("usage: fleet.py parallel STACK_FILE [-- PULUMI_UP_ARGS...]", file=sys.stderr)
        return EXIT_USAGE
    stack_file, rest = Path(argv[0]), list(argv[1:])
    if rest[:1] == ["--"]:
        rest = rest[1:]
    print(" ".join(parallel_args(stack_file, rest, os.environ)))
    return 0


def new_log_dir(project_dir: Path, op: str, given: Path | None) -> Path:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{op}"
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        folder = project_dir / LOG_ROOT / f"{stamp}{suffix}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise UsageError(f"cannot make a new log folder under {project_dir / LOG_ROOT}")


@contextlib.contextmanager
def signals_to(fleet: Fleet) -> Iterator[None]:
    """While in the block, SIGINT (Ctrl-C) and SIGTERM each count one interrupt of ``fleet``."""

    def handler(signum: int, frame: FrameType | None) -> None:
        fleet.interrupts += 1

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handling in previous.items():
            signal.signal(number, handling)


def require_kubectl() -> bool:
    """The steps' own check of kubectl (on PATH, new enough), before anything runs, as scripts/up.sh does."""
    check = ROOT / "components" / "gloo_mesh_registration" / "shell" / "require_kubectl.sh"
    return not check.exists() or subprocess.run(["sh", str(check)], check=False).returncode == 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    if argv[:1] == ["parallel"]:
        return parallel_main(argv[1:])
    args = parser().parse_intermixed_args(argv)
    project_dir = args.project_dir.resolve()
    try:
        stacks = select_stacks(project_dir, args.stacks)
    except (UsageError, OSError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.op in ("up", "destroy") and not args.yes:
        print(
            f"error: {args.op} changes {len(stacks)} stack(s) without asking: run `fleet.py preview` first, then "
            f"`fleet.py {args.op} --yes`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not require_kubectl():
        return EXIT_FAILED
    try:
        command = FleetCommand()
    except FileNotFoundError:
        print(
            "error: the Pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/iac/download-install/) and "
            "run again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    settings = Settings(args.refresh, args.diff, args.expect_no_changes, args.message, args.skip_preview)
    jobs = [Job(args.op, stack, job_parallel(stack, args.parallel, os.environ), settings) for stack in stacks]
    try:
        log_dir = new_log_dir(project_dir, args.op, args.log_dir)
    except (UsageError, OSError) as problem:
        print(f"error: no log folder: {problem}", file=sys.stderr)
        return EXIT_USAGE
    display = Display(out, tty=out.isatty() and os.environ.get("TERM") != "dumb")
    fleet = Fleet(
        jobs,
        automation_runner(project_dir, command),
        log_dir=log_dir,
        display=display,
        concurrency=args.jobs,
        prepare=automation_install(project_dir, command),
        on_interrupt=command.interrupt,
    )
    names = ", ".join(stack.name for stack in stacks)
    at_once = min(args.jobs, len(stacks))
    display.note(f"fleet {args.op}: {len(stacks)} stack(s) ({names}), {at_once} at a time; logs in {log_dir}")
    with signals_to(fleet):
        fleet.run()
    out.write("\n" + "\n".join([*summary_table(fleet.records), "", *closing_lines(fleet, args.op)]) + "\n")
    out.flush()
    return fleet.exit_status()


if __name__ == "__main__":
    sys.exit(main())
