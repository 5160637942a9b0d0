"""What ``/proc`` says of processes (proc(5)): CPU seconds and memory by kind of process while a command runs, and the
token guards a ``pulumi up`` leaves running, which the next measurement waits for."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the sampler needs: the tree, the CPU, the memory, the name."""

    parent: int
    cpu: float
    """CPU seconds (user + system) so far."""
    rss_mib: float
    name: str = ""
    """The command name (``comm``, at most 15 characters)."""


def proc_stat(pid: int) -> ProcStat | None:
    """What ``/proc/<pid>/stat`` says of a process (proc(5)), or None once it is gone."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces and parentheses
    return ProcStat(
        int(fields[1]),
        (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        int(fields[21]) * PAGE_BYTES / 2**20,
        stat[stat.index("(") + 1 : stat.rindex(")")],
    )


@dataclass(frozen=True)
class Memory:
    """What ``/proc/<pid>/smaps_rollup`` says of a process's memory (proc(5)), MiB. PSS (proportional set size) counts
    each page divided by the number of processes that map it, so the code pages of 21 identical provider binaries
    count once in the sum of their PSS, where their RSS counts them 21 times."""

    rss: float = 0.0
    pss: float = 0.0
    pss_anon: float = 0.0
    """Anonymous pages (heap, stacks, the Go runtime's arenas), divided among the processes sharing them (fork)."""
    pss_file: float = 0.0
    """File-backed pages (the executable's code and data, shared libraries, mapped files), divided among sharers."""
    pss_shmem: float = 0.0
    anonymous: float = 0.0
    """Anonymous pages resident, not divided (``Anonymous``): a process's own heap and stacks."""

    def __add__(self, other: Memory) -> Memory:
        return Memory(
            self.rss + other.rss,
            self.pss + other.pss,
            self.pss_anon + other.pss_anon,
            self.pss_file + other.pss_file,
            self.pss_shmem + other.pss_shmem,
            self.anonymous + other.anonymous,
        )


_ROLLUP_FIELDS = {
    "Rss:": "rss",
    "Pss:": "pss",
    "Pss_Anon:": "pss_anon",
    "Pss_File:": "pss_file",
    "Pss_Shmem:": "pss_shmem",
    "Anonymous:": "anonymous",
}


def smaps_rollup(pid: int) -> Memory | None:
    """A process's memory from ``/proc/<pid>/smaps_rollup`` (Linux 4.14; the ``Pss_Anon``/``Pss_File`` split 5.9),
    or None once it is gone. Costs more than ``stat``: the kernel walks the process's page tables to answer."""
    try:
        text = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) >= 2 and words[0] in _ROLLUP_FIELDS:
            values[_ROLLUP_FIELDS[words[0]]] = int(words[1]) / 1024  # kB
    return Memory(**values) if "pss" in values else None


PROVIDER_KIND = "kubernetes providers (Helm included)"


@dataclass
class MemoryPeak:
    """The sample in which the command's process tree held the most memory by PSS, by kind of process, and what
    sampling cost. Where a field is 0 nothing was measured (a run saved before PSS sampling has no record at all)."""

    pss_mib: float = 0.0
    """The tree's total PSS in that sample."""
    rss_mib: float = 0.0
    """The tree's total RSS in the same sample (``peak_rss_mib`` of the run is the largest RSS of any sample)."""
    by_kind: dict[str, Memory] = field(default_factory=dict)
    """Each kind's processes' memory in that sample, added up."""
    processes: dict[str, int] = field(default_factory=dict)
    """How many processes of each kind that sample saw."""
    provider_max: Memory = field(default_factory=Memory)
    """The one kubernetes provider with the most anonymous memory (its own heap) in any sample (not necessarily the
    peak's); by anonymous memory, not PSS, whose file part depends on how many providers ran at that moment."""
    outside_providers: int = 0
    """Most provider processes seen outside the tree in one sample (other work on the machine running the same
    binary takes a share of its code pages' PSS)."""
    samples: int = 0
    sampling_cpu_s: float = 0.0
    """CPU seconds the benchmark's own process spent sampling (``/proc`` walks, ``stat`` and ``smaps_rollup`` reads)."""
    smaps_cpu_s: float = 0.0
    """Of :attr:`sampling_cpu_s`, the ``smaps_rollup`` reads (the kernel walks each process's page tables)."""

    def record(self) -> dict[str, Any]:
        """As JSON (:meth:`from_record` reads it back)."""
        return {
            "pss_mib": self.pss_mib,
            "rss_mib": self.rss_mib,
            "by_kind": {kind: memory.__dict__ for kind, memory in self.by_kind.items()},
            "processes": self.processes,
            "provider_max": self.provider_max.__dict__,
            "outside_providers": self.outside_providers,
            "samples": self.samples,
            "sampling_cpu_s": self.sampling_cpu_s,
            "smaps_cpu_s": self.smaps_cpu_s,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MemoryPeak:
        fields = {k: v for k, v in record.items() if k not in ("by_kind", "provider_max")}
        return cls(
            **fields,
            by_kind={kind: Memory(**memory) for kind, memory in record.get("by_kind", {}).items()},
            provider_max=Memory(**record.get("provider_max", {})),
        )


def _classify(cmdline: str) -> str:
    """The kind of process a command line is, as the CPU table names it (which side of the run spends the CPU)."""
    words = cmdline.split("\0")
    executable = Path(words[0]).name if words else ""
    text = " ".join(words)
    if "pulumi-resource-kubernetes" in executable:
        return PROVIDER_KIND
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
    of it is shown as "short-lived (kubectl, sh, python helpers)".

    Memory, in the same samples: the tree's total RSS (``stat``; its peak is :attr:`peak_rss_mib`) and, from each
    tree process's ``smaps_rollup``, its PSS by kind (:attr:`memory`, the sample with the largest total PSS). A
    process that lives less than ``interval`` s is mostly missed, as for the CPU: the peak is a lower bound by what
    short-lived kubectl and sh hold (a few MiB each). What the sampling costs is kept (:attr:`MemoryPeak.samples`,
    :attr:`MemoryPeak.sampling_cpu_s`): the benchmark's own CPU, outside the tree, on the same cores."""

    def __init__(self, root_pid: int, server_pids: Iterable[int], interval: float = 0.5) -> None:
        self.root_pid = root_pid
        self.server_pids = set(server_pids)
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self.peak_rss_mib = 0.0
        """The largest total resident memory of the command's process tree seen in one sample."""
        self.memory = MemoryPeak()
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
        cpu_before = time.thread_time()
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        rss: dict[int, float] = {}
        names: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
            if stat is None:
                continue
            pid = int(entry.name)
            parents[pid], times[pid], rss[pid], names[pid] = stat.parent, stat.cpu, stat.rss_mib, stat.name
        tree_rss = 0.0
        tree: list[int] = []
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
                tree.append(pid)
        self.peak_rss_mib = max(self.peak_rss_mib, tree_rss)
        outside = sum(1 for pid, name in names.items() if name.startswith("pulumi-resourc") and pid not in tree)
        self._sample_memory(tree, outside)
        self.memory.samples += 1
        self.memory.sampling_cpu_s += time.thread_time() - cpu_before

    def _sample_memory(self, tree: Sequence[int], outside_providers: int) -> None:
        """The tree's PSS by kind in this sample; kept if it is the largest total so far."""
        by_kind: dict[str, Memory] = defaultdict(Memory)
        processes: dict[str, int] = defaultdict(int)
        peak = self.memory
        cpu_before = time.thread_time()
        rollups = {pid: smaps_rollup(pid) for pid in tree}
        peak.smaps_cpu_s += time.thread_time() - cpu_before
        for pid, memory in rollups.items():
            if memory is None:
                continue
            kind = self._kind[pid]
            by_kind[kind] += memory
            processes[kind] += 1
            if kind == PROVIDER_KIND and memory.anonymous > peak.provider_max.anonymous:
                peak.provider_max = memory
        peak.outside_providers = max(peak.outside_providers, outside_providers)
        total = sum(m.pss for m in by_kind.values())
        if total > peak.pss_mib:
            peak.pss_mib, peak.rss_mib = total, sum(m.rss for m in by_kind.values())
            peak.by_kind, peak.processes = dict(by_kind), dict(processes)

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
