"""The fleet benchmark's ``--variants`` (``benchmarks/fleet/runs.py``), without servers: ``backend=s3`` and its
``rtt=`` form parse to the variant the runs use (its label, its sizes, the proxy's round-trip time), anything else is
refused naming the forms; a proxied run's counts survive ``--json``; and the table of the proxied runs takes the extra
time against the direct S3 runs of the same repeat."""

from __future__ import annotations

import pytest

from benchmarks.fleet.report import print_s3_round_trips, rtt_slopes
from benchmarks.fleet.runs import PULUMI_OPS, S3_LABEL, Run, parse_variant


def test_backend_s3_is_the_state_on_loopback() -> None:
    variant = parse_variant("backend=s3@20", [1, 5])
    assert (variant.label, variant.sizes, variant.s3_state, variant.s3_rtt_ms) == (S3_LABEL, (20,), True, None)
    assert variant.ops == PULUMI_OPS and variant.env == () and variant.args == ()


@pytest.mark.parametrize(
    ("text", "rtt", "label"),
    [
        ("backend=s3:rtt=30@20", 30.0, "state on S3, RTT 30 ms"),
        ("backend=s3:rtt=12.5@20", 12.5, "state on S3, RTT 12.5 ms"),
        ("backend=s3:rtt=0@20", 0.0, "state on S3, RTT 0 ms"),
    ],
)
def test_backend_s3_with_a_round_trip_time(text: str, rtt: float, label: str) -> None:
    variant = parse_variant(text, [1])
    assert (variant.label, variant.sizes, variant.s3_state, variant.s3_rtt_ms) == (label, (20,), True, rtt)
    assert parse_variant(text.partition("@")[0], [1, 5]).sizes == (1, 5)


@pytest.mark.parametrize(
    "text", ["backend=s3:rtt=-1", "backend=s3:rtt=x", "backend=s3:rtt=nan", "backend=s3:latency=30", "backend=gcs"]
)
def test_other_backends_and_round_trips_are_refused(text: str) -> None:
    with pytest.raises(SystemExit, match=r"unknown variant .*backend=s3:rtt=MS"):
        parse_variant(text, [20])


def test_a_proxied_run_keeps_its_counts_in_the_saved_record() -> None:
    run = Run("up", 20, 0, 30.0, "state on S3, RTT 10 ms", s3_rtt_ms=10.0, s3_round_trips=2000, s3_connections=3)
    run.s3_bytes_sent = 3 * 2**20
    assert Run.from_record(run.record()) == run
    old = {k: v for k, v in run.record().items() if not k.startswith("s3_")}  # saved before the proxy existed
    assert (Run.from_record(old).s3_rtt_ms, Run.from_record(old).s3_round_trips) == (None, 0)


def test_the_proxied_table_takes_the_extra_time_within_each_repeat(capsys: pytest.CaptureFixture[str]) -> None:
    label = "state on S3, RTT 10 ms"
    runs = [
        Run("up", 20, 0, 20.0, S3_LABEL),
        Run("up", 20, 0, 40.0, label, s3_rtt_ms=10.0, s3_round_trips=2000, s3_connections=2, s3_bytes_sent=2**20),
        Run("up", 20, 1, 30.0, S3_LABEL),  # a slower repeat: its own direct run is the baseline
        Run("up", 20, 1, 46.0, label, s3_rtt_ms=10.0, s3_round_trips=2000, s3_connections=2, s3_bytes_sent=2**20),
    ]
    print_s3_round_trips(runs, 2)
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {label}")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:7] == [label, "20", "up", "10", "2000 ±0", "2 ±0", "1.0 ±0.0"]
    assert cells[7:] == ["25.0 ±5.0", "43.0 ±3.0", "18.0 ±2.0", "9.0 ±1.0"]


def test_no_proxied_run_no_table(capsys: pytest.CaptureFixture[str]) -> None:
    print_s3_round_trips([Run("up", 20, 0, 20.0, S3_LABEL)], 1)
    assert capsys.readouterr().out == ""


def test_the_slope_between_two_round_trip_times_is_taken_within_each_repeat() -> None:
    def proxied(repeat: int, rtt: float, seconds: float) -> Run:
        return Run("up", 20, repeat, seconds, f"state on S3, RTT {rtt:g} ms", s3_rtt_ms=rtt, s3_round_trips=1000)

    runs = [proxied(0, 10, 20.0), proxied(0, 40, 50.0), proxied(1, 10, 22.0), proxied(1, 40, 46.0)]
    assert rtt_slopes(runs) == [
        "",
        "Slopes, within each repeat:",
        "- N=20 up, RTT 10 to 40 ms: 0.90 ±0.10 s per ms of RTT, 0.90 ±0.10 ms per round trip per ms of RTT",
    ]
    assert rtt_slopes([proxied(0, 10, 20.0)]) == [], "one RTT: no slope"
