"""``scripts/fleet.py``, the fleet command, without the engine: which stacks it runs, the ``--parallel`` rule it shares
with ``scripts/up.sh``, K stacks at a time, the live lines, the summary table, the exit status, the log files and the
clean-up of ``TMPDIR``. Each stack's run is a function given to :class:`Fleet` (the seam the real runner, on the
Automation API, plugs into); the signals reach stand-in ``pulumi`` processes. The real CLI runs it in
``tests/e2e/test_fleet_command.py``.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from benchmarks.fleet.runs import up_sh_parallel
from scripts import fleet
from scripts.fleet import (
    FAILED,
    INTERRUPTED,
    NO_CHANGES,
    NOT_RUN,
    SUCCEEDED,
    Display,
    Fleet,
    FleetCommand,
    FleetInterruptedError,
    Job,
    Log,
    Outcome,
    Record,
    StackFile,
    UsageError,
)

ROOT = Path(__file__).resolve().parents[1]


def project(tmp_path: Path, clusters: Mapping[str, int], *, stack_dir: str | None = "stacks") -> Path:
    """A project folder with ``Pulumi.yaml`` and one stack file per entry (that many clusters each)."""
    folder = tmp_path / "project"
    folder.mkdir()
    settings: dict[str, object] = {"name": "gloo-mesh-registration", "runtime": "python"}
    if stack_dir is not None:
        settings["stackConfigDir"] = stack_dir
    (folder / "Pulumi.yaml").write_text(yaml.safe_dump(settings))
    stacks = folder / (stack_dir or ".")
    stacks.mkdir(exist_ok=True)
    for name, count in clusters.items():
        entries = [{"name": f"{name}-{i}", "context": f"ctx-{i}"} for i in range(count)]
        config = {"gloo-mesh-registration:management": {"context": "m"}, "gloo-mesh-registration:clusters": entries}
        (stacks / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return folder


def jobs(*stacks: tuple[str, int], op: str = "up") -> list[Job]:
    return [Job(op, StackFile(name, Path(f"Pulumi.{name}.yaml"), n), fleet.parallel_for(n)) for name, n in stacks]


class Clock:
    """Time that moves only when told (each stack's run moves it by its own duration)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def make_fleet(
    tmp_path: Path,
    job_list: list[Job],
    runner: Callable[[Job, Log], Outcome],
    *,
    concurrency: int = 2,
    clock: Callable[[], float] = time.monotonic,
    tty: bool = False,
    **options: object,
) -> tuple[Fleet, io.StringIO]:
    out = io.StringIO()
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    display = Display(out, tty=tty, clock=clock, columns=lambda: 100)
    made = Fleet(job_list, runner, log_dir=logs, display=display, concurrency=concurrency, clock=clock, **options)  # type: ignore[arg-type]
    return made, out


# --- Which stacks -----------------------------------------------------------------------------------------------------


def test_every_stack_file_of_stack_config_dir_by_default_with_its_clusters(tmp_path: Path) -> None:
    folder = project(tmp_path, {"us-east": 3, "eu-west": 2, "ap-south": 1})
    (folder / "stacks" / "README.md").write_text("not a stack file")
    stacks = fleet.select_stacks(folder, [])
    assert [(s.name, s.clusters) for s in stacks] == [("ap-south", 1), ("eu-west", 2), ("us-east", 3)]
    assert stacks[0].path == folder / "stacks" / "Pulumi.ap-south.yaml"


def test_the_stacks_named_in_their_order_each_once(tmp_path: Path) -> None:
    folder = project(tmp_path, {"us-east": 3, "eu-west": 2, "ap-south": 1})
    assert [s.name for s in fleet.select_stacks(folder, ["us-east", "ap-south", "us-east"])] == ["us-east", "ap-south"]


def test_without_stack_config_dir_the_stack_files_are_beside_pulumi_yaml(tmp_path: Path) -> None:
    folder = project(tmp_path, {"dev": 1}, stack_dir=None)
    assert [s.name for s in fleet.select_stacks(folder, [])] == ["dev"]


def test_an_unknown_stack_is_an_error_that_lists_the_stacks_there(tmp_path: Path) -> None:
    folder = project(tmp_path, {"us-east": 3, "eu-west": 2})
    with pytest.raises(UsageError) as raised:
        fleet.select_stacks(folder, ["eu-west", "eu-north", "mars"])
    assert str(raised.value) == (
        "there is no stacks/Pulumi.eu-north.yaml, stacks/Pulumi.mars.yaml; stacks there: eu-west us-east"
    )


def test_a_stack_file_that_is_not_yaml_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    folder = project(tmp_path, {"eu-west": 2})
    (folder / "stacks" / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    with pytest.raises(UsageError, match=r"^cannot read stacks/Pulumi\.broken\.yaml: "):
        fleet.select_stacks(folder, [])


def test_the_command_stops_at_an_unknown_stack_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = project(tmp_path, {"us-east": 3, "eu-west": 2})
    status = fleet.main(["preview", "eu-west", "nope", "--project-dir", str(folder)])
    assert status == 2
    assert capsys.readouterr().err == "error: there is no stacks/Pulumi.nope.yaml; stacks there: eu-west us-east\n"
    assert not (folder / fleet.LOG_ROOT).exists()


@pytest.mark.parametrize("op", ["up", "destroy"])
def test_up_and_destroy_want_yes(tmp_path: Path, op: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = project(tmp_path, {"eu-west": 2})
    assert fleet.main([op, "--project-dir", str(folder)]) == 2
    assert f"run `fleet.py preview` first, then `fleet.py {op} --yes`" in capsys.readouterr().err


# --- The --parallel rule, shared with scripts/up.sh -----------------------------------------------------------------


@pytest.mark.parametrize(("clusters", "parallel"), [(0, 16), (1, 16), (4, 16), (5, 20), (50, 200)])
def test_four_per_cluster_at_least_sixteen_as_the_benchmark_runs_it(clusters: int, parallel: int) -> None:
    assert fleet.parallel_for(clusters) == parallel == up_sh_parallel(clusters)


@pytest.mark.parametrize(
    ("args", "environ", "given"),
    [
        (["--yes"], {}, False),
        (["--parallel", "3"], {}, True),
        (["--parallel=3"], {}, True),
        (["-p", "3"], {}, True),
        (["-p3"], {}, True),
        (["-pfoo"], {}, False),
        ([], {"PULUMI_PARALLEL": "5"}, True),
        ([], {"PULUMI_PARALLEL": ""}, False),
    ],
)
def test_a_parallelism_the_user_chose_wins(args: list[str], environ: dict[str, str], given: bool) -> None:
    assert fleet.parallel_given(args, environ) is given


def test_each_stack_of_the_fleet_gets_the_rule_unless_given(tmp_path: Path) -> None:
    stack = StackFile("big", tmp_path / "Pulumi.big.yaml", 7)
    assert fleet.job_parallel(stack, None, {}) == 28
    assert fleet.job_parallel(stack, 5, {"PULUMI_PARALLEL": "9"}) == 5
    assert fleet.job_parallel(stack, None, {"PULUMI_PARALLEL": "9"}) is None  # left to the CLI


def test_the_parallel_helper_prints_the_flag_up_sh_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_PARALLEL", raising=False)
    stack_file = project(tmp_path, {"big": 6}) / "stacks" / "Pulumi.big.yaml"
    assert fleet.main(["parallel", str(stack_file), "--", "--yes", "--diff"]) == 0
    assert fleet.main(["parallel", str(stack_file), "--", "-p", "2"]) == 0
    assert capsys.readouterr().out == "--parallel 24\n\n"


# --- K at a time, and what each stack's run gives ------------------------------------------------------------------


def test_k_stacks_at_a_time_in_the_order_given(tmp_path: Path) -> None:
    lock = threading.Lock()
    running: list[str] = []
    started: list[str] = []
    most = 0

    def runner(job: Job, log: Log) -> Outcome:
        nonlocal most
        with lock:
            running.append(job.stack.name)
            started.append(job.stack.name)
            most = max(most, len(running))
        time.sleep(0.3)
        with lock:
            running.remove(job.stack.name)
        return Outcome(changes={"create": 1})

    names = [f"s{i}" for i in range(7)]
    made, _ = make_fleet(tmp_path, jobs(*((n, 1) for n in names)), runner, concurrency=3)
    made.run()
    assert most == 3
    assert sorted(started) == names
    assert all(started.index(f"s{i}") < started.index(f"s{i + 3}") for i in range(4))  # taken in the order given
    assert [r.state for r in made.records] == [SUCCEEDED] * 7
    assert made.exit_status() == 0


def test_a_failing_stack_fails_the_fleet_and_the_others_still_run(tmp_path: Path) -> None:
    def runner(job: Job, log: Log) -> Outcome:
        if job.stack.name == "b":
            return Outcome(changes={"create": 2, "same": 1}, error="error: boom")
        if job.stack.name == "c":
            raise RuntimeError("code: 255\n stdout: \n stderr: error: the CLI said no\nmore")
        return Outcome(changes={"same": 4})

    made, _ = make_fleet(tmp_path, jobs(("a", 1), ("b", 1), ("c", 1), ("d", 1)), runner, concurrency=1)
    made.run()
    assert [(r.name, r.state, r.error) for r in made.records] == [
        ("a", NO_CHANGES, None),
        ("b", FAILED, "error: boom"),
        ("c", FAILED, "error: the CLI said no"),
        ("d", NO_CHANGES, None),
    ]
    assert made.records[1].changes == {"create": 2, "same": 1}  # what the engine did before it failed
    assert made.exit_status() == 1


def test_install_runs_once_first_and_its_failure_runs_no_stack(tmp_path: Path) -> None:
    calls: list[str] = []

    def runner(job: Job, log: Log) -> Outcome:
        calls.append(job.stack.name)
        return Outcome(changes={})

    def install(log: Log) -> None:
        calls.append("install")
        log("Installing dependencies...")

    made, out = make_fleet(tmp_path, jobs(("a", 1), ("b", 1)), runner, prepare=install)
    made.run()
    assert calls[0] == "install" and sorted(calls[1:]) == ["a", "b"]
    assert (tmp_path / "logs" / "_install.log").read_text() == "Installing dependencies...\n"
    assert out.getvalue().splitlines()[:2] == [
        f"pulumi install (log: {tmp_path / 'logs' / '_install.log'})",
        "pulumi install: done in " + out.getvalue().split("done in ")[1].split("\n")[0],
    ]

    def broken(log: Log) -> None:
        raise auto.CommandError(auto.CommandResult(stdout="", stderr="error: pip failed\ndetails", code=1))

    calls.clear()
    failed, out = make_fleet(tmp_path, jobs(("a", 1), ("b", 1)), runner, prepare=broken)
    failed.run()
    assert calls == []
    assert [r.state for r in failed.records] == [NOT_RUN, NOT_RUN]
    assert failed.prepare_error == "error: pip failed"
    assert "pulumi install: failed: error: pip failed" in out.getvalue()
    assert failed.exit_status() == 1
    assert fleet.closing_lines(failed, "up")[0] == (
        f"pulumi install failed: error: pip failed (log: {tmp_path / 'logs' / '_install.log'}); no stack ran"
    )


# --- Ctrl-C ----------------------------------------------------------------------------------------------------------


def test_ctrl_c_cancels_the_running_stacks_and_starts_no_other(tmp_path: Path) -> None:
    """What the signal handler does is add one to ``interrupts``; the fleet passes each to ``on_interrupt`` (the real
    one signals the running pulumi processes), starts nothing more, and reports the cancelled runs as interrupted."""
    both_running = threading.Barrier(2)
    told: list[int] = []
    cancelled = threading.Event()
    made: Fleet

    def on_interrupt(count: int) -> None:
        told.append(count)
        if count == 2:
            cancelled.set()

    def runner(job: Job, log: Log) -> Outcome:
        both_running.wait(timeout=5)
        if job.stack.name == "a":
            made.interrupts += 1  # Ctrl-C
            while not told:
                time.sleep(0.01)
            made.interrupts += 1  # and again
        assert cancelled.wait(timeout=5)
        return Outcome(error="error: update canceled")

    made, out = make_fleet(tmp_path, jobs(("a", 1), ("b", 2), ("c", 1)), runner, on_interrupt=on_interrupt)
    made.run()
    assert told == [1, 2]
    assert [r.state for r in made.records] == [INTERRUPTED, INTERRUPTED, NOT_RUN]
    assert made.exit_status() == 130
    text = out.getvalue()
    assert (
        "interrupted: stopping 2 running stack(s) (a, b), 1 waiting will not start; Ctrl-C again to end them at once"
        in text
    )
    assert "interrupted again: ending a, b at once" in text
    assert "c: not run" in text
    assert fleet.closing_lines(made, "up")[0] == "fleet up: interrupted; not completed: a, b, c"


def test_a_stack_that_completed_as_ctrl_c_came_keeps_its_result(tmp_path: Path) -> None:
    made: Fleet

    def runner(job: Job, log: Log) -> Outcome:
        made.interrupts += 1
        time.sleep(3 * Fleet.POLL_SECONDS)  # the fleet has seen it
        return Outcome(changes={"create": 3})

    made, _ = make_fleet(tmp_path, jobs(("a", 1), ("b", 1)), runner, concurrency=1)
    made.run()
    assert [r.state for r in made.records] == [SUCCEEDED, NOT_RUN]
    assert made.exit_status() == 130


# --- What the operator sees --------------------------------------------------------------------------------------------


def scripted(clock: Clock, first: str = "a", second: str = "b", third: str = "c") -> Callable[[Job, Log], Outcome]:
    """The first stack takes 12 s and creates 5; the second fails after 3 s; the third takes 1.5 s, no change."""

    def runner(job: Job, log: Log) -> Outcome:
        name = job.stack.name
        log(f"Updating ({name}):")
        clock.advance({first: 12.0, second: 3.0, third: 1.5}[name])
        if name == second:
            log("error: update failed")
            return Outcome(changes={"same": 1}, error="error: the cluster b-0 cannot be reached")
        return Outcome(changes={"create": 5, "same": 1} if name == first else {"same": 3})

    return runner


def test_live_lines_outside_a_terminal_one_per_change_of_state(tmp_path: Path) -> None:
    clock = Clock()
    made, out = make_fleet(tmp_path, jobs(("a", 2), ("b", 1), ("c", 1)), scripted(clock), concurrency=1, clock=clock)
    made.run()
    assert out.getvalue().splitlines() == [
        "a: running (2 clusters, --parallel 16)",
        "a: done in 12.0s (create 5, same 1)",
        "b: running (1 cluster, --parallel 16)",
        "b: failed in 3.0s: error: the cluster b-0 cannot be reached",
        "c: running (1 cluster, --parallel 16)",
        "c: done in 1.5s (no changes: same 3)",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_on_a_terminal_the_block_is_redrawn_in_place(tmp_path: Path) -> None:
    clock = Clock()
    made, out = make_fleet(
        tmp_path, jobs(("a", 2), ("bb", 1)), scripted(clock, second="bb"), concurrency=1, clock=clock, tty=True
    )
    made.run()
    text = out.getvalue()
    assert "\x1b[2F" in text  # back up the block's two lines to redraw them
    last_block = text.rsplit("\x1b[2F", 1)[1]
    assert last_block.split("\n") == [
        "\x1b[2Ka   done          12.0s  create 5, same 1",
        "\x1b[2Kbb  failed         3.0s  error: the cluster b-0 cannot be reached",
        "",
    ]


def test_the_summary_table_and_what_follows_it(tmp_path: Path) -> None:
    clock = Clock()
    made, _ = make_fleet(
        tmp_path, jobs(("eu-west", 2), ("b", 1), ("c", 12)), scripted(clock, "eu-west"), concurrency=1, clock=clock
    )
    made.run()
    assert fleet.summary_table(made.records) == [
        "stack    clusters  result      duration  changes",
        "eu-west         2  succeeded      12.0s  create 5, same 1",
        "b               1  failed          3.0s  same 1",
        "c              12  no changes      1.5s  same 3",
    ]
    assert fleet.closing_lines(made, "up") == [
        f"b failed: error: the cluster b-0 cannot be reached (log: {tmp_path / 'logs' / 'b.log'})",
        "fleet up: 1 of 3 stacks failed: b",
        f"logs: {tmp_path / 'logs'}",
    ]


def test_the_engines_warnings_show_in_the_live_line_and_under_the_table(tmp_path: Path) -> None:
    """A preview passes with a warning (the program's: a cluster it cannot reach); it must not pass unseen."""
    unreachable = "cluster eu-0 (context 'gone') is not reachable (context was not found); objects are not checked"

    def runner(job: Job, log: Log) -> Outcome:
        warnings = (unreachable, "second warning") if job.stack.name == "eu" else ()
        return Outcome(changes={"create": 9}, warnings=warnings)

    made, out = make_fleet(tmp_path, jobs(("eu", 1), ("us", 1), op="preview"), runner, concurrency=1)
    made.run()
    assert f"eu: done in 0.0s (create 9); 2 warnings: {unreachable}" in re.sub(r"in [\d.]+s", "in 0.0s", out.getvalue())
    assert made.exit_status() == 0
    assert fleet.closing_lines(made, "preview") == [
        f"eu warning: {unreachable}",
        "eu warning: second warning",
        "fleet preview: all 2 stacks succeeded",
        f"logs: {tmp_path / 'logs'}",
    ]


def test_one_stack_is_one_stack(tmp_path: Path) -> None:
    made, _ = make_fleet(tmp_path, jobs(("eu", 1)), lambda job, log: Outcome(changes={"same": 1}))
    made.run()
    assert fleet.closing_lines(made, "preview")[0] == "fleet preview: the stack succeeded"


def test_a_summary_of_stacks_that_never_ran() -> None:
    record = Record(jobs(("a", 3))[0], Path("a.log"), state=NOT_RUN)
    assert fleet.summary_table([record])[1] == "a             3  not run         -  -"


def test_every_stack_has_its_whole_output_in_a_log_file(tmp_path: Path) -> None:
    clock = Clock()
    made, _ = make_fleet(tmp_path, jobs(("a", 2), ("b", 1), ("c", 1)), scripted(clock), concurrency=1, clock=clock)
    made.run()
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["a.log", "b.log", "c.log"]
    lines = (logs / "b.log").read_text().splitlines()
    assert lines[0].startswith("# fleet up: stack b (1 cluster, --parallel 16), ")
    assert lines[1:] == [
        "Updating (b):",
        "error: update failed",
        "# failed in 3.0s: error: the cluster b-0 cannot be reached",
    ]
    assert (logs / "a.log").read_text().splitlines()[-1] == "# succeeded in 12.0s (create 5, same 1)"


def test_the_default_log_folder_is_new_for_each_run(tmp_path: Path) -> None:
    first = fleet.new_log_dir(tmp_path, "up", None)
    second = fleet.new_log_dir(tmp_path, "up", None)
    assert first != second and first.parent == second.parent == tmp_path / ".fleet-logs"
    assert second.name.startswith(first.name)
    given = tmp_path / "mine"
    assert fleet.new_log_dir(tmp_path, "up", given) == given and given.is_dir()


# --- Changes and error lines -----------------------------------------------------------------------------------------


def test_changes_in_the_order_a_reader_looks_for_them() -> None:
    changes = {"same": 3, "delete": 1, "create": 2, "update": 0, "discard": 1, "remove-pending-replace": 1}
    assert fleet.format_changes(changes) == "create 2, delete 1, discard 1, same 3, remove-pending-replace 1"
    assert fleet.format_changes(None) == fleet.format_changes({}) == "-"
    assert fleet.has_changes({"same": 3, "read": 2}) is False
    assert fleet.has_changes({"same": 3, "delete": 1}) is True


def test_the_automation_apis_counts_have_plain_names() -> None:
    assert fleet.op_counts({auto.OpType.CREATE: 2, auto.OpType.SAME: 1}) == {"create": 2, "same": 1}
    assert fleet.op_counts(None) is None


def test_the_first_error_line() -> None:
    assert fleet.first_error_line("Updating (a):\n\n    error: <{%reset%}>the real cause<{%reset%}>\nerror: x") == (
        "error: the real cause"
    )
    assert fleet.first_error_line("\n  something odd happened\nmore") == "something odd happened"
    assert fleet.first_line("\n\n  <{%fg 1%}>kubernetes:core/v1:Namespace failed\nstack trace") == (
        "kubernetes:core/v1:Namespace failed"
    )


def test_an_engine_diagnostic_in_one_line() -> None:
    """The kubernetes provider's error for a context that is not in the kubeconfig (seen in the real-engine test): its
    first line introduces the advice and the cause, which is its last."""
    message = (
        "configured Kubernetes cluster is unreachable: unable to load Kubernetes client configuration from kubeconfig "
        "file. Make sure you have:\n\n \t \u2022 set up the provider as per https://www.pulumi.com/registry/packages/"
        'kubernetes/installation-configuration/\n\n context "no-such-context" does not exist\n'
    )
    assert fleet.diagnostic_line(message) == (
        "configured Kubernetes cluster is unreachable: unable to load Kubernetes client configuration from kubeconfig "
        'file. Make sure you have: ... context "no-such-context" does not exist'
    )
    assert fleet.diagnostic_line("<{%reset%}>the agent never connected\nwaited 60s<{%reset%}>\n") == (
        "the agent never connected"
    )
    assert fleet.diagnostic_line("\n\n") == ""


def test_the_first_error_line_of_a_failed_pulumi_run() -> None:
    """The CLI's own error, from stderr, not a resource line of stdout nor the ``code:`` line."""
    error = auto.CommandError(
        auto.CommandResult(
            stdout="Updating (a):\n  pulumi:pulumi:Stack a running\n    error: update failed",
            stderr="error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE",
            code=255,
        )
    )
    assert fleet.command_error_line(error) == (
        "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
    )
    quiet = auto.CommandError(auto.CommandResult(stdout="    error: update failed", stderr="", code=255))
    assert fleet.command_error_line(quiet) == "error: update failed"


# --- TMPDIR ----------------------------------------------------------------------------------------------------------


def test_the_runs_tmpdir_is_private_and_its_kubeconfig_copies_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    folder = fleet.run_tmpdir("eu-west")
    assert folder.parent == tmp_path and folder.name.startswith("gloo-registration-eu-west.")
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("kubeconfig123", "kubeconfig-456"):
        (folder / name).write_text("client-key-data: secret")
    fleet.remove_provider_copies(folder)
    assert not folder.exists()


def test_a_token_guards_folder_keeps_the_runs_until_the_guard_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    folder = fleet.run_tmpdir("eu-west")
    (folder / "kubeconfig123").write_text("client-key-data: secret")
    guard = folder / "tmp.guard"
    guard.mkdir()
    fleet.remove_provider_copies(folder)
    assert [p.name for p in folder.iterdir()] == ["tmp.guard"]  # the copy is gone at once
    guard.rmdir()  # the guard is done
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists()


# --- The pulumi processes and Ctrl-C -----------------------------------------------------------------------------------

STAND_IN = f"""#!{sys.executable}
# A stand-in pulumi: its version, or a run that records each SIGINT it (its process group) gets until it has had
# $SIGINTS (default 1). Python, not sh: a shell cannot trap a signal that was ignored when it started, as SIGINT is
# for a background job of a non-interactive shell (a suite run with `nohup ... &`); Python installs its handler
# anyway, as the Go CLI does (os/signal.Notify).
import os, signal, sys, time
if sys.argv[1:2] == ["version"]:
    print("v3.274.1")
    sys.exit(0)
got = 0
def count(signum, frame):
    global got
    got += 1
    print(f"SIGINT {{got}}", flush=True)
signal.signal(signal.SIGINT, count)
print("started", flush=True)
while got < int(os.environ.get("SIGINTS", "1")):
    time.sleep(0.05)
print("error: update canceled", file=sys.stderr, flush=True)
sys.exit(255)
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FleetCommand:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pulumi").write_text(STAND_IN)
    (tools / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    return FleetCommand()


def run_in_background(
    command: FleetCommand, *args: str, sigints: int = 1
) -> tuple[threading.Thread, list[str], list[BaseException]]:
    lines: list[str] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            command.run(list(args), ".", {"SIGINTS": str(sigints)}, lines.append, lines.append)
        except BaseException as problem:
            raised.append(problem)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while "started" not in lines and time.monotonic() < deadline:
        time.sleep(0.02)
    return thread, lines, raised


def test_each_ctrl_c_reaches_each_running_pulumi_once(stand_in: FleetCommand) -> None:
    first, first_lines, first_raised = run_in_background(stand_in, "up", sigints=2)
    second, second_lines, second_raised = run_in_background(stand_in, "up", sigints=2)
    stand_in.interrupt(1)
    stand_in.interrupt(1)  # the same Ctrl-C seen again: nothing more
    time.sleep(0.3)
    assert first.is_alive() and second.is_alive()
    stand_in.interrupt(2)
    for thread in (first, second):
        thread.join(timeout=10)
    for lines, raised in ((first_lines, first_raised), (second_lines, second_raised)):
        assert sorted(lines) == ["SIGINT 1", "SIGINT 2", "error: update canceled", "started"]  # stdout, stderr
        assert isinstance(raised[0], auto.CommandError) and "error: update canceled" in str(raised[0])


def test_after_ctrl_c_no_pulumi_run_starts_but_the_reads_after_a_completed_update(stand_in: FleetCommand) -> None:
    stand_in.interrupt(1)
    with pytest.raises(FleetInterruptedError, match=r"interrupted before `pulumi up a` started"):
        stand_in.run(["up", "--yes", "--stack", "a"], ".", {})
    thread, lines, _ = run_in_background(stand_in, "stack", "output")
    stand_in.interrupt(2)
    thread.join(timeout=10)
    assert sorted(lines) == ["SIGINT 1", "error: update canceled", "started"]  # only the Ctrl-C after it started


def test_the_pulumi_runs_are_in_groups_of_their_own_with_no_terminal_input(tmp_path: Path) -> None:
    """So a terminal's Ctrl-C reaches the fleet alone, which passes it on once per Ctrl-C."""
    tools = tmp_path / "tools"
    tools.mkdir()
    probe = (
        'import os, sys; print(os.getpgrp() == os.getpid(), os.getpgrp() != int(sys.argv[-1]), sys.stdin.read() == "")'
    )
    (tools / "pulumi").write_text(
        f'#!/bin/sh\nif [ "$1" = version ]; then echo v3.274.1; exit 0; fi\nexec "{sys.executable}" -c \'{probe}\' "$@"\n'
    )
    (tools / "pulumi").chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    code = (
        "import os; from scripts.fleet import FleetCommand; "
        "print(FleetCommand().run(['whoami', str(os.getpgrp())], '.', {}).stdout)"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert ran.stdout.split() == ["True", "True", "True"]


def test_the_signal_handler_only_counts(tmp_path: Path) -> None:
    made, _ = make_fleet(tmp_path, [], lambda job, log: Outcome())
    with fleet.signals_to(made):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
    assert made.interrupts == 2
