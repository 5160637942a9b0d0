"""The pull-request workflow (.github/workflows/preview.yml): valid YAML, only documented inputs of the official
Pulumi action, the README's test command first, a stack selection that previews what a pull request changes, and
its `run:` steps run as written (tests/workflow_steps.py) but the suite itself."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from workflow_steps import (
    PULUMI_ACTION_INPUTS,
    Runner,
    check_step_table,
    commit_change,
    load,
    run_kubeconfig_step,
    stacks_repository,
    stand_in,
    step,
    steps,
    triggers,
    uses,
)

from lab.engine_double import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
SECRETS = {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENTS", "GITHUB_TOKEN"}


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return load(WORKFLOW.name)


def pulumi_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return uses(workflow, "pulumi/actions")


def test_runs_on_pull_requests_and_may_comment(workflow: dict[Any, Any]) -> None:
    assert "pull_request" in triggers(workflow)
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_the_pulumi_action_gets_only_documented_inputs(workflow: dict[Any, Any]) -> None:
    [step] = pulumi_steps(workflow)
    assert step["uses"] == "pulumi/actions@v6"
    assert set(step["with"]) <= PULUMI_ACTION_INPUTS, set(step["with"]) - PULUMI_ACTION_INPUTS
    assert step["with"]["command"] == "preview" and step["with"]["diff"] is True
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert (ROOT / step["with"]["work-dir"] / step["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()


def test_the_preview_keeps_the_providers_kubeconfig_copies_in_the_jobs_temp_folder(workflow: dict[Any, Any]) -> None:
    """The kubernetes provider writes each kubeconfig it is given into $TMPDIR and never deletes it
    (tests/e2e/test_main_job.py); a self-hosted runner's /tmp would keep every one."""
    [step] = pulumi_steps(workflow)
    assert step["env"]["TMPDIR"] == "${{ runner.temp }}"


def test_tests_run_first_and_previews_need_them(workflow: dict[Any, Any]) -> None:
    runs = [s.get("run") for s in steps(workflow, "test")]
    uses = [s.get("uses", "") for s in steps(workflow, "test")]
    assert runs[-1] == "scripts/test.sh" and (ROOT / "scripts" / "test.sh").is_file()
    assert uses[0].startswith("actions/checkout@") and uses[1].startswith("actions/setup-python@")
    preview = workflow["jobs"]["preview"]
    assert set(preview["needs"]) == {"test", "stacks"}
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    # The action comments only after a preview that succeeded; a failed one is reported by the last step.
    last = steps(workflow, "preview")[-1]
    assert last["if"] == "failure()" and last["run"].startswith("gh pr comment")


def test_secrets_come_from_repository_secrets(workflow: dict[Any, Any]) -> None:
    used = set(re.findall(r"\$\{\{\s*secrets\.(\w+)\s*}}", WORKFLOW.read_text()))
    assert used == SECRETS
    [step] = pulumi_steps(workflow)
    assert step["env"]["PULUMI_BACKEND_URL"] == step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"


# -- the run: steps, as written ----------------------------------------------------------------------------------


def _selected(workflow: dict[Any, Any], repo: Path, base: str, tmp_path: Path) -> list[str]:
    """The stacks the `stacks to preview` step writes to its output, run as written in ``repo`` (a pull request's
    merge commit checked out, as actions/checkout does) against the pull request's base ``base``."""
    runner = Runner(tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}", event="pull_request")
    ran = runner.run(step(workflow, "stacks", "stacks to preview"), cwd=repo, env={"BASE": base})
    assert ran.returncode == 0, ran.stderr
    assert set(ran.outputs) == {"stacks"}
    # The job's output is this step's: the matrix of the preview job.
    assert workflow["jobs"]["stacks"]["outputs"]["stacks"] == "${{ steps.changed.outputs.stacks }}"
    assert step(workflow, "stacks", "stacks to preview")["id"] == "changed"
    assert f"stacks to preview: {ran.outputs['stacks']}" in ran.stdout
    selected: list[str] = json.loads(ran.outputs["stacks"])
    return selected


def test_stack_selection(workflow: dict[Any, Any], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = stacks_repository(repo)

    def change(*edits: tuple[str, str | None]) -> list[str]:
        commit_change(repo, base, *edits)
        return _selected(workflow, repo, base, tmp_path)

    assert change(("stacks/Pulumi.dev.yaml", "config: {a: 1}\n")) == ["dev"]
    assert change(("stacks/Pulumi.prod.yaml", "config: {}\n")) == ["prod"]
    assert change(("README.md", "docs\n")) == []
    assert change(("stacks/Pulumi.dev.yaml", None)) == []
    assert change(("components/registration.py", "# changed\n")) == ["dev", "fleet-example"]
    assert change(("components/registration.py", "# changed\n"), ("stacks/Pulumi.dev.yaml", None)) == ["fleet-example"]


def test_program_and_policy_pack_environments(workflow: dict[Any, Any], tmp_path: Path) -> None:
    """A venv for the program and one for the policy pack (its PulumiPolicy.yaml names `.venv` in its folder), each
    with its own requirements. `python` is a stand-in (the real step installs from PyPI): `-m venv DIR` makes
    DIR/bin/pip, a stand-in too."""
    runner = Runner(tmp_path / "runner", event="pull_request")
    pip = stand_in(tmp_path / "templates", "pip", runner.log)
    runner.stand_in(
        "python",
        body=(
            "if sys.argv[1:3] == ['-m', 'venv']:\n"
            "    import shutil\n"
            "    os.makedirs(os.path.join(sys.argv[3], 'bin'))\n"
            f"    shutil.copy2({str(pip)!r}, os.path.join(sys.argv[3], 'bin', 'pip'))\n"
        ),
    )
    repo = tmp_path / "checkout"
    repo.mkdir()
    (repo / "policy").mkdir()
    (repo / "requirements.txt").write_text((ROOT / "requirements.txt").read_text())
    (repo / "policy" / "requirements.txt").write_text((ROOT / "policy" / "requirements.txt").read_text())
    ran = runner.run(step(workflow, "preview", "program and policy pack environments"), cwd=repo)
    assert ran.returncode == 0, ran.stderr
    assert [(c.argv, Path(c.cwd)) for c in ran.calls] == [
        (["python", "-m", "venv", ".venv"], repo),
        (["pip", "install", "--quiet", "-r", "requirements.txt"], repo),
        (["python", "-m", "venv", ".venv"], repo / "policy"),
        (["pip", "install", "--quiet", "-r", "requirements.txt"], repo / "policy"),
    ]
    assert (repo / ".venv" / "bin" / "pip").is_file() and (repo / "policy" / ".venv" / "bin" / "pip").is_file()
    policy = (ROOT / "policy" / "PulumiPolicy.yaml").read_text()
    assert re.search(r"^\s+virtualenv: \.venv$", policy, re.MULTILINE)


def test_kubeconfig(workflow: dict[Any, Any], tmp_path: Path) -> None:
    run_kubeconfig_step(
        Runner(tmp_path / "runner", event="pull_request"), step(workflow, "preview", "kubeconfig"), tmp_path
    )


def test_comment_on_a_failed_preview(workflow: dict[Any, Any], tmp_path: Path) -> None:
    runner = Runner(tmp_path / "runner", event="pull_request")
    runner.stand_in("gh")
    the_step = step(workflow, "preview", "comment on a failed preview")
    run_url = "https://github.com/owner/repo/actions/runs/7"
    env = {"GH_TOKEN": "token-standin", "PR": "42", "STACK": "fleet-example", "RUN_URL": run_url}
    ran = runner.run(the_step, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    [call] = ran.calls
    assert call.argv == [
        "gh",
        "pr",
        "comment",
        "42",
        "--repo",
        "owner/repo",
        "--body",
        "#### :x: `preview` of stack `fleet-example` failed\n"
        f"A mandatory policy violation or an error stopped the preview; the violations and the error are in the log: {run_url}",
    ]
    assert call.env["GH_TOKEN"] == "token-standin"
    assert the_step["env"] == {
        "GH_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
        "PR": "${{ github.event.pull_request.number }}",
        "STACK": "${{ matrix.stack }}",
        "RUN_URL": "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}",
    }


RUN_HERE = {
    ("stacks", "stacks to preview"): test_stack_selection,
    ("preview", "program and policy pack environments"): test_program_and_policy_pack_environments,
    ("preview", "kubeconfig"): test_kubeconfig,
    ("preview", "comment on a failed preview"): test_comment_on_a_failed_preview,
}
"""Each `run:` step of the workflow (job, name) that runs here, and the test that runs it as written."""
NOT_RUN_HERE = {
    ("test", "scripts/test.sh"): "the suite itself: this test is part of it (it would run itself, and the real-engine "
    "suite's 15 minutes); its checks are scripts/test.sh's own",
}
"""Each `run:` step that cannot run here, with the reason."""


def test_every_run_step_runs_here_or_says_why_not(workflow: dict[Any, Any]) -> None:
    check_step_table(workflow, RUN_HERE, NOT_RUN_HERE)
