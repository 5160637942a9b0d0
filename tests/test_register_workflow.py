"""The push workflow (.github/workflows/register.yml): `scripts/up.sh <stack> --yes` (the main job) for each stack a
push to main changes, or by hand for one stack or all; one job per stack that no other stack's failure stops and no
later run cancels; the Pulumi CLI the suite tests; only the three repository secrets of preview.yml. Its `run:` steps
run as written (tests/workflow_steps.py), `pulumi` and `kubectl` being stand-ins."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from workflow_steps import (
    Runner,
    check_step_table,
    checkout,
    commit_change,
    load,
    run_kubeconfig_step,
    stacks_repository,
    step,
    steps,
    suite_pulumi_version,
    triggers,
    uses,
)

from lab.engine_double import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "register.yml"
SECRETS = {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENTS"}


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return load(WORKFLOW.name)


def test_runs_on_pushes_to_main_that_change_a_stack_and_by_hand(workflow: dict[Any, Any]) -> None:
    on = triggers(workflow)
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert on["workflow_dispatch"]["inputs"] == {
        "stack": {
            "description": "The stack to register (stacks/Pulumi.<stack>.yaml); empty: every stack",
            "type": "string",
            "required": False,
            "default": "",
        }
    }


def test_reads_the_repository_only(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job


def test_one_job_per_stack_that_no_failure_stops_and_no_run_cancels(workflow: dict[Any, Any]) -> None:
    register = workflow["jobs"]["register"]
    assert register["needs"] == "stacks"
    assert register["strategy"]["fail-fast"] is False
    assert register["strategy"]["matrix"] == {"stack": "${{ fromJSON(needs.stacks.outputs.stacks) }}"}
    # One update of a stack at a time across runs, and a running `pulumi up` is never cancelled.
    assert register["concurrency"] == {"group": "register-${{ matrix.stack }}", "cancel-in-progress": False}
    assert "concurrency" not in workflow  # a workflow-wide group would queue (or cancel) other stacks' runs
    # No stack to register (a push that only deletes stack files): no job, rather than a matrix of nothing.
    assert register["if"] == "needs.stacks.outputs.stacks != '[]'"
    assert workflow["jobs"]["stacks"]["outputs"] == {"stacks": "${{ steps.stacks.outputs.stacks }}"}
    assert step(workflow, "stacks", "stacks to register")["id"] == "stacks"
    assert set(workflow["jobs"]) == {"stacks", "register"}


def test_registers_on_a_runner_that_reaches_the_clusters(workflow: dict[Any, Any]) -> None:
    assert (
        workflow["jobs"]["register"]["runs-on"]
        == "${{ vars.REGISTER_RUNNER || vars.PREVIEW_RUNNER || 'ubuntu-latest' }}"
    )
    assert load("preview.yml")["jobs"]["preview"]["runs-on"] == "${{ vars.PREVIEW_RUNNER || 'ubuntu-latest' }}"


def test_secrets_are_preview_ymls_three(workflow: dict[Any, Any]) -> None:
    used = set(re.findall(r"\$\{\{\s*secrets\.(\w+)\s*}}", WORKFLOW.read_text()))
    assert used == SECRETS
    # Each only in the env: of the step that needs it.
    where = {
        (job, s.get("name", s.get("uses"))): set(re.findall(r"secrets\.(\w+)", json.dumps(s)))
        for job in workflow["jobs"]
        for s in steps(workflow, job)
    }
    assert {key: found for key, found in where.items() if found} == {
        ("register", "kubeconfig"): {"KUBECONFIG_CONTENTS"},
        ("register", "register"): {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"},
    }


def test_the_pulumi_cli_is_only_installed_at_the_version_the_suite_tests(workflow: dict[Any, Any]) -> None:
    """`pulumi/actions` without `command` installs the CLI and stops (tests/workflow_steps.py,
    PULUMI_ACTION_INPUTS); scripts/up.sh runs it, after it is on PATH."""
    [pulumi] = uses(workflow, "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v6"
    assert pulumi["with"] == {"pulumi-version": suite_pulumi_version()} == {"pulumi-version": "v3.274.1"}
    assert "env" not in pulumi
    register = steps(workflow, "register")
    assert register.index(pulumi) < register.index(step(workflow, "register", "register"))


def test_python_and_kubectl_as_for_the_preview(workflow: dict[Any, Any]) -> None:
    preview = {s["uses"]: s["with"] for s in steps(load("preview.yml"), "preview") if "uses" in s and "with" in s}
    ours = {s["uses"]: s["with"] for s in steps(workflow, "register") if "uses" in s and "with" in s}
    assert ours["actions/setup-python@v5"]["python-version"] == preview["actions/setup-python@v5"]["python-version"]
    assert ours["actions/setup-python@v5"]["python-version"] == "3.11"
    assert ours["azure/setup-kubectl@v4"] == preview["azure/setup-kubectl@v4"] == {"version": "v1.32.2"}
    # The pip cache is keyed by what `pulumi install` installs from (requirements.txt, pinned by constraints.txt).
    assert ours["actions/setup-python@v5"]["cache-dependency-path"].split() == ["constraints.txt", "requirements.txt"]
    assert steps(workflow, "register")[0] == {"uses": "actions/checkout@v4"}
    # The stacks job diffs the push's range: it needs the history, up to the previous head.
    assert steps(workflow, "stacks")[0] == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}


def test_the_register_step_is_the_main_job(workflow: dict[Any, Any]) -> None:
    register = step(workflow, "register", "register")
    assert register["run"] == 'scripts/up.sh "$STACK" --yes'
    assert register["env"] == {
        "PULUMI_BACKEND_URL": "${{ secrets.PULUMI_BACKEND_URL }}",
        "PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
        "TMPDIR": "${{ runner.temp }}",
        "STACK": "${{ matrix.stack }}",
    }
    assert steps(workflow, "register")[-1] == register


# -- which stacks a push registers -------------------------------------------------------------------------------


def _glob(pattern: str) -> re.Pattern[str]:
    """A `paths:` filter pattern of GitHub Actions: `*` matches within a folder, `**` across folders."""
    parts = [".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in re.split(r"(\*\*|\*)", pattern)]
    return re.compile("".join(parts))


@pytest.mark.parametrize(
    "path",
    [
        "stacks/Pulumi.dev.yaml",
        "stacks/Pulumi.new.yaml",
        "Pulumi.yaml",
        "__main__.py",
        "constraints.txt",
        "requirements.txt",
        "pyproject.toml",
        "components/registration.py",
        "components/gloo_mesh_registration/shell/wait.sh",
        "policy/__main__.py",
        "README.md",
        "requirements-dev.txt",
        "scripts/up.sh",
        "tests/test_stacks.py",
        "lab/cluster.py",
        "stacks/README.md",
        "stacks/old/Pulumi.dev.yaml",
        "Pulumi.dev.yaml",
        "Pulumi.yaml.orig",
        "policy.md",
    ],
)
def test_the_push_filter_starts_a_run_exactly_when_a_stack_is_selected(
    workflow: dict[Any, Any], tmp_path: Path, path: str
) -> None:
    """A run is started (the `paths:` filter) for a pushed file exactly when scripts/changed_stacks.sh selects a
    stack for it: no run that registers nothing, no change that a run would register left without one."""
    repo = tmp_path / "repo"
    base = stacks_repository(repo)
    commit_change(repo, base, (path, "changed\n"))
    selected = subprocess.run(
        ["bash", "scripts/changed_stacks.sh", base], cwd=repo, check=True, capture_output=True, text=True
    ).stdout
    filtered = any(_glob(p).fullmatch(path) for p in triggers(workflow)["push"]["paths"])
    assert filtered == (json.loads(selected) != []), (path, selected)


def _stacks(
    workflow: dict[Any, Any],
    tmp_path: Path,
    repo: Path,
    event: str,
    before: str,
    stack: str,
    ref: str = "refs/heads/main",
) -> Any:
    runner = Runner(tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}", event=event, ref=ref)
    return runner.run(step(workflow, "stacks", "stacks to register"), cwd=repo, env={"BEFORE": before, "STACK": stack})


def _registered(workflow: dict[Any, Any], tmp_path: Path, repo: Path, event: str, before: str, stack: str) -> Any:
    ran = _stacks(workflow, tmp_path, repo, event, before, stack)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert set(ran.outputs) == {"stacks"}
    assert f"stacks to register: {ran.outputs['stacks']}" in ran.stdout
    return json.loads(ran.outputs["stacks"])


def test_stacks_to_register(workflow: dict[Any, Any], tmp_path: Path) -> None:
    the_step = step(workflow, "stacks", "stacks to register")
    assert the_step["env"] == {"STACK": "${{ inputs.stack }}", "BEFORE": "${{ github.event.before }}"}
    repo = tmp_path / "repo"
    base = stacks_repository(repo)

    def push(*edits: tuple[str, str | None], before: str = base) -> Any:
        commit_change(repo, base, *edits)
        return _registered(workflow, tmp_path, repo, "push", before, "")  # inputs.stack: empty on a push

    assert push(("stacks/Pulumi.dev.yaml", "config: {a: 1}\n")) == ["dev"]
    assert push(("stacks/Pulumi.prod.yaml", "config: {}\n")) == ["prod"]
    assert push(("components/registration.py", "# changed\n")) == ["dev", "fleet-example"]
    assert push(("stacks/Pulumi.dev.yaml", None)) == []  # the register job is skipped
    assert push(("README.md", "docs\n")) == []
    # The previous head is not in the history: a new branch (000...) or a force push. Every stack.
    assert push(("README.md", "docs\n"), before="0" * 40) == ["dev", "fleet-example"]
    assert push(("README.md", "docs\n"), before="1" * 40) == ["dev", "fleet-example"]

    # By hand: one stack, or every stack (github.event.before is empty).
    commit_change(repo, base, ("stacks/Pulumi.prod.yaml", "config: {}\n"))
    assert _registered(workflow, tmp_path, repo, "workflow_dispatch", "", "") == ["dev", "fleet-example", "prod"]
    assert _registered(workflow, tmp_path, repo, "workflow_dispatch", "", "prod") == ["prod"]
    for wrong in ("nope", "Pulumi.dev.yaml", 'dev"]', "dev fleet-example", "*"):
        ran = _stacks(workflow, tmp_path, repo, "workflow_dispatch", "", wrong)
        assert ran.returncode == 1 and ran.outputs == {}, wrong
        assert ran.stdout == (
            f'::error::there is no stacks/Pulumi.{wrong}.yaml; stacks here: ["dev","fleet-example","prod"]\n'
        )
    # By hand from another branch: refused, nothing selected.
    ran = _stacks(workflow, tmp_path, repo, "workflow_dispatch", "", "prod", ref="refs/heads/feature")
    assert ran.returncode == 1 and ran.outputs == {}
    assert (
        ran.stdout == "::error::register runs from main only (this run is of refs/heads/feature): start it from main\n"
    )


# -- the register job's run: steps ------------------------------------------------------------------------------


def test_kubeconfig(workflow: dict[Any, Any], tmp_path: Path) -> None:
    run_kubeconfig_step(Runner(tmp_path / "runner"), step(workflow, "register", "kubeconfig"), tmp_path)


PULUMI_INSTALL = """
if sys.argv[1:] == ["install"]:  # what `pulumi install` makes: .venv from requirements.txt (the Pulumi SDK, PyYAML)
    os.symlink({venv!r}, ".venv")
"""


def test_register(workflow: dict[Any, Any], tmp_path: Path) -> None:
    """The kubeconfig step, then the register step, in a copy of the work tree as actions/checkout gives it, with
    stand-ins for `pulumi` (which records what it was given and, for `install`, makes .venv) and `kubectl`."""
    repo = checkout(tmp_path / "checkout")
    runner = Runner(tmp_path / "runner")
    # The suite's virtualenv as the checkout's .venv (a link to its python alone would run without its packages).
    runner.stand_in("pulumi", body=PULUMI_INSTALL.format(venv=str(Path(sys.executable).parent.parent)))
    runner.stand_in("kubectl", body='print(json.dumps({"clientVersion": {"gitVersion": "v1.32.2"}}))')
    run_kubeconfig_step(runner, step(workflow, "register", "kubeconfig"), repo)
    env = {
        "PULUMI_BACKEND_URL": "s3://bucket/gloo-mesh",
        "PULUMI_CONFIG_PASSPHRASE": "passphrase-standin",
        "TMPDIR": str(runner.temp),
        "STACK": "fleet-example",
    }
    ran = runner.run(step(workflow, "register", "register"), cwd=repo, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    pulumi = ran.calls_of("pulumi")
    assert [c.argv for c in pulumi] == [
        ["pulumi", "install"],
        ["pulumi", "stack", "select", "--create", "--secrets-provider", "passphrase", "fleet-example"],
        # Three clusters in stacks/Pulumi.fleet-example.yaml: 4 per cluster, at least 16 (scripts/up.sh).
        ["pulumi", "up", "--stack", "fleet-example", "--parallel", "16", "--yes"],
    ]
    tmpdirs = set()
    for call in pulumi:
        assert Path(call.cwd) == repo
        assert call.env["PULUMI_BACKEND_URL"] == "s3://bucket/gloo-mesh"
        assert call.env["PULUMI_CONFIG_PASSPHRASE"] == "passphrase-standin"
        assert call.env["KUBECONFIG"] == str(runner.temp / "kubeconfig")
        tmpdirs.add(call.env["TMPDIR"])
    # up.sh runs pulumi with a TMPDIR of its own in the job's temp folder, and removes it when it ends.
    [tmpdir] = tmpdirs
    assert Path(tmpdir).parent == runner.temp and Path(tmpdir).name.startswith("gloo-registration.")
    assert not Path(tmpdir).exists()
    assert ran.env == {} and ran.outputs == {}


RUN_HERE = {
    ("stacks", "stacks to register"): test_stacks_to_register,
    ("register", "kubeconfig"): test_kubeconfig,
    ("register", "register"): test_register,
}
"""Each `run:` step of the workflow (job, name) and the test that runs it as written."""
NOT_RUN_HERE: dict[tuple[str, str], str] = {}
"""Each `run:` step that cannot run here, with the reason: none."""


def test_every_run_step_runs_here_or_says_why_not(workflow: dict[Any, Any]) -> None:
    check_step_table(workflow, RUN_HERE, NOT_RUN_HERE)
