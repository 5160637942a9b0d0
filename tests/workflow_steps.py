"""The workflows' `run:` steps, run as written: what GitHub's runner gives a step (``bash --noprofile --norc -eo
pipefail`` on the step's script in a file; ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_STEP_SUMMARY``, ``RUNNER_TEMP``
as files and folders; the step's ``env:``, with stand-in values for what the runner would put in for its
expressions), and stand-ins for the programs a step calls that cannot run here (``pulumi``, ``gh``, ...), each of
which records its arguments, working folder and environment. Each workflow's test module says which steps it runs
here and which it cannot, with the reason (:func:`check_step_table`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.engine_double import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"

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
`--policy-pack` paths and `policyPackConfigs` as the matching `--policy-pack-config` files. Without `command` the
action only installs the CLI (`pulumi-version`, default ^3) and puts it on PATH: `makeInstallationConfig` in
`src/config.ts` ("the user intends to download the Pulumi CLI without running any other Pulumi operations. We expect
command NOT to be provided"), added by pulumi/actions#834, "Support install-only workflow"."""


def load(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert isinstance(on, dict)
    return on


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def uses(workflow: dict[Any, Any], action: str) -> list[dict[str, Any]]:
    """The steps of every job that use ``action`` (``owner/name``), any version."""
    return [
        s for job in workflow["jobs"] for s in steps(workflow, job) if str(s.get("uses", "")).startswith(action + "@")
    ]


def suite_pulumi_version() -> str:
    """The Pulumi CLI the real-engine suite builds and tests: ``pulumi_version`` in scripts/e2e-tools.sh."""
    [version] = re.findall(r"^pulumi_version=(v[0-9.]+)$", (ROOT / "scripts" / "e2e-tools.sh").read_text(), re.M)
    return str(version)


StepKey = tuple[str, str]
"""A `run:` step: its job and its name (its id, or its script when it has neither)."""


def step_key(job: str, step: Mapping[str, Any]) -> StepKey:
    return (job, str(step.get("name") or step.get("id") or step["run"]))


def run_steps(workflow: dict[Any, Any]) -> Iterator[tuple[StepKey, dict[str, Any]]]:
    for job in workflow["jobs"]:
        for s in steps(workflow, job):
            if "run" in s:
                yield step_key(job, s), s


def step(workflow: dict[Any, Any], job: str, name: str) -> dict[str, Any]:
    [found] = [s for key, s in run_steps(workflow) if key == (job, name)]
    return found


def check_step_table(
    workflow: dict[Any, Any], run_here: Mapping[StepKey, Callable[..., None]], not_run_here: Mapping[StepKey, str]
) -> None:
    """Every `run:` step of ``workflow`` is either run here (by the test named for it) or listed as not runnable
    here with the reason, and nothing else is listed: a new step must be added to one of the two."""
    keys = [key for key, _ in run_steps(workflow)]
    assert len(keys) == len(set(keys)), f"two run: steps share a name: {keys}"
    assert not set(run_here) & set(not_run_here)
    missing = set(keys) - set(run_here) - set(not_run_here)
    assert not missing, f"run: steps neither run by a test nor listed as not runnable here: {sorted(missing)}"
    stale = (set(run_here) | set(not_run_here)) - set(keys)
    assert not stale, f"listed steps the workflow does not have: {sorted(stale)}"
    for key, reason in not_run_here.items():
        assert reason.strip(), key


# -- running a step --------------------------------------------------------------------------------------------


_STAND_IN = """#!{python}
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as log:
    log.write(json.dumps({{"argv": [{name!r}, *sys.argv[1:]], "cwd": os.getcwd(), "env": dict(os.environ)}}) + "\\n")
{body}
"""


def stand_in(folder: Path, name: str, log: Path, body: str = "") -> Path:
    """An executable ``folder/name`` that appends its argv (``name`` first), working folder and environment to
    ``log`` as one JSON line, then runs ``body`` (Python, with ``sys``, ``os`` and ``json`` imported)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(_STAND_IN.format(python=sys.executable, log=str(log), name=name, body=body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@dataclass
class Call:
    argv: list[str]
    cwd: str
    env: dict[str, str]


@dataclass
class StepRun:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    env: dict[str, str]
    """What the step appended to ``GITHUB_ENV``: the environment of the job's later steps."""
    summary: str
    calls: list[Call] = field(default_factory=list)

    def calls_of(self, tool: str) -> list[Call]:
        return [c for c in self.calls if c.argv[0] == tool]


def _read_commands_file(text: str) -> dict[str, str]:
    """``GITHUB_OUTPUT`` / ``GITHUB_ENV``: ``name=value`` lines, or ``name<<DELIMITER`` ... ``DELIMITER``."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, _, delimiter = line.partition("<<")
            body: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"{name}: no closing {delimiter}")
            values[name] = "\n".join(body)
        else:
            name, eq, value = line.partition("=")
            assert eq, f"not a name=value line: {line!r}"
            values[name] = value
    return values


class Runner:
    """The runner of one job: its temp folder, its files for outputs, environment and summary, a folder of
    stand-ins put first on PATH, and the environment that earlier steps wrote to ``GITHUB_ENV``."""

    def __init__(
        self, tmp: Path, *, event: str = "push", repository: str = "owner/repo", ref: str = "refs/heads/main"
    ) -> None:
        self.tmp = tmp
        self.temp = tmp / "runner-temp"
        self.temp.mkdir(parents=True)
        self.tools = tmp / "stand-ins"
        self.tools.mkdir()
        self.log = tmp / "calls.jsonl"
        self.job_env: dict[str, str] = {}
        self.base = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "PULUMI_"))},
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_REF": ref,
            "GITHUB_REPOSITORY": repository,
            "RUNNER_TEMP": str(self.temp),
        }

    def stand_in(self, name: str, body: str = "") -> Path:
        return stand_in(self.tools, name, self.log, body)

    def run(self, step: Mapping[str, Any], *, cwd: Path, env: Mapping[str, str] | None = None) -> StepRun:
        """Runs ``step``'s script as written in ``cwd``. ``env`` gives the value of each of the step's ``env:``
        entries (all of them, no others: the runner would put in the values of their expressions)."""
        script = step["run"]
        assert "${{" not in script, "expressions go through the step's env:, not into the script"
        # The workflows' default shell (bash, run as below) in the checkout's root: what this runs them as.
        assert "working-directory" not in step and step.get("shell", "bash") == "bash"
        values = dict(env or {})
        assert set(values) == set(step.get("env", {})), (set(values), set(step.get("env", {})))
        for name, value in step.get("env", {}).items():
            if "${{" not in str(value):  # a literal in the workflow: the runner gives it as written
                assert values[name] == str(value), name
        folder = self.tmp / f"step-{len(list(self.tmp.glob('step-*')))}"
        folder.mkdir()
        output, job_env, summary, path_file = (folder / n for n in ("output", "env", "summary", "path"))
        for f in (output, job_env, summary, path_file):
            f.write_text("")
        script_file = folder / "script.sh"
        script_file.write_text(script)
        environment = {
            **self.base,
            **self.job_env,
            "PATH": f"{self.tools}{os.pathsep}{self.job_env.get('PATH', self.base['PATH'])}",
            "GITHUB_WORKSPACE": str(cwd),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_ENV": str(job_env),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_PATH": str(path_file),
            **values,
        }
        before = len(self.log.read_text().splitlines()) if self.log.exists() else 0
        ran = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        written_env = _read_commands_file(job_env.read_text())
        self.job_env.update(written_env)
        calls = []
        if self.log.exists():
            for line in self.log.read_text().splitlines()[before:]:
                record = json.loads(line)
                calls.append(Call(record["argv"], record["cwd"], record["env"]))
        return StepRun(
            returncode=ran.returncode,
            stdout=ran.stdout,
            stderr=ran.stderr,
            outputs=_read_commands_file(output.read_text()),
            env=written_env,
            summary=summary.read_text(),
            calls=calls,
        )


KUBECONFIG = """apiVersion: v1
kind: Config
# a stand-in: %s, backslashes \\n, $(not run), `not run` and 'quotes' are kept as they are
clusters: []"""


def run_kubeconfig_step(runner: Runner, step: dict[str, Any], cwd: Path) -> None:
    """The kubeconfig step (preview.yml's and register.yml's, the same): the secret's contents in a file only the
    runner's user can read, in the job's temp folder, named by KUBECONFIG for the job's later steps."""
    ran = runner.run(step, cwd=cwd, env={"KUBECONFIG_CONTENTS": KUBECONFIG})
    assert ran.returncode == 0, ran.stderr
    written = runner.temp / "kubeconfig"
    assert ran.env == {"KUBECONFIG": str(written)}
    assert written.read_text() == KUBECONFIG + "\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert ran.calls == [] and ran.outputs == {}
    assert step["env"] == {"KUBECONFIG_CONTENTS": "${{ secrets.KUBECONFIG_CONTENTS }}"}


# -- checkouts -------------------------------------------------------------------------------------------------


def checkout(destination: Path) -> Path:
    """A copy of the work tree's files (tracked and not ignored), as actions/checkout would give the job."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists():  # deleted in the work tree, not yet committed
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def stacks_repository(repo: Path, stacks: tuple[str, ...] = ("dev", "fleet-example")) -> str:
    """A scratch git repository with stack files, a component file, a README and scripts/changed_stacks.sh (the
    stack selection the workflows run), one commit; returns that commit."""
    (repo / "stacks").mkdir(parents=True)
    (repo / "components").mkdir()
    (repo / "scripts").mkdir()
    for stack in stacks:
        (repo / "stacks" / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (repo / "components" / "registration.py").write_text("")
    (repo / "README.md").write_text("")
    shutil.copy2(ROOT / "scripts" / "changed_stacks.sh", repo / "scripts" / "changed_stacks.sh")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    return git(repo, "rev-parse", "HEAD")


def commit_change(repo: Path, base: str, *edits: tuple[str, str | None]) -> str:
    """Resets ``repo`` to ``base``, writes (or with None deletes) each file, commits; returns the new commit."""
    git(repo, "reset", "-q", "--hard", base)
    for path, text in edits:
        if text is None:
            (repo / path).unlink()
        else:
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change", "--allow-empty")
    return git(repo, "rev-parse", "HEAD")
