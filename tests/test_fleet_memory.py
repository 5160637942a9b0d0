"""The fleet benchmark's memory figures: PSS read from ``/proc/<pid>/smaps_rollup``, kept in a run's record and read
back, printed from a saved run (and "not measured" for a run saved before PSS was sampled). No server is started."""

from __future__ import annotations

import json
import os

from benchtables import fleet_reprint, table

from benchmarks.fleet.proc import PROVIDER_KIND, Memory, MemoryPeak, smaps_rollup
from benchmarks.fleet.runs import Run


def test_smaps_rollup_reads_this_process() -> None:
    memory = smaps_rollup(os.getpid())
    assert memory is not None
    assert 0 < memory.pss <= memory.rss
    assert memory.anonymous > 0 and memory.pss_anon > 0 and memory.pss_file > 0
    assert smaps_rollup(2**22 + 1) is None  # above pid_max's default: no such process


def test_a_run_keeps_its_memory_peak_and_an_old_record_has_none() -> None:
    run = Run("up", 20, 0, 12.5)
    run.memory = MemoryPeak(
        pss_mib=1500.0,
        rss_mib=3600.0,
        by_kind={PROVIDER_KIND: Memory(rss=2500.0, pss=1100.0, pss_anon=1000.0, pss_file=100.0, anonymous=1000.0)},
        processes={PROVIDER_KIND: 21},
        provider_max=Memory(anonymous=55.0),
        samples=30,
        sampling_cpu_s=1.5,
        smaps_cpu_s=1.2,
    )
    again = Run.from_record(json.loads(json.dumps(run.record())))
    assert again.memory == run.memory
    old = run.record()
    del old["memory"]
    assert Run.from_record(old).memory is None


def test_a_saved_run_with_pss_prints_its_memory_tables() -> None:
    out = fleet_reprint("benchmarks/results/fleet-memory-n1-20-50.json")
    peaks = {(row["N"], row["run"]): row for row in table(out, "Peak memory of the pulumi process tree")}
    assert {n for n, _ in peaks} == {"1", "20", "50"}
    up = peaks[("50", "up")]
    assert float(up["peak PSS MiB"]) < float(up["peak RSS MiB"])  # the providers' binary counted once
    assert up["providers at peak"] == "51"
    kinds = {row["process"]: row for row in table(out, "Memory at the peak by kind of process, pulumi up")}
    assert float(kinds[PROVIDER_KIND]["N=50: processes"]) == 51
    assert "peak PSS of the pulumi process tree, MiB" in out and "not measured" not in out


def test_a_run_saved_before_pss_says_not_measured() -> None:
    out = fleet_reprint("benchmarks/results/fleet.json")
    rows = {row["process"]: row for row in table(out, "CPU seconds by process")}
    assert rows["peak PSS of the pulumi process tree, MiB"]["CPU s"] == "not measured"
    assert "Memory at the peak by kind of process, the same runs: not measured" in out
