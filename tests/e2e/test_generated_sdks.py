"""Generated SDKs: the real ``pulumi package gen-sdk`` of ``provider/`` for TypeScript and Go, and ``examples/typescript``
type-checked against the generated SDK with the real TypeScript compiler (strict), installed from npm by its lockfile.

What runs: the real CLI (v3.274.1) reads the component's schema from the real component provider (``provider/``,
started through the Python language host and its glue, ``language_host.py``) after installing the plugin's
``requirements.txt`` as it does for any Python plugin folder; the code generators are pkg/v3 v3.274.1's
(``codegen/nodejs``, ``codegen/go``), reached through ``toolchain/language-codegen``, a host that answers only
``GeneratePackage`` (the CLI generates each SDK through the language host of that language, and the real Node.js and
Go hosts are not served by the Go module proxy here; see its main.go). The kubernetes schema the generators resolve
``k8s.Provider`` against comes from the kubernetes provider build (v4.25.0, the release the pinned SDK asks for).

A generation that fails, or prints a warning or an error, fails the test: the CLI and its plugins are laid out as a
user's machine holds them (the language hosts beside the CLI, the providers installed in the plugin cache), so this
environment gives it nothing to warn about.
No generated SDK is committed: they are generated here, into the suite's temporary folder.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.cluster import ControlPlanes
from lab.gloo import ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import ROOT, PulumiProject, Result, codegen_folder
from lab.registration_checks import assert_no_secret_in, assert_nothing_registered, assert_registered

TROUBLE = re.compile(r"(?i)\b(warn\w*|error\w*|deprecat\w*|fail\w*)\b")
NPM_TIMEOUT_SECONDS = 600
EXAMPLE = ROOT / "examples" / "typescript"
SERVER = "remote"
CLUSTER = "eu-west-1-a"  # the example's
NAMESPACE = "gloo-mesh"  # the component's default
STACK = "typescript"


@pytest.fixture(scope="module")
def cli(tools_bin: Path, e2e_dir: Path) -> PulumiProject:
    folder = e2e_dir / "project-gen-sdk"
    folder.mkdir(parents=True, exist_ok=True)
    project = PulumiProject(codegen_folder(tools_bin, e2e_dir / "bin-codegen"), e2e_dir / "home-gen-sdk", folder, "-")
    project.install_sdk_plugins()
    return project


def gen_sdk(cli: PulumiProject, provider: Path, language: str, out: Path, *flags: str) -> Result:
    # The CLI caches each provider schema it loads in $PULUMI_HOME/schemas; read back from that cache, a schema without
    # a top-level `version` (the kubernetes build's: upstream's `go generate` stamps it, the wrapper embeds the committed
    # schema.json) binds without one, and the generator then writes the reference to it as `/kubernetes/v<nil>/...`
    # and fails (pkg/v3 v3.274.1 codegen/schema/loader.go: a cache hit returns no plugin version). Loaded from the
    # plugin, the version requested (the SDK's) fills it in. So every generation starts without that cache.
    shutil.rmtree(cli.home / "pulumi-home" / "schemas", ignore_errors=True)
    result = cli.run(
        "package", "gen-sdk", str(provider), "--language", language, "--out", str(out), *flags, stack=False
    )
    result.check()
    trouble = [line for line in result.output.splitlines() if TROUBLE.search(line)]
    assert not trouble, "gen-sdk printed warnings or errors:\n" + "\n".join(trouble) + "\n\n" + result.output[-6000:]
    return result


def test_gen_sdk_go(cli: PulumiProject, component_provider: Path, e2e_dir: Path) -> None:
    out = e2e_dir / "sdk-go"
    gen_sdk(cli, component_provider, "go", out)
    package = out / "go" / "gloomeshrelay"
    assert json.loads((package / "pulumi-plugin.json").read_text()) == {
        "resource": True,
        "name": "gloo-mesh-relay",
        "version": "0.1.0",
    }
    source = (package / "remoteClusterRegistration.go").read_text()
    assert "gloo-mesh-relay:index:RemoteClusterRegistration" in source
    for field in (
        "MgmtProvider kubernetes.ProviderInput",
        "RemoteProvider kubernetes.ProviderInput",
        "RemoteKubeconfig pulumi.StringPtrInput",
        "RelayDiscovery *RelayDiscovery",
        "ClientCertTimeoutSeconds *int",
    ):
        assert field in source, field
    assert '"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"' in source
    # The real gofmt parses every generated file (-e: all syntax errors) and finds nothing to reformat.
    gofmt = subprocess.run(["gofmt", "-e", "-l", str(out / "go")], capture_output=True, text=True, timeout=120)
    assert gofmt.returncode == 0 and gofmt.stdout == "" and gofmt.stderr == "", gofmt


@pytest.fixture(scope="module")
def typescript_project(cli: PulumiProject, component_provider: Path, e2e_dir: Path) -> Path:
    """``examples/typescript`` in a folder of its own, with the generated SDK where ``pulumi package add`` puts it
    (``sdks/gloo-mesh-relay``, the local SDK: ``--local``), installed with ``npm ci`` from the committed lockfile."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm must be on PATH: the TypeScript example installs its pinned packages with `npm ci`")
    folder = e2e_dir / "project-typescript"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "index.ts", "package.json", "package-lock.json", "tsconfig.json"):
        shutil.copy(EXAMPLE / name, folder / name)
    out = e2e_dir / "sdk-nodejs-local"
    gen_sdk(cli, component_provider, "nodejs", out, "--local")
    sdk = folder / "sdks" / "gloo-mesh-relay"
    sdk.parent.mkdir(exist_ok=True)
    shutil.copytree(out / "nodejs", sdk)
    package = json.loads((sdk / "package.json").read_text())
    assert package["name"] == "@pulumi/gloo-mesh-relay"
    assert package["dependencies"]["@pulumi/kubernetes"] == importlib.metadata.version("pulumi-kubernetes")
    assert package["pulumi"] == {"resource": True, "name": "gloo-mesh-relay", "version": "0.1.0"}
    # Every input and output reaches the TypeScript user with its description (a doc comment the IDE shows).
    resource = json.loads((ROOT / "provider" / "schema.json").read_text())["resources"][
        "gloo-mesh-relay:index:RemoteClusterRegistration"
    ]
    source = (sdk / "remoteClusterRegistration.ts").read_text()
    properties = {**resource["inputProperties"], **resource["properties"]}
    undocumented = [name for name, spec in properties.items() if spec["description"].splitlines()[0] not in source]
    assert len(properties) > 20 and not undocumented, undocumented
    # npm runs the SDK's postinstall (tsc builds it into bin/, as `pulumi package add` relies on). The CLI stays off
    # PATH: @pulumi/kubernetes's install script would otherwise try to download its plugin with it.
    env = {**os.environ, "PULUMI_HOME": str(cli.home / "pulumi-home"), "npm_config_update_notifier": "false"}
    npm = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_SECONDS,
    )
    assert npm.returncode == 0, npm.stdout[-4000:] + npm.stderr[-4000:]
    assert (sdk / "bin" / "index.d.ts").is_file(), "the SDK's postinstall did not build it"
    return folder


def tsc(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(folder / "node_modules" / ".bin" / "tsc"), "--noEmit", "--pretty", "false", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_SECONDS,
    )


def test_typescript_example_type_checks_strict(typescript_project: Path) -> None:
    config = json.loads((typescript_project / "tsconfig.json").read_text())
    assert config["compilerOptions"]["strict"] is True
    version = tsc(typescript_project, "--version")
    assert version.stdout.strip() == "Version 5.9.3", version
    result = tsc(typescript_project, "-p", ".")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stdout + result.stderr
    resolved = tsc(typescript_project, "-p", ".", "--traceResolution")
    assert (
        "Module name '@pulumi/gloo-mesh-relay' was successfully resolved to "
        f"'{typescript_project / 'sdks' / 'gloo-mesh-relay' / 'bin' / 'index.d.ts'}'" in resolved.stdout
    )


def test_typescript_compiler_rejects_wrong_inputs(typescript_project: Path) -> None:
    """The same check has teeth: the generated types refuse a relayDiscovery outside the enum, a timeout given as a
    string, a kubeconfig where a Provider goes, and a missing clusterName."""
    (typescript_project / "wrong.ts").write_text(
        """import * as k8s from "@pulumi/kubernetes";
import * as glooMeshRelay from "@pulumi/gloo-mesh-relay";

const workload = new k8s.Provider("workload", { kubeconfig: "..." });
new glooMeshRelay.RemoteClusterRegistration("a", {
    clusterName: "a",
    remoteProvider: workload,
    relayDiscovery: "nodeport",
});
new glooMeshRelay.RemoteClusterRegistration("b", { clusterName: "b", clientCertTimeoutSeconds: "600" });
new glooMeshRelay.RemoteClusterRegistration("c", { clusterName: "c", mgmtProvider: "mgmt-kubeconfig" });
new glooMeshRelay.RemoteClusterRegistration("d", { relayServerAddress: "relay:9900" });
"""
    )
    (typescript_project / "tsconfig.wrong.json").write_text(
        json.dumps({"extends": "./tsconfig.json", "files": ["wrong.ts"]})
    )
    try:
        result = tsc(typescript_project, "-p", "tsconfig.wrong.json")
    finally:
        (typescript_project / "wrong.ts").unlink()
        (typescript_project / "tsconfig.wrong.json").unlink()
    errors = [line for line in result.stdout.splitlines() if line.startswith("wrong.ts(")]
    assert result.returncode != 0
    assert [line.split(":")[0] for line in errors] == [
        "wrong.ts(8,5)",
        "wrong.ts(10,70)",
        "wrong.ts(11,70)",
        "wrong.ts(12,50)",
    ], result.stdout
    assert "Type '\"nodeport\"' is not assignable to type 'RelayDiscovery | undefined'" in errors[0]
    assert "Type 'string' is not assignable to type 'number'" in errors[1]
    assert "Type 'string' is not assignable to type 'Input<Provider | undefined>'" in errors[2]
    assert "Property 'clusterName' is missing" in result.stdout


@pytest.fixture(scope="module")
def typescript_stack(
    bin_dir: Path,
    e2e_dir: Path,
    typescript_project: Path,
    planes: ControlPlanes,
    management_plane: ManagementPlane,
    chart_repo: ChartRepository,
    component_provider: Path,
) -> Iterator[PulumiProject]:
    """The type-checked program as a stack, run by the real Node.js language host (sdk v3.68.0, see
    toolchain/language-nodejs) with the program's own @pulumi/pulumi from npm; the management cluster through the
    ambient kubeconfig's context, the workload kubeconfig as secret config (through stdin)."""
    agent = SimulatedAgent(planes, SERVER, namespace=NAMESPACE, cluster_name=CLUSTER).start()
    management_kubeconfig = e2e_dir / "typescript-management.kubeconfig"
    management_kubeconfig.write_text(planes.kubeconfig_text("mgmt", "mgmt-e2e"))
    project_file = typescript_project / "Pulumi.yaml"
    program = yaml.safe_load(project_file.read_text())
    program["packages"]["gloo-mesh-relay"] = str(component_provider)
    project_file.write_text(yaml.safe_dump(program, sort_keys=False))
    config = {"managementContext": "mgmt-e2e", "chartRepo": chart_repo.url}
    (typescript_project / f"Pulumi.{STACK}.yaml").write_text(
        yaml.safe_dump({"config": {f"{program['name']}:{key}": value for key, value in config.items()}})
    )
    cli = PulumiProject(
        bin_dir,
        e2e_dir / "home-typescript",
        typescript_project,
        STACK,
        extra_env={"KUBECONFIG": str(management_kubeconfig)},
    )
    cli.install_sdk_plugins()
    cli.init()
    workload = planes.kubeconfig_text(SERVER, "workload")
    cli.run("config", "set", "--secret", "workloadKubeconfig", stdin=workload).check()
    yield cli
    agent.stop()


def client_key(planes: ControlPlanes) -> str:
    """The workload kubeconfig's secret part (its client key, as the kubeconfig carries it)."""
    return base64.b64encode((planes.work_dir / "admin.key").read_bytes()).decode()


def test_typescript_example_preview_creates_nothing(typescript_stack: PulumiProject, planes: ControlPlanes) -> None:
    result = typescript_stack.run("preview").check()
    assert "gloo-mesh-relay:index:RemoteClusterRegistration" in result.output, result.output[-4000:]
    assert client_key(planes) not in result.output
    assert_nothing_registered(planes, SERVER, CLUSTER, NAMESPACE)


def test_typescript_example_up_registers_the_cluster(
    typescript_stack: PulumiProject, planes: ControlPlanes, management_plane: ManagementPlane
) -> None:
    result = typescript_stack.run("up", "--yes", "--skip-preview").check()
    assert_no_secret_in(result.output, management_plane, "the up output")
    assert client_key(planes) not in result.output
    assert_registered(planes, SERVER, CLUSTER, NAMESPACE, management_plane.agent_version)
    assert typescript_stack.outputs() == {
        "releaseStatus": "deployed",
        "relayServerAddress": management_plane.relay_address,
        "agentVersion": management_plane.agent_version,
    }
    exported = typescript_stack.export()
    assert_no_secret_in(exported, management_plane, "the exported state")
    assert client_key(planes) not in exported, "the workload kubeconfig is in the state in plain text"
    resources = json.loads(exported)["deployment"]["resources"]
    (component,) = [r for r in resources if r["type"] == "gloo-mesh-relay:index:RemoteClusterRegistration"]
    assert [r for r in resources if r.get("parent") == component["urn"]], "the component registered no children"
    typescript_stack.run("preview", "--expect-no-changes").check()


def test_typescript_example_destroy_removes_the_registration(
    typescript_stack: PulumiProject, planes: ControlPlanes
) -> None:
    typescript_stack.run("destroy", "--yes", "--skip-preview").check()
    assert_nothing_registered(planes, SERVER, CLUSTER, NAMESPACE)
