"""Upgrading this program under an existing stack, for real: what does the first preview after an upgrade plan?

A platform team that registered its clusters with an earlier version of this repository asks one question before it
pulls a new one: will the next ``pulumi up`` replace or delete anything (re-register a cluster, drop the agent's
identity)? This script answers it with the real CLI and providers on two local API servers (as ``demo.py``):

1. the program at ``--from`` (a commit of this repository, taken with ``git archive``) registers one cluster;
2. the program of this checkout previews that stack (``pulumi preview --json``): every planned step is printed, and
   any replace or delete of a resource the registration needs fails the check;
3. ``pulumi up`` of this checkout, then the cluster is checked on the servers (registered, token gone), then a second
   ``pulumi up --expect-no-changes``, then ``pulumi destroy``.

It needs the repository's git history (a full clone) and the tools of ``scripts/e2e-tools.sh``:

    .venv/bin/python -m lab.upgrade_check --tools "$(bash scripts/e2e-tools.sh --print-bin-dir)" --from e40d9b1
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gloo import ManagementPlane
from .pulumi_cli import ROOT, PulumiProject, project_copy
from .registration_checks import assert_nothing_registered, assert_registered
from .scenarios import CLUSTER, REMOTE_NAMESPACE, Lab, standalone_lab

PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components")
HARMLESS_OPS = frozenset({"same", "update", "read", "discard", "create"})
"""Steps an upgrade may plan without touching a registration: an in-place update (e.g. a shell step's new script), a
read, a read resource leaving the state (``discard``: nothing on a cluster is deleted), or a new resource (listed, as
a new resource on a registered cluster is worth a look). A ``delete`` is harmless only for a shell step that has no
delete script (see :func:`harmful_steps`); a replace never is."""


def program_at(commit: str, folder: Path) -> Path:
    """This repository's program files at ``commit`` in ``folder`` (``git archive``: needs the commit in history)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *PROGRAM_FILES], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {commit} failed (a shallow clone? git fetch --unshallow): {archive.stderr!r}")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def use_program(source: Path, project: PulumiProject) -> None:
    """Put the program of ``source`` (its files and its ``components`` folder) in place in ``project``.

    Up to 00c2ab2 ``components`` was the import package itself, found next to ``__main__.py``; since then it holds
    the package ``gloo_mesh_registration`` (``pyproject.toml``'s package directory), which the program finds through
    ``PYTHONPATH`` here, ahead of the copy of this checkout installed in the suite's virtualenv."""
    folder = project.project_dir
    for name in ("Pulumi.yaml", "__main__.py", "requirements.txt"):
        shutil.copy(source / name, folder / name)
    shutil.rmtree(folder / "components", ignore_errors=True)
    shutil.copytree(source / "components", folder / "components", ignore=shutil.ignore_patterns("__pycache__"))
    project.extra_env.pop("PYTHONPATH", None)
    if (folder / "components" / "gloo_mesh_registration").is_dir():
        project.extra_env["PYTHONPATH"] = str(folder / "components")


def _relink(link: Path, target: Path) -> None:
    link.unlink()
    link.symlink_to(target)


def harmful_steps(steps: list[tuple[str, str]], state: dict[str, Any]) -> list[tuple[str, str]]:
    """The steps that may change a registered cluster: any replace, and any delete but that of a ``local:Command``
    whose recorded inputs have no ``delete`` script (its delete runs nothing)."""
    inputs = {r["urn"]: r.get("inputs", {}) for r in state["deployment"].get("resources", [])}
    return [
        (op, urn)
        for op, urn in steps
        if op not in HARMLESS_OPS
        and not (op == "delete" and "$command:local:Command::" in urn and not inputs.get(urn, {}).get("delete"))
    ]


@dataclass(frozen=True)
class UpgradeReport:
    """What the first preview after the upgrade planned: its steps (``op``, URN; the JSON lists no ``same`` step but
    the stack's), those that may change a cluster, the count of each kind of step (``changeSummary``, sames
    included)."""

    steps: list[tuple[str, str]]
    harmful: list[tuple[str, str]]
    change_summary: dict[str, int]


def check_upgrade(
    lab: Lab,
    plane: ManagementPlane,
    old: Path,
    new: Path,
    *,
    cluster: str = CLUSTER,
    namespace: str = REMOTE_NAMESPACE,
    label: str = "this checkout",
    diff: bool = False,
    old_venv: Path | None = None,
) -> UpgradeReport:
    """Steps 1 to 3 of this module's list, on running servers: the program in ``old`` registers ``cluster``, the one
    in ``new`` previews, then ups twice (the second expecting no changes), then destroys. Fails (an assertion or a
    failed CLI run) if the cluster is not registered after either up or not clean after the destroy.

    ``old_venv``: the virtualenv the old program runs from (its own SDK versions, as its users had them); by default
    both programs run from the suite's."""
    planes, work = lab.planes, lab.work
    agent = lab.agent(cluster, namespace).start()
    config = lab.one_cluster_config(name=cluster, namespace=namespace)
    folder = project_copy(old, work / "project", "upgrade", config)
    venv = folder / ".venv"
    suite_venv = venv.readlink()
    if old_venv is not None:
        _relink(venv, old_venv)
    project = PulumiProject(lab.bin_dir, work / "home", folder, "upgrade")
    use_program(old, project)
    try:
        project.init()
        print("== pulumi up with the old program", flush=True)
        project.run("up", "--yes", "--skip-preview").check()
        assert_registered(planes, "remote", cluster, namespace, plane.agent_version)

        use_program(new, project)
        if old_venv is not None:
            _relink(venv, suite_venv)
        print(f"== pulumi preview with the program of {label}", flush=True)
        preview = json.loads(project.run("preview", "--json").check().stdout)
        steps = [(step["op"], step["urn"]) for step in preview.get("steps", [])]
        summary: dict[str, int] = preview.get("changeSummary", {})
        print("planned steps by kind: " + ", ".join(f"{op} {n}" for op, n in sorted(summary.items())))
        for step in preview.get("steps", []):
            if step["op"] != "same":
                changed = ", ".join(step.get("diffReasons") or [])
                print(f"  {step['op']:<8} {step['urn'].split('::', 2)[-1]}" + (f"  ({changed})" if changed else ""))
        if diff:
            print(project.run("preview", "--diff").check().stdout)
        harmful = harmful_steps(steps, json.loads(project.export()))

        print(f"== pulumi up with the program of {label}", flush=True)
        project.run("up", "--yes", "--skip-preview").check()
        assert_registered(planes, "remote", cluster, namespace, plane.agent_version)
        project.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()
        print("registered after the upgrade, token gone; a second up changes nothing")
    finally:
        print("== pulumi destroy", flush=True)
        destroyed = project.run("destroy", "--yes", "--skip-preview")
        agent.stop()
    destroyed.check()
    assert_nothing_registered(planes, "remote", cluster, namespace)
    return UpgradeReport(steps, harmful, summary)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, required=True, help="the folder scripts/e2e-tools.sh printed")
    parser.add_argument("--from", dest="old", required=True, help="the commit whose program registers first")
    parser.add_argument("--to", dest="new", help="the commit whose program upgrades (default: this checkout as it is)")
    parser.add_argument("--diff", action="store_true", help="also print `pulumi preview --diff` of the upgrade")
    parser.add_argument("--work", type=Path, help="where to keep servers and state (default: a temporary folder)")
    options = parser.parse_args(argv)
    work = options.work or Path(tempfile.mkdtemp(prefix="gloo-upgrade-"))
    old = program_at(options.old, work / "old")
    new = program_at(options.new, work / "new") if options.new else ROOT
    if options.new:
        label = options.new
    else:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        label = f"this checkout ({head}, with its uncommitted changes)"
    print(f"the old program: {options.old}", flush=True)
    with standalone_lab(options.tools, work) as (lab, plane):
        report = check_upgrade(lab, plane, old, new, label=label, diff=options.diff)
    if report.harmful:
        print(
            f"FAILED: the upgrade from {options.old} plans {len(report.harmful)} replace/delete step(s): "
            f"{report.harmful}"
        )
        return 1
    print(f"passed: the upgrade from {options.old} replaces nothing and deletes nothing on a cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
