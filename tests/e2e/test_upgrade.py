"""Upgrading a registered stack to this checkout's program, with the real CLI and providers (``upgrade_check.py``).

For each baseline in :data:`BASELINES` (commits of this repository's history): the old program registers a cluster,
this checkout's program previews, ups and ups again. Nothing may be replaced or deleted on the cluster (a shell step
with no delete script may leave the state), nothing is created, and the second up changes nothing. It needs the
repository's git history: a shallow clone fails here with the fix in the message (``git fetch --unshallow``; the
workflow's checkout has ``fetch-depth: 0``), it does not skip.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.gloo import ManagementPlane
from lab.pulumi_cli import ROOT
from lab.scenarios import Lab
from lab.upgrade_check import HARMLESS_OPS, check_upgrade, program_at

BASELINES = {
    "e40d9b1": "the last release before the real-engine fixes: its management reads leave the state and its old "
    "certificate step, which has no delete script, is deleted",
    "00c2ab2": "the last commit before the import package was renamed (stop 17's main)",
}


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_an_upgrade_replaces_and_deletes_nothing_on_a_registered_cluster(
    baseline: str, lab: Lab, management_plane: ManagementPlane
) -> None:
    work = lab.work / f"upgrade-{baseline}"
    old = program_at(baseline, work / "old")
    assert not (old / "components" / "gloo_mesh_registration").exists(), "the baseline is meant to predate the rename"

    report = check_upgrade(
        lab.at(work),
        management_plane,
        old,
        ROOT,
        cluster=f"upgrade-{baseline}",
        namespace="upgrade-agents",
    )

    assert report.harmful == [], f"from {BASELINES[baseline]}: replaces or deletes on the cluster: {report.harmful}"
    # Every resource the old program registered keeps its URN (a renamed one would be a create and a delete, or an
    # alias): nothing is created. A new resource on a registered cluster is a change to review; if it is meant, say so
    # here.
    assert [urn for op, urn in report.steps if op == "create"] == []
    # Nothing else: sames, in-place updates (a shell step's new script), reads, old reads leaving the state
    # (discard), and deletes that harmful_steps let through (a shell step with no delete script).
    assert set(report.change_summary) <= HARMLESS_OPS | {"delete"}, report.change_summary
    assert report.change_summary.get("same", 0) > 0, report.change_summary


LAST_UNPINNED = "472e38d"
"""The last commit whose requirements pinned pulumi-kubernetes 4.34.2 (the SDK's newest), not the provider release the
suite runs (4.25.0, constraints.txt since)."""


def venv_with_pins_of(commit: str, folder: Path) -> Path:
    """A virtualenv with the third-party pins of ``commit``'s requirements.txt, from PyPI: what a user who installed
    that commit has in the program's ``.venv`` (the component itself comes from the commit's files)."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:requirements.txt"], capture_output=True, text=True, check=True
    )
    pins = [line.strip() for line in shown.stdout.splitlines() if "==" in line and not line.lstrip().startswith("#")]
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
        check=True,
        timeout=600,
    )
    return folder


def test_an_upgrade_from_the_newest_kubernetes_sdk_to_the_pinned_one_updates_only_the_providers(
    lab: Lab, management_plane: ManagementPlane
) -> None:
    """A stack registered with the SDKs of 472e38d (pulumi-kubernetes 4.34.2: its Providers recorded as version
    4.34.2), then upgraded to this checkout (4.25.0, the release users now get): the kubernetes Providers are updated
    in place (their ``version``), nothing is replaced, deleted or created, and the second up changes nothing.

    The old program runs on the v4.25.0 provider build under the SDK's 4.34.2 request (the only build here): what
    changes between the two runs is what the state records and the program asks for, which is what this checks."""
    work = lab.work / f"upgrade-sdk-{LAST_UNPINNED}"
    old = program_at(LAST_UNPINNED, work / "old")
    old_venv = venv_with_pins_of(LAST_UNPINNED, work / "old-venv")
    probe = "import importlib.metadata as m; print(m.version('pulumi-kubernetes'))"
    installed = subprocess.run([str(old_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert installed.stdout.strip() == "4.34.2", installed.stderr

    report = check_upgrade(
        lab.at(work),
        management_plane,
        old,
        ROOT,
        cluster=f"upgrade-sdk-{LAST_UNPINNED}",
        namespace="upgrade-sdk-agents",
        old_venv=old_venv,
    )

    assert report.harmful == [], report.harmful
    assert [urn for op, urn in report.steps if op == "create"] == []
    providers = {urn: op for op, urn in report.steps if "pulumi:providers:kubernetes::" in urn}
    assert providers and set(providers.values()) == {"update"}, providers
