"""What ``/proc`` says of processes (proc(5)): CPU seconds by kind of process while a command runs, and the token
guards a ``pulumi up`` leaves running, which the next measurement waits for."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The three fields of ``/proc/<pid>/stat`` the sampler needs: the tree, the CPU, the memory."""

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
    """The kind of process a command line is, as the CPU table names it (which side of the run spends the CPU)."""
    words = cmdline.split("\0")
    executable = Path(words[0]).name if words else ""
    text = " ".join(words)
    if "pulumi-resource-kubernetes" in executable:
        return "kubernetes providers (Helm included)"
    if "command_provider" in text:  # both shims import lab.command_provider (python -m, python -c)
        return "command provider stand-in"
    if "pulumi-language-python-exec" in text:
        return "the program (Python)"
    if "language_host" in text or executable == "pulumi-language-python":  # python -m lab.language_host
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
        """Sample once now (the servers' CPU so far is subtracted), then every ``interval`` s in a thread."""
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """Sample a last time and return CPU seconds by kind: the tree's since its start, the servers' since ours."""
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
        """One look at every process: the CPU of the tree's and the servers', the tree's total memory."""
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
        """Whether ``pid`` is in the command's tree (64 generations at most: a cycle of reused pids ends)."""
        seen = 0
        while pid > 1 and seen < 64:
            if pid == self.root_pid:
                return True
            pid = parents.get(pid, 0)
            seen += 1
        return False


def cpu_of(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) the processes used so far."""
    total = 0.0
    for pid in pids:
        stat = proc_stat(pid)
        if stat is not None:
            total += stat.cpu
    return total


def token_guards(pulumi_home: Path) -> list[int]:
    """The token guards started by this benchmark's runs (their environment names its ``PULUMI_HOME``)."""
    marker = f"PULUMI_HOME={pulumi_home}".encode()
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


def wait_for_guards(pulumi_home: Path, timeout: float = 120) -> tuple[int, float]:
    """After ``pulumi up``, each token Command's guard outlives the command provider: once it is gone, the guard
    asks its cluster whether the agent holds its certificate (one kubectl run) and exits. Waits for them, so that the
    next measurement starts on a quiet machine; returns how many there were and how long they took."""
    started = time.monotonic()
    running = token_guards(pulumi_home)
    count = len(running)
    while running and time.monotonic() - started < timeout:
        time.sleep(0.2)
        running = token_guards(pulumi_home)
    return count, (time.monotonic() - started) if count else 0.0


def tree_cpu(before: os.times_result, after: os.times_result) -> float:
    """CPU seconds of this process's children that have exited between the two ``os.times()``: a command's tree."""
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)
