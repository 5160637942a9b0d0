"""``scripts/mutation.sh`` runs the fast tests in mutmut's copy of the project (``build/mutation/mutants/``): a file
the tests read that the copy lacks fails mutmut's first, unmutated run, and with it every mutation run. That happened
once (``tests/test_versions.py`` began to read the Go wrapper modules, which the copy did not hold); this keeps the
copy's list, ``[tool.mutmut] also_copy``, in step with what the repository holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NOT_COPIED = {
    "components": "mutmut's source path: the stage links it as src/ and mutmut copies (and mutates) it",
    "tests": "mutmut copies the tests itself",
    "pyproject.toml": "mutmut copies its configuration itself",
    "src": "in mutmut's copy: the mutated components/ (the tests run there too)",
}
"""What the copy gets otherwise."""

NOT_THE_PROJECT = {".venv", "build", "dist", "node_modules", "__pycache__", "mutants"}
"""What a checkout holds that is no part of the project (.gitignore), or mutmut's own copy (the tests run there)."""


def project_entries() -> set[str]:
    return {
        entry.name
        for entry in ROOT.iterdir()
        if entry.name not in NOT_THE_PROJECT
        and not entry.name.endswith(".egg-info")
        and (not entry.name.startswith(".") or entry.name == ".github")
    }


def test_mutmut_copies_every_file_and_folder_of_the_repository_the_fast_tests_may_read() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    copied = {name.rstrip("/") for name in config["also_copy"]}
    missing = sorted(project_entries() - copied - NOT_COPIED.keys())
    assert missing == [], (
        f"add to [tool.mutmut] also_copy in pyproject.toml (and to scripts/mutation.sh's links): {missing}"
    )


def test_the_mutation_stage_links_what_mutmut_copies() -> None:
    """mutmut copies ``also_copy`` from the stage folder, ``build/mutation/``, which links each name to the repository."""
    script = (ROOT / "scripts" / "mutation.sh").read_text()
    linked_words = script.split("linked=(", 1)[1].split(")", 1)[0].split()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    copied = {name.rstrip("/") for name in config["also_copy"]}
    assert copied <= set(linked_words) | {"policy"}, sorted(copied - set(linked_words))
