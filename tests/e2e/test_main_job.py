"""The README's main command, ``scripts/up.sh``, run as written on a copy of this project, with the real CLI.

The script does its own set-up (``pulumi install``: the virtualenv ``.venv`` that ``Pulumi.yaml`` names, with the
pinned requirements from PyPI, and the providers; ``pulumi stack select --create`` with a passphrase), then ``pulumi
up``. The program then runs from that ``.venv``, as for users: the real language host is started with the options
``Pulumi.yaml`` declares (see ``language_host.py``), and nothing names another interpreter (no ``PULUMI_PYTHON_CMD``).

The script also gives the run a ``TMPDIR`` of its own and empties it afterwards, because of what the kubernetes
provider does, shown here too: each time it starts with a kubeconfig, it writes a full copy of it (client key
included) into ``$TMPDIR`` and never deletes it (pulumi-kubernetes ``pkg/provider/util.go``,
``writeKubeconfigToFile``; seen with the v4.25 provider built here).
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import (
    ROOT,
    PulumiProject,
    plugin_folder,
    project_copy,
    recorded_runs,
    recording_interpreters,
    warning_lines,
)
from lab.registration_checks import assert_nothing_registered, assert_registered, wait_until
from lab.scenarios import one_cluster_config

STACK = "main-job"
CLUSTER = "main-job-e2e"
NAMESPACE = "gm-main-job"


@pytest.fixture(scope="module")
def user(
    tools_bin: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    agent: SimulatedAgent,
) -> PulumiProject:
    """A user's checkout (the program, the component package, ``scripts/up.sh`` and ``scripts/fleet.py``, whose
    ``--parallel`` rule it runs, one stack file) and home folder.

    No virtualenv is made for it: ``pulumi install``, run by the script, makes one. The state stays in the suite's
    ``PULUMI_BACKEND_URL``, which wins over ``Pulumi.yaml``'s ``file://~``: the CLI expands ``~`` to the account's home
    in the password database (Go's ``user.Current``), not ``$HOME``, so without it the test would write this
    machine's ``~/.pulumi``.
    """
    config = one_cluster_config(planes, chart_repo, name=CLUSTER, namespace=NAMESPACE)
    folder = project_copy(ROOT, e2e_dir / "project-main-job", STACK, config)
    (folder / ".venv").unlink()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "components", folder / "components", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "scripts").mkdir()
    for script in ("up.sh", "fleet.py"):
        shutil.copy(ROOT / "scripts" / script, folder / "scripts" / script)
    home = e2e_dir / "home-main-job"
    (home / "user").mkdir(parents=True, exist_ok=True)
    # Pulumi as a user's machine holds it: the CLI with its language hosts beside it, kubectl on PATH, and the
    # providers in the plugin cache. `pulumi install` would download the providers the SDKs ask for; get.pulumi.com is
    # out of reach here, so they are installed from the local builds under those versions first, as an offline user
    # would (see CONTRIBUTING.md, the table of what is real: the kubernetes provider is the release the SDK asks for, the
    # command provider the stand-in).
    bin_dir = plugin_folder(tools_bin, e2e_dir / "bin-user", providers_on_path=False)
    cli = PulumiProject(bin_dir, home, folder, STACK, extra_env={"HOME": str(home / "user")})
    cli.install_sdk_plugins()
    return cli


def environment(cli: PulumiProject, tmp: Path) -> dict[str, str]:
    # pip's cache stays the machine's own (the home is the test's): `pulumi install` downloads once, not every run.
    return {**cli.env(), "TMPDIR": str(tmp), "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip")}


def kubeconfig_copies(folder: Path, planes: ControlPlanes) -> list[Path]:
    """The files under ``folder`` that hold the admin kubeconfig's client key, the secret part of a kubeconfig."""
    key = base64.b64encode((planes.work_dir / "admin.key").read_bytes()).decode()
    return [path for path in folder.rglob("*") if path.is_file() and key in path.read_text(errors="replace")]


def test_up_sh_registers_the_stack_and_leaves_no_kubeconfig_copy_behind(
    user: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run = subprocess.run(
        ["bash", "scripts/up.sh", STACK, "--yes", "--skip-preview"],
        cwd=user.project_dir,
        env=environment(user, tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"scripts/up.sh exited {run.returncode}:\n{(run.stdout + run.stderr)[-12000:]}"
    assert_registered(planes, "remote", CLUSTER, NAMESPACE, management_plane.agent_version)
    # Nothing a user would have to wonder about: no plugin found in an unexpected place, no version mismatch.
    assert not warning_lines(run.stdout + run.stderr), run.stdout + run.stderr
    # The token guards may outlive the run by a moment; then the run's folder goes too, and nothing is left.
    wait_until(lambda: not any(tmp.iterdir()), f"{tmp} to be empty", timeout=60)


def test_the_program_runs_from_the_venv_pulumi_install_made(user: PulumiProject, tmp_path: Path) -> None:
    venv = user.project_dir / ".venv"
    assert (venv / "pyvenv.cfg").is_file() and not venv.is_symlink()
    # The component and the pinned SDKs (constraints.txt), the versions the suite runs with.
    probe = "import gloo_mesh_registration, importlib.metadata as m; print(m.version('pulumi-kubernetes'))"
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert installed.stdout.strip() == importlib.metadata.version("pulumi-kubernetes"), installed.stderr
    record = tmp_path / "interpreters"
    with recording_interpreters(venv, record) as recording:
        preview = subprocess.run(
            user.argv("preview", "--expect-no-changes"),
            env={**environment(user, tmp_path), **recording},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert preview.returncode == 0, preview.stdout + preview.stderr
    runs = recorded_runs(record)
    # The program itself: the host's executor script, run by the virtualenv's python (not the suite's).
    assert [str(venv / "bin" / "python")] == sorted(
        {python for python, script in runs if script.endswith("pulumi-language-python-exec")}
    ), runs


def test_a_venv_that_is_not_one_gets_the_hosts_error(user: PulumiProject, tmp_path: Path) -> None:
    """``.venv`` there but not a virtualenv (say, a copy from another machine without its ``bin/python``): the real
    host says so and how to make one; the program does not run on some other Python."""
    venv = user.project_dir / ".venv"
    aside = user.project_dir / ".venv-aside"
    venv.rename(aside)
    try:
        venv.mkdir()
        (venv / "README").write_text("not a virtualenv\n")
        preview = subprocess.run(
            user.argv("preview"), env=environment(user, tmp_path), capture_output=True, text=True, timeout=600
        )
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        aside.rename(venv)
    assert preview.returncode != 0
    output = " ".join((preview.stdout + preview.stderr).split())
    assert (
        f'The \'virtualenv\' option in Pulumi.yaml is set to ".venv", but "{venv}" doesn\'t appear to be a virtual '
        "environment" in output
    ), output[-4000:]
    assert f"{venv}/bin/python -m pip install -r requirements.txt" in output


def test_the_provider_itself_leaves_kubeconfig_copies_in_tmpdir(
    user: PulumiProject, planes: ControlPlanes, tmp_path: Path
) -> None:
    """Why ``scripts/up.sh`` has its own TMPDIR: ``pulumi`` run directly leaves the copies. If a later provider stops
    doing so, this fails, and the cleanup in ``scripts/up.sh`` (and the README's advice) can go."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    argv = user.argv("preview", "--expect-no-changes")
    preview = subprocess.run(
        argv, cwd=user.project_dir, env=environment(user, tmp), capture_output=True, text=True, timeout=600
    )
    assert preview.returncode == 0, preview.stdout + preview.stderr
    copies = kubeconfig_copies(tmp, planes)
    assert copies and all(path.name.startswith("kubeconfig") for path in copies), sorted(os.listdir(tmp))


def test_destroy(user: PulumiProject, planes: ControlPlanes, tmp_path: Path) -> None:
    destroy = subprocess.run(
        user.argv("destroy", "--yes", "--skip-preview"),
        cwd=user.project_dir,
        env=environment(user, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert_nothing_registered(planes, "remote", CLUSTER, NAMESPACE)
