"""The pull-request workflow (.github/workflows/preview.yml): valid YAML, only documented inputs of the official
Pulumi action, the README's test command first, and a stack selection that previews what a pull request changes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engine_double import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"

PULUMI_ACTION_INPUTS = frozenset(
    {
        "command",
        "stack-name",
        "pulumi-version",
        "pulumi-version-file",
        "work-dir",
        "comment-on-pr",
        "comment-on-pr-number",
        "comment-on-summary",
        "github-token",
        "cloud-url",
        "secrets-provider",
        "parallel",
        "message",
        "config-map",
        "expect-no-changes",
        "diff",
        "replace",
        "target",
        "target-dependents",
        "policyPacks",
        "policyPackConfigs",
        "refresh",
        "upsert",
        "remove",
        "edit-pr-comment",
        "color",
        "exclude-protected",
        "plan",
        "suppress-outputs",
        "suppress-progress",
        "always-include-summary",
    }
)
"""The `inputs:` of pulumi/actions' action.yml at commit 4ddd4329226d5f7fdca0bc1fe3a0a659f4de25fe (node20 runtime,
`refresh` meaning `--refresh` as of v6.0.0 per its CHANGELOG); `src/config.ts` reads `policyPacks` as a list of
`--policy-pack` paths and `policyPackConfigs` as the matching `--policy-pack-config` files."""
SECRETS = {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENTS", "GITHUB_TOKEN"}


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def pulumi_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [
        s
        for job in workflow["jobs"]
        for s in steps(workflow, job)
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]


def test_runs_on_pull_requests_and_may_comment(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert isinstance(triggers, dict)
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_every_action_is_pinned_to_a_major_version(workflow: dict[Any, Any]) -> None:
    for job in workflow["jobs"]:
        for step in steps(workflow, job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]


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


# -- which stacks a pull request previews ------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _selected(workflow: dict[Any, Any], repo: Path, base: str) -> list[str]:
    [script] = [s["run"] for s in steps(workflow, "stacks") if s.get("id") == "changed"]
    output = repo / "github_output"
    output.write_text("")
    env = {**os.environ, "BASE": base, "GITHUB_OUTPUT": str(output)}
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    [line] = output.read_text().splitlines()
    key, _, value = line.partition("=")
    assert key == "stacks"
    selected: list[str] = json.loads(value)
    return selected


def test_stack_selection(workflow: dict[Any, Any], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "components").mkdir()
    for stack in ("dev", "fleet-example"):
        (repo / "stacks" / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (repo / "components" / "registration.py").write_text("")
    (repo / "README.md").write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")

    def change(*edits: tuple[str, str | None]) -> list[str]:
        _git(repo, "reset", "-q", "--hard", base)
        for path, text in edits:
            if text is None:
                (repo / path).unlink()
            else:
                (repo / path).write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "change", "--allow-empty")
        return _selected(workflow, repo, base)

    assert change(("stacks/Pulumi.dev.yaml", "config: {a: 1}\n")) == ["dev"]
    assert change(("stacks/Pulumi.prod.yaml", "config: {}\n")) == ["prod"]
    assert change(("README.md", "docs\n")) == []
    assert change(("stacks/Pulumi.dev.yaml", None)) == []
    assert change(("components/registration.py", "# changed\n")) == ["dev", "fleet-example"]
