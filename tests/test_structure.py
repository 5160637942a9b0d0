"""The structure ARCHITECTURE.md describes, held: short functions in the component, and every module of each package
in a layer of its import contract (a module left out of every layer would escape ``lint-imports``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.structure import LONGEST_FUNCTION_LINES, PACKAGES, functions, layers


def test_no_function_of_the_component_is_longer_than_the_limit() -> None:
    too_long = [f for f in functions(PACKAGES["gloo_mesh_registration"]) if f.lines > LONGEST_FUNCTION_LINES]
    assert too_long == [], f"split these (at most {LONGEST_FUNCTION_LINES} lines, ARCHITECTURE.md): {too_long}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_module_of_a_package_is_in_a_layer_of_its_import_contract(package: str) -> None:
    folder: Path = PACKAGES[package]
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    layered = {module.strip() for layer in layers(package) for module in layer.split("|")}
    assert modules - layered == set(), "add these to a layer in pyproject.toml [tool.importlinter]"
    assert layered - modules == set(), "these layers name modules that are gone"
