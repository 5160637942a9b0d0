"""mutmut's configuration for the policy pack (``MUTATION_TARGET=policy scripts/mutation.sh``), from the package's.

``mutation_config.py <pyproject.toml> <out>`` writes ``out``: the same file with ``[tool.mutmut]`` pointed at
``policy/`` (its source path; the tests import the pack as ``policy.gloo_mesh_policies``), ``components/`` copied as
it is in place of ``policy/``, the pack's ``__main__.py`` not mutated, and the pack's own tests run for its mutants.
One configuration in the repository, so the two runs keep the same isolation and timeout.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

POLICY_SOURCE = "policy/"
POLICY_TESTS = ("tests/test_policy_pack.py", "tests/test_policy_analyzer.py")
"""The tests that import the pack (``tests/e2e/test_policy_pack.py`` runs it under the real CLI, not per mutant)."""
PACKAGE_SOURCE = "components/"
"""Copied as it is: the tests that read the package's files find them next to the tests, as in the repository."""


def policy_config(project: dict[str, Any]) -> dict[str, Any]:
    mutmut = dict(project["tool"]["mutmut"])
    mutmut["source_paths"] = [POLICY_SOURCE]
    copied = [path for path in mutmut.get("also_copy", []) if path != POLICY_SOURCE]
    mutmut["also_copy"] = [*copied, PACKAGE_SOURCE]
    # The pack's tests: they call the policies directly. (Left to mutmut's own choice of tests, the benchmark smoke
    # tests ran for policy mutants too, and their worker processes outlived every timeout.)
    mutmut["pytest_add_cli_args_test_selection"] = [*POLICY_TESTS]
    # The pack's entry point is two lines the engine runs (tested as text); mutmut would add its import to it.
    mutmut["do_not_mutate"] = [*mutmut.get("do_not_mutate", []), f"{POLICY_SOURCE}__main__.py"]
    return {**project, "tool": {**project["tool"], "mutmut": mutmut}}


def main(argv: list[str]) -> None:
    source, out = (Path(arg) for arg in argv)
    out.write_text(tomli_w.dumps(policy_config(tomllib.loads(source.read_text()))))


if __name__ == "__main__":
    main(sys.argv[1:])
