"""What users install is what the suite runs: one version of each provider, tested and shipped.

``pulumi install`` gives a user the provider plugins the Python SDKs ask for (each SDK's ``pulumi-plugin.json``), at
the SDK versions ``constraints.txt`` pins. The real-engine suite runs the kubernetes provider built from the wrapper
module ``toolchain/kubernetes-provider`` (stamped with a release version by ``scripts/e2e-tools.sh``) and the command
provider stand-in ``lab/command_provider.py`` (which emulates one release). These tests fail when the two drift
apart, in either direction: a bumped SDK pin with an old provider build, or a new provider build with an old pin.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from lab.command_provider import VERSION as COMMAND_STAND_IN_VERSION

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES_WRAPPER = ROOT / "toolchain" / "kubernetes-provider" / "go.mod"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file: no comments, no blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pins(path: Path) -> dict[str, Version]:
    """``name==version`` lines of a requirements file, by normalised name."""
    found: dict[str, Version] = {}
    for line in requirement_lines(path):
        if line.startswith("-") or "==" not in line:
            continue
        requirement = Requirement(line)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", line
        found[requirement.name.lower()] = Version(specifier.version)
    return found


CONSTRAINTS = pins(ROOT / "constraints.txt")


def plugin_version(package: str) -> str:
    """The provider version an SDK asks the CLI for (what ``pulumi install`` installs for a user)."""
    manifest = json.loads((resources.files(package) / "pulumi-plugin.json").read_text())
    return str(manifest["version"])


def built_kubernetes_provider_version() -> str:
    """The release version ``scripts/e2e-tools.sh`` stamps into the kubernetes provider it builds."""
    script = (ROOT / "scripts" / "e2e-tools.sh").read_text()
    [version] = re.findall(r"^kubernetes_provider_version=(\S+)$", script, flags=re.MULTILINE)
    return str(version)


def test_the_installed_sdks_are_the_pinned_ones() -> None:
    """The test environment (scripts/venv.sh) installs under constraints.txt, as ``pulumi install`` does for users."""
    for name, pinned in CONSTRAINTS.items():
        assert Version(metadata.version(name)) == pinned, name


def test_the_kubernetes_sdk_asks_for_the_provider_release_the_suite_builds() -> None:
    asked = plugin_version("pulumi_kubernetes")
    assert asked == built_kubernetes_provider_version()
    assert Version(asked) == CONSTRAINTS["pulumi-kubernetes"]
    # The wrapper's pinned commit is the release commit its comment names (tag vX = that commit, read in
    # pulumi/pulumi-kubernetes with `git tag --points-at`); the version stamped is that release.
    gomod = KUBERNETES_WRAPPER.read_text()
    [pseudo] = re.findall(rf"^require {re.escape(PROVIDER_MODULE)} (\S+)$", gomod, flags=re.MULTILINE)
    [(release, commit)] = re.findall(r"the v(\d+\.\d+\.\d+) release commit \(([0-9a-f]{12})\)", gomod)
    assert pseudo.endswith(f"-{commit}")
    assert release == asked


def test_the_command_sdk_asks_for_the_release_the_stand_in_emulates() -> None:
    asked = plugin_version("pulumi_command")
    assert asked == COMMAND_STAND_IN_VERSION
    assert Version(asked) == CONSTRAINTS["pulumi-command"]


@pytest.mark.parametrize(
    "requirements", ["requirements.txt", "provider/requirements.txt", "policy/requirements.txt"], ids=str
)
def test_every_environment_installs_under_the_pins(requirements: str) -> None:
    """The program's .venv, the component provider's venv and the policy pack's venv: each installs this repository's
    package, whose ranges would otherwise let pip take the newest kubernetes SDK (and so ask for an untested provider)."""
    path = ROOT / requirements
    constraints = os.path.relpath(ROOT / "constraints.txt", path.parent)
    assert f"-c {constraints}" in requirement_lines(path)


def test_the_examples_pin_the_same_versions() -> None:
    python = pins(ROOT / "examples" / "python" / "requirements.txt")
    assert python and all(CONSTRAINTS[name] == version for name, version in python.items()), python
    assert {"pulumi", "pulumi-kubernetes", "pulumi-command"} <= python.keys()
    package = json.loads((ROOT / "examples" / "typescript" / "package.json").read_text())
    assert Version(package["dependencies"]["@pulumi/kubernetes"]) == CONSTRAINTS["pulumi-kubernetes"]


def test_the_package_ranges_admit_the_pins() -> None:
    """Programs that import the component get compatible ranges (pyproject.toml); the tested versions are in them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {requirement.name.lower(): requirement for requirement in map(Requirement, project["dependencies"])}
    for name, requirement in ranges.items():
        assert CONSTRAINTS[name] in requirement.specifier, (name, str(requirement.specifier))
    # The lower bound of the kubernetes range is the tested release: a newer provider is the user's choice to test.
    assert f">={CONSTRAINTS['pulumi-kubernetes']}" in str(ranges["pulumi-kubernetes"].specifier)
