"""Upgrading a registered stack to this checkout's program, with the real CLI and providers (``upgrade_check.py``).

For each baseline in :data:`BASELINES` (commits of this repository's history): the old program registers a cluster,
this checkout's program previews, ups and ups again. Nothing may be replaced or deleted on the cluster (a shell step
with no delete script may leave the state), nothing is created, and the second up changes nothing. It needs the
repository's git history: a shallow clone fails here with the fix in the message (``git fetch --unshallow``; the
workflow's checkout has ``fetch-depth: 0``), it does not skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .cluster import ControlPlanes
from .gloo import ChartRepository, ManagementPlane
from .pulumi_cli import ROOT
from .upgrade_check import HARMLESS_OPS, check_upgrade, program_at

BASELINES = {
    "e40d9b1": "the last release before the real-engine fixes: its management reads leave the state and its old "
    "certificate step, which has no delete script, is deleted",
    "00c2ab2": "the last commit before the import package was renamed (stop 17's main)",
}


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_an_upgrade_replaces_and_deletes_nothing_on_a_registered_cluster(
    baseline: str,
    bin_dir: Path,
    e2e_dir: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
) -> None:
    work = e2e_dir / f"upgrade-{baseline}"
    old = program_at(baseline, work / "old")
    assert not (old / "components" / "gloo_mesh_registration").exists(), "the baseline is meant to predate the rename"

    report = check_upgrade(
        planes,
        management_plane,
        chart_repo,
        bin_dir,
        work,
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
