"""The README's main command, ``scripts/up.sh``, run as written on a copy of this project, with the real CLI.

The script does its own set-up (``pulumi install``: a virtualenv and the pinned requirements from PyPI, and the
providers; ``pulumi stack select --create`` with a passphrase), then ``pulumi up``. With the v3.68 language host built
here, ``pulumi install`` makes the virtualenv in the project folder rather than ``.venv`` and the program runs with
``PULUMI_PYTHON_CMD`` (see ``language_host.py``); a current host honours ``Pulumi.yaml``'s ``virtualenv``.

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
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import ControlPlanes
from .gloo import ChartRepository, ManagementPlane, SimulatedAgent
from .pulumi_cli import ROOT, PulumiProject, project_copy
from .registration_checks import assert_nothing_registered, assert_registered, wait_until
from .test_real_engine import one_cluster_config

STACK = "main-job"
CLUSTER = "main-job-e2e"
NAMESPACE = "gm-main-job"


@pytest.fixture(scope="module")
def agent(planes: ControlPlanes) -> Iterator[SimulatedAgent]:
    simulated = SimulatedAgent(planes, "remote", namespace=NAMESPACE, cluster_name=CLUSTER).start()
    yield simulated
    simulated.stop()


@pytest.fixture(scope="module")
def user(
    bin_dir: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    agent: SimulatedAgent,
) -> PulumiProject:
    """A user's checkout (the program, the component package, ``scripts/up.sh``, one stack file) and home folder.

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
    shutil.copy(ROOT / "scripts" / "up.sh", folder / "scripts" / "up.sh")
    home = e2e_dir / "home-main-job"
    (home / "user").mkdir(parents=True, exist_ok=True)
    cli = PulumiProject(bin_dir, home, folder, STACK, extra_env={"HOME": str(home / "user")})
    # `pulumi install` installs the providers the SDKs ask for; get.pulumi.com is out of reach here, so they are
    # installed from the local builds under those versions first, as an offline user would (see README, the table
    # of what is real: the kubernetes provider is v4.25, the command provider the stand-in).
    for package in ("kubernetes", "command"):
        version = importlib.metadata.version(f"pulumi-{package}")
        binary = bin_dir / f"pulumi-resource-{package}"
        cli.run("plugin", "install", "resource", package, version, "--file", str(binary), stack=False).check()
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
    # The token guards may outlive the run by a moment; then the run's folder goes too, and nothing is left.
    wait_until(lambda: not any(tmp.iterdir()), f"{tmp} to be empty", timeout=60)


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
