"""The fleet command, ``scripts/fleet.py``, as an operator runs it, with the real CLI on the Automation API: two stacks
of a copy of this project, each registering a cluster on an API server of its own, run together.

The checkout is a user's (the program, the component package, ``scripts/fleet.py``, two stack files), with Pulumi
laid out as installed (the providers in the plugin cache from the local builds, as in ``test_main_job.py``) and a
``.venv`` that its own ``pulumi install`` made, whose Python runs the command. The command then runs ``pulumi install``
once itself, and per stack ``stack select --create`` and the operation: ``up`` previews and registers both (the
summary's changes are the CLI's own counts, each stack's output is in its log, and no kubeconfig copy is left in
``TMPDIR``), a ``preview`` shows no change, a Ctrl-C cancels a running preview, a stack whose cluster context does
not exist passes a preview with the program's warning shown and fails ``up`` (named, with its first error line) while
the other succeeds, and ``destroy`` deregisters both.

The state of the runs is on a real S3 server (:func:`state_backend_env`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.cluster import ControlPlanes
from lab.gloo import ManagementPlane
from lab.object_store import ObjectStore
from lab.pulumi_cli import ROOT, PulumiProject, plugin_folder, project_copy, warning_lines
from lab.registration_checks import assert_no_secret_in, assert_nothing_registered, assert_registered, wait_until
from lab.scenarios import Lab

# stack: (API server, cluster, agent namespace)
STACKS = {
    "fleet-a": ("remote", "fleet-a-e2e", "gm-fleet-a"),
    "fleet-b": ("remote-b", "fleet-b-e2e", "gm-fleet-b"),
}
BAD = "fleet-bad"
MISSING_CONTEXT = "no-such-context"
COMMAND_TIMEOUT = 900


@pytest.fixture(scope="module")
def state_backend_env(object_store: ObjectStore) -> dict[str, str]:
    """The environment of the fleet's runs that chooses the state backend: the session's real S3 server (SeaweedFS,
    lab/object_store.py), a folder of its bucket of this module's own, as a team's fleet keeps its state."""
    return object_store.env("fleet-command-e2e")


@pytest.fixture(scope="module")
def agents(lab: Lab) -> Iterator[None]:
    """The simulated agent of each stack's cluster, for the whole module."""
    (server_a, cluster_a, ns_a), (server_b, cluster_b, ns_b) = STACKS.values()
    with lab.agent(cluster_a, ns_a, server=server_a), lab.agent(cluster_b, ns_b, server=server_b):
        yield


def stack_file_config(lab: Lab, server: str, cluster: str, namespace: str, **settings: object) -> dict[str, object]:
    return lab.stack_config(
        [lab.cluster_entry(cluster, namespace, server=server, clientCertTimeoutSeconds=60, **settings)]
    )


@pytest.fixture(scope="module")
def operator(
    tools_bin: Path, e2e_dir: Path, lab: Lab, management_plane: ManagementPlane, agents: None
) -> PulumiProject:
    """An operator's checkout with the two stack files, and their home; ``.venv`` made by ``pulumi install`` once, as
    before any first use of the command (``scripts/up.sh`` makes it the same way)."""
    (first, (server, cluster, namespace)), (second, (server_b, cluster_b, namespace_b)) = STACKS.items()
    folder = project_copy(ROOT, e2e_dir / "project-fleet", first, stack_file_config(lab, server, cluster, namespace))
    (folder / "stacks" / f"Pulumi.{second}.yaml").write_text(
        yaml.safe_dump({"config": stack_file_config(lab, server_b, cluster_b, namespace_b)}, sort_keys=False)
    )
    (folder / ".venv").unlink()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "components", folder / "components", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "fleet.py", folder / "scripts" / "fleet.py")
    home = e2e_dir / "home-fleet"
    (home / "user").mkdir(parents=True, exist_ok=True)
    bin_dir = plugin_folder(tools_bin, e2e_dir / "bin-fleet", providers_on_path=False)
    # pip's cache stays the machine's own (the home is the test's): `pulumi install` downloads once, not every run.
    extra = {"HOME": str(home / "user"), "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip")}
    cli = PulumiProject(bin_dir, home, folder, first, extra_env=extra)
    cli.install_sdk_plugins()
    cli.run("install", stack=False, timeout=COMMAND_TIMEOUT).check()
    return cli


def fleet_env(cli: PulumiProject, tmp: Path, backend: dict[str, str]) -> dict[str, str]:
    return {**cli.env(), "TMPDIR": str(tmp), **backend}


def fleet_argv(cli: PulumiProject, *args: str) -> list[str]:
    return [str(cli.project_dir / ".venv" / "bin" / "python"), "scripts/fleet.py", *args]


def fleet(cli: PulumiProject, tmp: Path, backend: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``.venv/bin/python scripts/fleet.py <args>`` in the checkout, its output not a terminal (as in CI)."""
    tmp.mkdir(exist_ok=True)
    started = time.monotonic()
    run = subprocess.run(
        fleet_argv(cli, *args),
        cwd=cli.project_dir,
        env=fleet_env(cli, tmp, backend),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    print(f"\n$ fleet.py {' '.join(args)}  # exit {run.returncode} in {time.monotonic() - started:.1f}s\n{run.stdout}")
    return run


def summary_rows(stdout: str) -> dict[str, tuple[str, str, str, str]]:
    """The summary table's rows: stack -> (clusters, result, duration, changes)."""
    lines = stdout.splitlines()
    start = max(
        i for i, line in enumerate(lines) if re.match(r"^stack\s+clusters\s+result\s+duration\s+changes$", line)
    )
    rows = {}
    for line in lines[start + 1 :]:
        match = re.match(r"^(\S+)\s+(\d+)\s+(succeeded|no changes|failed|interrupted|not run)\s+(\S+)\s+(.*)$", line)
        if match is None:
            break
        rows[match[1]] = (match[2], match[3], match[4], match[5])
    return rows


def log_dir_of(stdout: str) -> Path:
    return Path(stdout.splitlines()[-1].removeprefix("logs: "))


def counted_in_log(log: Path, done: str) -> int:
    """The CLI's own count of what an ``up`` created or a ``destroy`` deleted (``done``), from its "Resources:" block."""
    match = re.search(rf"^\s*[-+] (\d+) {done}$", log.read_text(), re.MULTILINE)
    assert match is not None, log.read_text()[-4000:]
    return int(match[1])


def test_an_unknown_stack_is_refused_before_anything_runs(
    operator: PulumiProject, tmp_path: Path, state_backend_env: dict[str, str]
) -> None:
    run = fleet(operator, tmp_path / "tmp", state_backend_env, "preview", "fleet-a", "fleet-c")
    assert run.returncode == 2
    assert run.stderr == "error: there is no stacks/Pulumi.fleet-c.yaml; stacks there: fleet-a fleet-b\n"
    assert run.stdout == "" and not (operator.project_dir / ".fleet-logs").exists()


def test_up_registers_both_stacks_at_once(
    operator: PulumiProject,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    tmp_path: Path,
    state_backend_env: dict[str, str],
) -> None:
    logs = tmp_path / "logs"
    tmp = tmp_path / "tmp"
    run = fleet(operator, tmp, state_backend_env, "up", "--yes", "--log-dir", str(logs))
    assert run.returncode == 0, run.stdout + run.stderr
    for server, cluster, namespace in STACKS.values():
        assert_registered(planes, server, cluster, namespace, management_plane.agent_version)
    # Not a terminal: one line per change of state, no carriage return, no cursor movement.
    assert "\r" not in run.stdout and "\x1b" not in run.stdout
    lines = run.stdout.splitlines()
    assert lines[:3] == [
        f"fleet up: 2 stack(s) (fleet-a, fleet-b), 2 at a time; logs in {logs}",
        f"pulumi install (log: {logs / '_install.log'})",
        lines[2],
    ]
    assert re.fullmatch(r"pulumi install: done in \S+", lines[2])
    rows = summary_rows(run.stdout)
    assert set(rows) == set(STACKS)
    for stack, (clusters, result, _, changes) in rows.items():
        assert lines.count(f"{stack}: running (1 cluster, --parallel 16)") == 1
        assert (clusters, result) == ("1", "succeeded")
        # The Automation API's summary counts what the CLI printed.
        created = counted_in_log(logs / f"{stack}.log", "created")
        assert changes == f"create {created}"
        assert any(re.fullmatch(rf"{stack}: done in \S+ \(create {created}\)", line) for line in lines), lines
    assert lines[-2:] == ["fleet up: all 2 stacks succeeded", f"logs: {logs}"]
    assert sorted(p.name for p in logs.iterdir()) == ["_install.log", "fleet-a.log", "fleet-b.log"]
    for stack in STACKS:
        log = (logs / f"{stack}.log").read_text()
        # A preview first, as `pulumi up --yes` (and scripts/up.sh) runs one, then the update.
        assert 0 <= log.index(f"Previewing update ({stack})") < log.index(f"Updating ({stack})"), log[-4000:]
        assert "Resources:" in log
        assert_no_secret_in(log, management_plane, f"{stack}.log")
        assert not warning_lines(log), log
    assert_no_secret_in(run.stdout + run.stderr, management_plane, "the fleet's output")
    # Each run's TMPDIR, and the provider's kubeconfig copies in it, are gone (once the token guards are done).
    wait_until(lambda: not any(tmp.iterdir()), f"{tmp} to be empty", timeout=60)


def test_a_preview_of_every_stack_shows_no_change(
    operator: PulumiProject, tmp_path: Path, state_backend_env: dict[str, str]
) -> None:
    run = fleet(operator, tmp_path / "tmp", state_backend_env, "preview")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = summary_rows(run.stdout)
    assert {stack: row[1] for stack, row in rows.items()} == {"fleet-a": "no changes", "fleet-b": "no changes"}
    # The management cluster's reads (the server Deployment and Service) count as reads, which change nothing.
    assert all(re.fullmatch(r"read \d+, same \d+", row[3]) for row in rows.values()), rows
    # The default log folder: a new one under the checkout's .fleet-logs/, named at the start and at the end.
    logs = log_dir_of(run.stdout)
    assert logs.parent == operator.project_dir / ".fleet-logs" and logs.name.endswith("-preview")
    assert f"logs in {logs}" in run.stdout.splitlines()[0]
    assert "Previewing update (fleet-b)" in (logs / "fleet-b.log").read_text()


def test_ctrl_c_cancels_a_running_preview(
    operator: PulumiProject, tmp_path: Path, state_backend_env: dict[str, str]
) -> None:
    """SIGINT to the command alone (not to its process group, which a terminal would signal): the command passes it
    on to each running ``pulumi``, which cancels; nothing else starts, and the exit status is 130."""
    logs = tmp_path / "logs"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        fleet_argv(operator, "preview", "fleet-a", "--jobs", "1", "--log-dir", str(logs)),
        cwd=operator.project_dir,
        env=fleet_env(operator, tmp, state_backend_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        wait_until(
            lambda: "Previewing update (fleet-a)" in _text(logs / "fleet-a.log"), "the preview to start", timeout=300
        )
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    print(stdout)
    assert process.returncode == 130, stdout + stderr
    assert summary_rows(stdout)["fleet-a"][1] == "interrupted"
    assert "interrupted: stopping 1 running stack(s) (fleet-a), 0 waiting will not start" in stdout
    assert stdout.splitlines()[-2] == "fleet preview: interrupted; not completed: fleet-a"
    assert "canceled" in _text(logs / "fleet-a.log")
    wait_until(lambda: not any(tmp.iterdir()), f"{tmp} to be empty", timeout=60)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_failing_stack_fails_the_fleet_naming_it_and_its_first_error_while_the_other_succeeds(
    operator: PulumiProject, lab: Lab, tmp_path: Path, state_backend_env: dict[str, str]
) -> None:
    config = stack_file_config(lab, "remote", "fleet-bad-e2e", "gm-fleet-bad", context=MISSING_CONTEXT)
    (operator.project_dir / "stacks" / f"Pulumi.{BAD}.yaml").write_text(yaml.safe_dump({"config": config}))
    # Its preview passes with the program's warning, which the fleet shows beside the result and under the table.
    preview = fleet(operator, tmp_path / "tmp", state_backend_env, "preview", BAD)
    assert preview.returncode == 0, preview.stdout + preview.stderr
    unreachable = f"cluster fleet-bad-e2e (context '{MISSING_CONTEXT}' in kubeconfig file"
    [done] = [line for line in preview.stdout.splitlines() if line.startswith(f"{BAD}: done in ")]
    assert f"; 1 warning: {unreachable}" in done, done
    assert any(line.startswith(f"{BAD} warning: {unreachable}") for line in preview.stdout.splitlines())
    run = fleet(operator, tmp_path / "tmp", state_backend_env, "up", "--yes", "fleet-a", BAD)
    assert run.returncode == 1, run.stdout + run.stderr
    rows = summary_rows(run.stdout)
    assert (rows["fleet-a"][1], rows[BAD][1]) == ("no changes", "failed")
    [failed] = [line for line in run.stdout.splitlines() if line.startswith(f"{BAD}: failed in ")]
    error = failed.split(": ", 2)[2]
    assert MISSING_CONTEXT in error, failed
    logs = log_dir_of(run.stdout)
    assert f"{BAD} failed: {error} (log: {logs / f'{BAD}.log'})" in run.stdout.splitlines()
    assert run.stdout.splitlines()[-2] == f"fleet up: 1 of 2 stacks failed: {BAD}"
    assert MISSING_CONTEXT in (logs / f"{BAD}.log").read_text()


def test_destroy_deregisters_both(
    operator: PulumiProject, planes: ControlPlanes, tmp_path: Path, state_backend_env: dict[str, str]
) -> None:
    run = fleet(operator, tmp_path / "tmp", state_backend_env, "destroy", "--yes", *STACKS)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = summary_rows(run.stdout)
    assert {stack: row[1] for stack, row in rows.items()} == {"fleet-a": "succeeded", "fleet-b": "succeeded"}
    logs = log_dir_of(run.stdout)
    for stack, row in rows.items():
        # The management reads (a Deployment and a Service) are discarded from the state, not deleted.
        assert row[3] == f"delete {counted_in_log(logs / f'{stack}.log', 'deleted')}, discard 2", rows
    for server, cluster, namespace in STACKS.values():
        assert_nothing_registered(planes, server, cluster, namespace)
