"""What the workflows in .github/workflows share: each has a test module whose table runs every `run:` step as
written or says why it cannot (tests/test_policy_workflow.py for preview.yml, tests/test_register_workflow.py for
register.yml); actions pinned to a major version; expressions reach scripts through `env:` only; one kubeconfig step,
one Python and kubectl, the Pulumi CLI the suite tests; the one stack selection, scripts/changed_stacks.sh; and the
pinned actionlint that scripts/test.sh lints them with."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from workflow_steps import (
    WORKFLOWS,
    commit_change,
    load,
    run_steps,
    stacks_repository,
    steps,
    suite_pulumi_version,
    uses,
)

from lab.engine_double import ROOT

TEST_MODULES = {"preview.yml": "test_policy_workflow.py", "register.yml": "test_register_workflow.py"}


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.iterdir())


def test_every_workflow_has_its_step_table() -> None:
    assert all_workflows() == sorted(TEST_MODULES), "a new workflow needs a test module with its run: steps' table"
    for module in TEST_MODULES.values():
        text = (ROOT / "tests" / module).read_text()
        assert "def test_every_run_step_runs_here_or_says_why_not" in text and "check_step_table(" in text


@pytest.mark.parametrize("name", sorted(TEST_MODULES))
def test_every_action_is_pinned_to_a_major_version(name: str) -> None:
    workflow = load(name)
    for job in workflow["jobs"]:
        for s in steps(workflow, job):
            if "uses" in s:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", s["uses"]), s["uses"]


@pytest.mark.parametrize("name", sorted(TEST_MODULES))
def test_scripts_get_expressions_through_env_only(name: str) -> None:
    """An expression in a script is pasted into it before bash reads it (a stack name or a secret that holds a
    quote would change the script); through `env:` it is a value."""
    for key, s in run_steps(load(name)):
        assert "${{" not in s["run"], key


@pytest.mark.parametrize("name", sorted(TEST_MODULES))
def test_the_pulumi_cli_is_the_one_the_suite_tests(name: str) -> None:
    [pulumi] = uses(load(name), "pulumi/actions")
    assert pulumi["with"]["pulumi-version"] == suite_pulumi_version()


def test_one_kubeconfig_step_one_python_one_kubectl() -> None:
    preview, register = load("preview.yml"), load("register.yml")
    [ours] = [s for s in steps(register, "register") if s.get("name") == "kubeconfig"]
    [theirs] = [s for s in steps(preview, "preview") if s.get("name") == "kubeconfig"]
    assert ours == theirs
    pythons = {s["with"]["python-version"] for w in (preview, register) for s in uses(w, "actions/setup-python")}
    kubectls = {s["with"]["version"] for w in (preview, register) for s in uses(w, "azure/setup-kubectl")}
    assert pythons == {"3.11"} and kubectls == {"v1.32.2"}


def test_the_stack_selection_is_one_script() -> None:
    for name, job in (("preview.yml", "stacks"), ("register.yml", "stacks")):
        scripts = [s["run"] for s in steps(load(name), job) if "run" in s]
        assert len(scripts) == 1 and "scripts/changed_stacks.sh" in scripts[0]
        assert "git diff" not in scripts[0] and "grep" not in scripts[0]


# -- scripts/changed_stacks.sh ----------------------------------------------------------------------------------


def changed_stacks(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/changed_stacks.sh", *args], cwd=repo, capture_output=True, text=True)


def test_changed_stacks_lists_every_stack_of_the_repository() -> None:
    ran = changed_stacks(ROOT, "--all")
    assert ran.returncode == 0, ran.stderr
    names = sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
    )
    assert json.loads(ran.stdout) == names and len(names) >= 3
    assert ran.stdout == json.dumps(names, separators=(",", ":")) + "\n"  # one line, for GITHUB_OUTPUT


def test_changed_stacks_between_two_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = stacks_repository(repo)
    first = commit_change(repo, base, ("stacks/Pulumi.dev.yaml", "config: {a: 1}\n"))
    commit_change(repo, first, ("stacks/Pulumi.fleet-example.yaml", "config: {a: 1}\n"))
    assert json.loads(changed_stacks(repo, base).stdout) == ["dev", "fleet-example"]
    assert json.loads(changed_stacks(repo, base, first).stdout) == ["dev"]
    assert json.loads(changed_stacks(repo, first).stdout) == ["fleet-example"]
    assert json.loads(changed_stacks(repo, "HEAD").stdout) == []


@pytest.mark.parametrize("args", [[], [""], ["--all", "x"], ["--diff-filter=A"], ["a", "b", "c"]])
def test_changed_stacks_refuses_what_is_not_base_head_or_all(args: list[str]) -> None:
    ran = changed_stacks(ROOT, *args)
    assert (ran.returncode, ran.stdout) == (2, "")
    assert ran.stderr.startswith("usage: ")


def test_changed_stacks_fails_on_a_commit_it_does_not_have(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    stacks_repository(repo)
    ran = changed_stacks(repo, "1" * 40)
    assert ran.returncode != 0 and ran.stdout == ""


# -- actionlint, which scripts/test.sh lints the workflows with ---------------------------------------------------


def test_actionlint_is_pinned_and_stamped_with_its_version() -> None:
    tools = (ROOT / "scripts" / "e2e-tools.sh").read_text()
    [version] = re.findall(r"^actionlint_version=(v[0-9.]+)$", tools, re.MULTILINE)
    go_mod = (ROOT / "toolchain" / "actionlint" / "go.mod").read_text()
    assert re.search(rf"^require github\.com/rhysd/actionlint {re.escape(version)}$", go_mod, re.MULTILINE)
    assert 'build actionlint "actionlint" build_actionlint' in tools
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    command: Any = re.search(r'^"\$tools/actionlint" (.*)$', test_sh, re.MULTILINE)
    assert (
        command
        and command.group(1) == '-shellcheck "$VENV/bin/shellcheck" -pyflakes "$pyflakes" .github/workflows/*.yml'
    )
