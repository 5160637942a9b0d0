"""The policy pack (``policy/``) as the real CLI runs it: a copy the CLI can start, and how its report reads.

``tests/e2e/test_policy_pack.py`` and ``test_platform.py`` run ``pulumi preview``/``up --policy-pack`` with it.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from .pulumi_cli import ROOT, Result

PACK = "gloo-mesh-relay-guardrails"  # policy/gloo_mesh_policies.py PACK_NAME
PACK_VERSION = "0.1.0"  # policy/PulumiPolicy.yaml


def copy_policy_pack(folder: Path) -> Path:
    """A copy of ``policy/`` in ``folder`` whose ``.venv`` (PulumiPolicy.yaml's ``virtualenv``) is the suite's
    interpreter."""
    shutil.copytree(ROOT / "policy", folder, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return folder


def assert_pack_ran_clean(result: Result) -> None:
    # `preview --diff` lists "Policy Packs run:" with "<name>|local|<path>  <version>"; without --diff the CLI
    # prints "Policies:" and "✅ <name>@v<version> (local: <path>)" for a pack with no violation.
    assert f"{PACK}|local|" in result.stdout or f"✅ {PACK}@v{PACK_VERSION}" in result.stdout, result.output
    assert "[mandatory]" not in result.output and "[advisory]" not in result.output, result.output


def violation(level: str, policy: str, release: str) -> re.Pattern[str]:
    """One reported violation: its level, the policy and the Release on one line (``preview`` prints
    ``- [level]  policy  (type: name)``, ``preview --diff`` ``pack@vX [level] [severity: s]  policy  (type: name)``)."""
    return re.compile(rf"\[{level}\].*  {re.escape(policy)}  \(kubernetes:helm\.sh/v3:Release: {re.escape(release)}\)")
