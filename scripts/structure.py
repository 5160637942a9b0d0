"""The structure figures of ARCHITECTURE.md, printed from the tree as it is: per package its modules, its layers
(``[tool.importlinter]`` in pyproject.toml, which ``lint-imports`` checks in scripts/test.sh: no import points back
up a layer), its longest functions, and the lines of each area.

    .venv/bin/python scripts/structure.py
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"gloo_mesh_registration": ROOT / "components" / "gloo_mesh_registration", "lab": ROOT / "lab"}
AREAS = {
    "the component (components/)": ["components/gloo_mesh_registration"],
    "the lab (lab/)": ["lab"],
    "the real-engine tests (tests/e2e/)": ["tests/e2e"],
    "the fast tests (tests/*.py)": ["tests/*.py"],
    "the benchmarks (benchmarks/)": ["benchmarks"],
    "the policy pack (policy/)": ["policy"],
}
LONGEST_FUNCTION_LINES = 80
"""The longest a function of the component may be (tests/test_structure.py holds it)."""


@dataclass(frozen=True, order=True)
class Function:
    lines: int
    where: str


def functions(folder: Path) -> list[Function]:
    """Every function and method under ``folder``, by length (its ``def`` to its last line, docstring included)."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                found.append(Function(node.end_lineno - node.lineno + 1, where))
    return sorted(found, reverse=True)


def layers(package: str) -> list[str]:
    """The layers of ``package``'s contract, top first (each: modules that may not import each other)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for contract in config["contracts"]:
        if contract["type"] == "layers" and contract["layers"][0].startswith(f"{package}."):
            return [layer.replace(f"{package}.", "") for layer in contract["layers"]]
    raise LookupError(f"pyproject.toml has no layers contract for {package}")


def lines(patterns: list[str]) -> int:
    paths = {
        p for pattern in patterns for p in (ROOT.glob(pattern) if "*" in pattern else (ROOT / pattern).rglob("*.py"))
    }
    return sum(len(p.read_text().splitlines()) for p in paths)


def main() -> None:
    for package, folder in PACKAGES.items():
        modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
        print(f"## {package}: {len(modules)} modules in {len(layers(package))} layers (top first)")
        for layer in layers(package):
            print(f"  {layer}")
        print("  longest functions: " + "; ".join(f"{f.lines} lines {f.where}" for f in functions(folder)[:3]))
    print("## lines")
    for area, patterns in AREAS.items():
        print(f"  {area}: {lines(patterns)}")


if __name__ == "__main__":
    main()
