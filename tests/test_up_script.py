"""``scripts/up.sh``'s choice of ``--parallel``, run as written with stand-ins for ``pulumi`` and ``kubectl`` that
record their arguments (the real CLI runs the script in ``tests/e2e/test_main_job.py``).

Pulumi's default parallelism is 4 x the runner's cores: on a 2-core CI runner it would queue a fleet's agent
releases, each of which waits for its agent (BENCHMARKS.md measures it). The script passes 4 per cluster of the
stack file, at least 16, unless the user chose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def checkout(tmp_path: Path, clusters: int) -> Path:
    """A copy of what up.sh reads: itself, the fleet command's module (the ``--parallel`` rule), the kubectl check,
    a stack file with ``clusters`` entries, a ``.venv``."""
    folder = tmp_path / "checkout"
    (folder / "scripts").mkdir(parents=True)
    for script in ("up.sh", "fleet.py"):
        shutil.copy(ROOT / "scripts" / script, folder / "scripts" / script)
    shell = folder / "components" / "gloo_mesh_registration" / "shell"
    shell.mkdir(parents=True)
    shutil.copy(ROOT / "components" / "gloo_mesh_registration" / "shell" / "require_kubectl.sh", shell)
    (folder / "stacks").mkdir()
    entries = [{"name": f"c{i}", "context": f"ctx-{i}"} for i in range(clusters)]
    config = {
        "config": {"gloo-mesh-registration:management": {"context": "m"}, "gloo-mesh-registration:clusters": entries}
    }
    (folder / "stacks" / "Pulumi.fleet.yaml").write_text(yaml.safe_dump(config))
    # What `pulumi install` makes, with the Pulumi SDK and PyYAML that scripts/fleet.py imports: the suite's own.
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return folder


def up_arguments(folder: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The arguments ``pulumi up`` got from ``scripts/up.sh fleet <args>``."""
    tools = folder / "tools"
    tools.mkdir(exist_ok=True)
    log = folder / "pulumi.log"
    (tools / "pulumi").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    (tools / "kubectl").write_text('#!/bin/sh\necho \'{"clientVersion": {"gitVersion": "v1.32.4"}}\'\n')
    for tool in ("pulumi", "kubectl"):
        (tools / tool).chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "PULUMI_PARALLEL"}
    environment.update({"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(folder), **(env or {})})
    ran = subprocess.run(
        ["bash", "scripts/up.sh", "fleet", *args], cwd=folder, env=environment, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    ups = [line.split() for line in log.read_text().splitlines() if line.startswith("up ")]
    assert len(ups) == 1, log.read_text()
    return ups[0]


@pytest.mark.parametrize(("clusters", "parallel"), [(1, "16"), (4, "16"), (5, "20"), (50, "200")])
def test_up_gives_four_per_cluster_at_least_sixteen(tmp_path: Path, clusters: int, parallel: str) -> None:
    assert up_arguments(checkout(tmp_path, clusters), "--yes") == [
        "up",
        "--stack",
        "fleet",
        "--parallel",
        parallel,
        "--yes",
    ]


@pytest.mark.parametrize("given", [["--parallel", "3"], ["--parallel=3"], ["-p", "3"], ["-p3"]])
def test_a_parallelism_the_user_gives_is_the_only_one(tmp_path: Path, given: list[str]) -> None:
    assert up_arguments(checkout(tmp_path, 30), *given) == ["up", "--stack", "fleet", *given]


def test_pulumi_parallel_in_the_environment_is_left_to_the_cli(tmp_path: Path) -> None:
    assert up_arguments(checkout(tmp_path, 30), env={"PULUMI_PARALLEL": "5"}) == ["up", "--stack", "fleet"]


@pytest.mark.parametrize("clusters", [1, 4, 5, 20, 50])
def test_the_fleet_benchmark_runs_pulumi_up_as_up_sh_does(tmp_path: Path, clusters: int) -> None:
    """The benchmark measures what users run: its default runs pass the same ``--parallel`` as the script."""
    from benchmarks.fleet.runs import up_sh_parallel

    given = up_arguments(checkout(tmp_path, clusters), "--yes")
    assert given[given.index("--parallel") + 1] == str(up_sh_parallel(clusters))
