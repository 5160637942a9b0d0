"""The real ``pulumi`` CLI, run on this project with a file backend and a passphrase in a temporary folder.

Plugins come from one folder on PATH, laid out as a Pulumi installation (:func:`plugin_folder`: the language hosts
beside the CLI; the providers ``pulumi-resource-kubernetes`` and ``pulumi-resource-command`` there as ambient plugins,
or installed into the plugin cache as a user's machine holds them); automatic plugin downloads and update checks are
off, so a missing plugin is an error rather than a download attempt. ``pulumi-language-python`` there is the real
v3.68 host behind ``language_host.py``, which gives it the ``RunPlugin`` of the modern host (policy packs, Python
plugins).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "e2e-passphrase-not-a-secret"
COMMAND_TIMEOUT_SECONDS = 900
LANGUAGE_HOST = "pulumi-language-python"


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(self.args)} exited {self.returncode}:\n{self.output[-12000:]}")
        return self


RESOURCE_PLUGIN = "pulumi-resource-"
BUNDLED_RESOURCE_PLUGINS = ("pulumi-resource-pulumi-python", "pulumi-resource-pulumi-nodejs")


def plugin_folder(tools_bin: Path, folder: Path, *, providers_on_path: bool = True) -> Path:
    """A bin folder laid out as a Pulumi installation: the CLI with the language hosts beside it (the real Python host
    behind the glue that gives it the modern ``RunPlugin``, see language_host.py), ``kubectl``, and the other tools.

    ``pulumi`` is a hard link (a copy across file systems), not a symbolic one: the CLI looks for its bundled plugins
    (the language hosts) beside its own resolved path, and warns "using pulumi-language-python from $PATH" about each
    one found on ``PATH`` anywhere else (``sdk/go/common/workspace/plugins.go``, ``GetPluginPath``), as it would on a
    user's machine whose installation is broken.

    The resource plugins (the kubernetes provider build and the command provider stand-in, see command_provider.py)
    are on ``PATH`` too by default, which the CLI announces with a "using ... from $PATH" warning each. With
    ``providers_on_path=False`` they go to ``folder/providers`` instead, to be installed into the plugin cache as a
    user's machine holds them (:meth:`PulumiProject.install_sdk_plugins`); then the CLI prints no such warning.
    """
    folder.mkdir(parents=True, exist_ok=True)
    providers = folder if providers_on_path else folder / "providers"
    providers.mkdir(exist_ok=True)
    for tool in tools_bin.iterdir():
        provider = tool.name.startswith(RESOURCE_PLUGIN) and tool.name not in BUNDLED_RESOURCE_PLUGINS
        link = (providers if provider else folder) / tool.name
        if tool.name in (LANGUAGE_HOST, "pulumi") or link.exists():
            continue
        link.symlink_to(tool.resolve())
    cli = folder / "pulumi"
    if not cli.exists():
        try:
            os.link((tools_bin / "pulumi").resolve(), cli)
        except OSError:  # another file system
            shutil.copy2((tools_bin / "pulumi").resolve(), cli)
    # The real host finds pulumi-language-python-exec next to its resolved executable: call it by that path.
    shims = {
        providers / "pulumi-resource-command": "-m lab.command_provider",
        folder / LANGUAGE_HOST: f'-m lab.language_host "{(tools_bin / LANGUAGE_HOST).resolve()}"',
    }
    for shim, script in shims.items():
        shim.unlink(missing_ok=True)  # never write through a link into a real tool
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {script} "$@"\n')
        shim.chmod(0o755)
    return folder


CODEGEN_HOST = "pulumi-language-codegen"


def codegen_folder(tools_bin: Path, folder: Path) -> Path:
    """:func:`plugin_folder` plus ``pulumi-language-nodejs`` and ``pulumi-language-go``: links to the codegen-only host
    (``toolchain/language-codegen``), which answers ``GeneratePackage`` with pkg/v3's code generators and nothing else
    (the real Node.js and Go hosts are not served by the Go module proxy; see its main.go). Only for ``gen-sdk``. The
    providers are not on PATH: install them with :meth:`PulumiProject.install_sdk_plugins`."""
    plugin_folder(tools_bin, folder, providers_on_path=False)
    for language in ("nodejs", "go"):
        link = folder / f"pulumi-language-{language}"
        link.unlink(missing_ok=True)
        link.symlink_to((tools_bin / CODEGEN_HOST).resolve())
    return folder


def component_provider_copy(folder: Path) -> Path:
    """``provider/`` as a user's ``pulumi package add <repository>/provider`` finds it, copied to ``folder``.

    Why a copy: before the CLI starts a Python plugin from a folder it installs the folder's ``requirements.txt`` into
    a virtualenv it makes in that folder (``venv``), which must not happen in the work tree. Paths in
    ``requirements.txt`` (``..``, this repository, and ``../constraints.txt``, its pins) become absolute, so pip
    installs this checkout under the repository's pins, as they do in place.
    """
    folder.mkdir(parents=True, exist_ok=True)
    source = ROOT / "provider"
    for name in ("PulumiPlugin.yaml", "__main__.py", "schema.json"):
        shutil.copy(source / name, folder / name)
    requirements = (source / "requirements.txt").read_text()
    (folder / "requirements.txt").write_text(re.sub(r"(?m)(^|\s)\.\.(?=/|$)", rf"\g<1>{ROOT}", requirements))
    return folder


def project_copy(source: Path, folder: Path, stack: str, config: dict[str, Any]) -> Path:
    """The program at ``source`` as a project in ``folder``, with one stack file written from ``config``.

    ``Pulumi.yaml`` and the program are copied, the virtualenv ``.venv`` is linked to the suite's (the component
    package is installed in it, editable, from this checkout; the language host runs the program with its
    ``bin/python``, see language_host.py), and ``stacks/`` is the copy's own: ``pulumi stack init`` writes the
    passphrase salt there, never into the work tree.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py", "requirements.txt", "constraints.txt"):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    venv = folder / ".venv"
    if not venv.exists():
        venv.symlink_to(Path(sys.executable).parent.parent)
    project = yaml.safe_load((folder / "Pulumi.yaml").read_text())
    stacks = folder / str(project.get("stackConfigDir", "."))
    stacks.mkdir(parents=True, exist_ok=True)
    (stacks / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return folder


def warning_lines(output: str) -> list[str]:
    """The lines of a run's output that warn (the CLI's ``warning:`` diagnostics, pip's ``WARNING:``)."""
    return [line for line in output.splitlines() if re.search(r"(?i)\bwarn(ing)?\b", line)]


# A `.pth` file runs its `import` lines at every start of the interpreter it belongs to: this one appends which Python
# ran which script to the file named by GLOO_E2E_INTERPRETERS, when that is set (it reaches the programs and plugins
# through the CLI and the language host).
INTERPRETER_RECORDER = (
    "import os, sys; _f = os.environ.get('GLOO_E2E_INTERPRETERS'); "
    "_f and open(_f, 'a').write(sys.executable + ' ' + (sys.argv[0] if sys.argv else '') + '\\n')\n"
)


@contextlib.contextmanager
def recording_interpreters(venv: Path, record: Path) -> Iterator[dict[str, str]]:
    """While in the block, every start of ``venv``'s Python appends ``<sys.executable> <sys.argv[0]>`` to ``record``
    for a process with the returned environment variables; the recorder is gone afterwards."""
    [site_packages] = venv.glob("lib/python3*/site-packages")
    recorder = site_packages / "zz_gloo_e2e_interpreters.pth"
    recorder.write_text(INTERPRETER_RECORDER)
    try:
        yield {"GLOO_E2E_INTERPRETERS": str(record)}
    finally:
        recorder.unlink()


def recorded_runs(record: Path) -> list[tuple[str, str]]:
    """``(python, script)`` for each start :func:`recording_interpreters` recorded."""
    lines = record.read_text().splitlines() if record.exists() else []
    return [(python, script) for python, _, script in (line.partition(" ") for line in lines)]


class PulumiProject:
    """One project directory and one stack of it, driven through the real CLI."""

    def __init__(
        self, bin_dir: Path, home: Path, project_dir: Path, stack: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.extra_env = dict(extra_env or {})
        self.bin_dir = bin_dir
        self.home = home
        self.project_dir = project_dir
        self.stack = stack
        (home / "state").mkdir(parents=True, exist_ok=True)
        (home / "pulumi-home").mkdir(parents=True, exist_ok=True)
        (home / "tmp").mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(self.bin_dir), venv_bin, os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(self.home / "pulumi-home"),
            "PULUMI_BACKEND_URL": (self.home / "state").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "HELM_CACHE_HOME": str(self.home / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "helm" / "config"),
            "HELM_DATA_HOME": str(self.home / "helm" / "data"),
            "NO_COLOR": "1",
            # The kubernetes provider leaves a kubeconfig copy here each time it starts (tests/e2e/test_main_job.py).
            "TMPDIR": str(self.home / "tmp"),
        }
        env.pop("KUBECONFIG", None)  # nothing falls back to this machine's kubeconfig unless a test says so
        env.pop("PULUMI_ACCESS_TOKEN", None)
        return {**env, **self.extra_env}

    def argv(self, *args: str, stack: bool = True) -> list[str]:
        """``pulumi <args>`` on this project, non-interactive and without colour (and ``--stack`` unless told)."""
        argv = [
            str(self.bin_dir / "pulumi"),
            "--non-interactive",
            "--color=never",
            "--cwd",
            str(self.project_dir),
            *args,
        ]
        if stack:
            argv += ["--stack", self.stack]
        return argv

    def run(
        self, *args: str, stack: bool = True, timeout: float = COMMAND_TIMEOUT_SECONDS, stdin: str | None = None
    ) -> Result:
        argv = self.argv(*args, stack=stack)
        process = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env(), timeout=timeout)
        return Result(tuple(args), process.returncode, process.stdout, process.stderr)

    def start(
        self,
        *args: str,
        stack: bool = True,
        stdout: IO[str] | int = subprocess.PIPE,
        stderr: IO[str] | int = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        """``pulumi <args>`` as :meth:`run` starts it, without waiting, to signal it as a user would. It runs in a
        process group of its own, as a shell runs a foreground job, so ``os.killpg(process.pid, signal.SIGINT)`` is
        what Ctrl-C in a terminal sends (the CLI starts each plugin in a group of its own, which that never reaches).
        Read the pipes while it runs, or give files (``stderr=subprocess.STDOUT`` for one interleaved output)."""
        return subprocess.Popen(
            self.argv(*args, stack=stack),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
            env=self.env(),
            process_group=0,
        )

    @classmethod
    def create(
        cls,
        bin_dir: Path,
        e2e_dir: Path,
        stack: str,
        config: dict[str, Any],
        *,
        source: Path = ROOT,
        extra_env: dict[str, str] | None = None,
    ) -> PulumiProject:
        """The program at ``source`` as a project of its own in ``e2e_dir/project-<stack>`` with one initialised stack
        ``stack`` (config ``config``), and a home of its own (state, plugins) in ``e2e_dir/home-<stack>``."""
        folder = project_copy(source, e2e_dir / f"project-{stack}", stack, config)
        project = cls(bin_dir, e2e_dir / f"home-{stack}", folder, stack, extra_env)
        project.init()
        return project

    def init(self) -> None:
        self.run("stack", "init", self.stack, stack=False).check()

    def install_sdk_plugins(self) -> None:
        """The provider plugins the Python SDKs ask for (``kubernetes``, ``command``), installed under the SDKs'
        versions from the local builds, as an offline user would (get.pulumi.com is out of reach here); the CLI asks for
        them when it installs a Python plugin's dependencies (``provider/requirements.txt``) or a program's."""
        for package in ("kubernetes", "command"):
            version = importlib.metadata.version(f"pulumi-{package}")
            name = f"{RESOURCE_PLUGIN}{package}"
            binary = next(b for b in (self.bin_dir / name, self.bin_dir / "providers" / name) if b.exists())
            self.run("plugin", "install", "resource", package, version, "--file", str(binary), stack=False).check()

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if show_secrets else [])
        return dict(json.loads(self.run(*args).check().stdout))

    def export(self, show_secrets: bool = False) -> str:
        return self.run("stack", "export", *(["--show-secrets"] if show_secrets else [])).check().stdout
