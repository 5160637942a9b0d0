"""Writes ``rbac/``, the RBAC manifests of the registration (``gloo_mesh_registration.rbac``), for the default
namespaces and the lab's stand-in charts; ``--check`` only says whether the folder is current (tests/test_rbac.py runs
it). For another namespace, subject or your chart version: ``python -m gloo_mesh_registration.rbac --help``
(docs/rbac.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gloo_mesh_registration.rbac import default_manifests, render
from lab.gloo import stand_in_chart_rbac

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "rbac"


def files() -> dict[str, str]:
    """Each file of ``rbac/`` by name, as it should read."""
    return {manifest.file: render(manifest) for manifest in default_manifests(stand_in_chart_rbac)}


def stale(folder: Path = FOLDER) -> list[str]:
    """The files of ``folder`` that differ from :func:`files`, or are missing, or are not made by it."""
    wanted = files()
    present = {path.name for path in folder.glob("*.yaml")}
    differing = [
        name for name, text in wanted.items() if not (folder / name).is_file() or (folder / name).read_text() != text
    ]
    return sorted(set(differing) | (present - set(wanted)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report the files that are not current")
    options = parser.parse_args(argv)
    if options.check:
        names = stale()
        for name in names:
            print(f"rbac/{name} is not current: run python scripts/rbac_manifests.py")
        return 1 if names else 0
    FOLDER.mkdir(exist_ok=True)
    for old in FOLDER.glob("*.yaml"):
        old.unlink()
    for name, text in files().items():
        (FOLDER / name).write_text(text)
    print(f"wrote {len(files())} files to {FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
