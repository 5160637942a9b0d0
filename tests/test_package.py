"""The component as a package: the Python distribution, the multi-language schema, construct, gRPC, examples."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.errors import InputPropertyError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from gloo_mesh_registration.args import ARG_KEYS
from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE, READ_RELAY_SECRETS
from gloo_mesh_registration.package import COMPONENTS, DISTRIBUTION, PACKAGE_NAME, package_version, render_schema
from lab.engine_double import (
    CLUSTER_1X,
    COMMAND,
    COMPONENT,
    KUBECONFIG_CONTENTS,
    KUBERNETES_PROVIDER,
    RELEASE,
    ROOT,
    FakeClusters,
    RecordingMonitor,
    plain,
    run_program,
)

SNAPSHOT = ROOT / "provider" / "schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return loaded


def component_schema(schema: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = schema["resources"][COMPONENT]
    return resource


# -- the schema --------------------------------------------------------------------------------------------------


def test_schema_snapshot_is_current() -> None:
    assert SNAPSHOT.read_text() == render_schema(), (
        "the component's schema changed: run `python scripts/update_schema.py` and commit provider/schema.json, "
        "so the pull request shows the API change"
    )


def test_package_identity(schema: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == DISTRIBUTION
    assert schema["name"] == "gloo-mesh-relay"
    assert schema["version"] == pyproject["project"]["version"] == package_version()
    assert list(schema["resources"]) == [COMPONENT]
    assert component_schema(schema)["isComponent"] is True


def test_every_input_and_output_is_described(schema: dict[str, Any]) -> None:
    resource = component_schema(schema)
    assert resource["description"]
    for kind in ("inputProperties", "properties"):
        for name, prop in resource[kind].items():
            assert prop.get("description"), f"{kind}.{name} has no description"
            assert "``" not in prop["description"], f"{kind}.{name}: use Markdown, not reStructuredText"
    assert set(resource["inputProperties"]) == {_camel(key) for key in ARG_KEYS}
    assert set(resource["properties"]) == {
        "clusterName",
        "relayServerAddress",
        "agentVersion",
        "remoteNamespace",
        "releaseStatus",
        "clientCertificateIssued",
    }


def test_inputs_fed_from_other_resources_are_not_plain(schema: dict[str, Any]) -> None:
    inputs = component_schema(schema)["inputProperties"]
    for name in (
        "mgmtProvider",
        "remoteProvider",
        "relayServerAddress",
        "agentVersion",
        "mgmtKubeconfig",
        "remoteKubeconfig",
    ):
        assert not inputs[name].get("plain"), f"{name} must accept Outputs of other resources"
    for name in ("mgmtProvider", "remoteProvider"):
        # The supported form of a reference to another package's provider; '#/resources/pulumi:providers:kubernetes'
        # (what the SDK infers) makes schema binding warn that it is deprecated (pulumi/pulumi#20029).
        assert inputs[name]["$ref"] == f"/kubernetes/v{metadata.version('pulumi-kubernetes')}/schema.json#/provider"
    assert inputs["clusterName"]["plain"] is True  # it names the child resources, so it must be known up front
    assert component_schema(schema)["requiredInputs"] == ["clusterName"]
    enum = schema["types"]["gloo-mesh-relay:index:RelayDiscovery"]["enum"]
    assert [e["value"] for e in enum] == ["loadbalancer", "istio-ingress-nodeport"]


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


# -- the construct path, as the engine drives it --------------------------------------------------------------


def construct(
    inputs: dict[str, Any], fake: FakeClusters | None = None, monitor: RecordingMonitor | None = None
) -> RecordingMonitor:
    """ComponentProvider.construct with camelCase inputs, as pulumi/pulumi's provider server hands them over after
    deserializing a ConstructRequest (sdk/python/lib/pulumi/provider/server.py, _construct_inputs): plain values
    stay plain, secrets and values with dependencies arrive as Outputs, resource references as resources."""
    provider = ComponentProvider(COMPONENTS, PACKAGE_NAME, version=package_version())

    def program() -> None:
        resolved = {key: value() if callable(value) else value for key, value in inputs.items()}
        provider.construct("east", COMPONENT, resolved, pulumi.ResourceOptions())

    return run_program(program, fake, monitor=monitor)


def test_construct_with_camel_case_inputs() -> None:
    recorded = construct(
        {
            "clusterName": "east",
            "mgmtContext": "mgmt",
            "remoteContext": "east",
            "relayDiscovery": "istio-ingress-nodeport",
            "relayNodeName": "mgmt-cluster-control-plane",
            "clientCertTimeoutSeconds": 120,
            "agentValues": {"verbose": True},
        }
    )
    release = plain(recorded.one(RELEASE).inputs)
    assert release["values"]["relay"]["cluster"] == "east"
    assert release["values"]["relay"]["serverAddress"] == "172.18.0.2:32443"
    assert release["values"]["verbose"] is True
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    assert "GM_TIMEOUT=120" in wait.args["interpreter"][2]


def test_construct_with_providers_passed_by_reference_and_a_secret_kubeconfig() -> None:
    recorded = construct(
        {
            "clusterName": "east",
            "mgmtProvider": lambda: k8s.Provider("platform-mgmt", context="mgmt"),
            "mgmtContext": "mgmt",
            "remoteProvider": lambda: k8s.Provider("platform-east", context="east"),
            "remoteKubeconfig": lambda: pulumi.Output.secret(KUBECONFIG_CONTENTS),
            "agentVersion": lambda: pulumi.Output.from_input("1.1.6"),
            "relayServerAddress": "relay.example.com:9900",
        }
    )
    providers = {r.urn: r.name for r in recorded.registered(KUBERNETES_PROVIDER)}
    assert sorted(providers.values()) == ["platform-east", "platform-mgmt"]
    assert providers[recorded.one(RELEASE).provider_urn] == "platform-east"
    token = recorded.one(COMMAND, "bootstrap-token")
    assert rpc.is_rpc_secret(token.inputs["environment"])
    # An output kubeconfig is read when it resolves: the step is told it is contents (no path).
    assert plain(token.inputs)["environment"]["GM_KUBECONFIG_CONTENTS"] == KUBECONFIG_CONTENTS
    assert plain(token.inputs)["environment"]["GM_KUBECONFIG_FILE"] == ""
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    assert wait.args["environment"]["GM_KUBECONFIG_CONTENTS"] == KUBECONFIG_CONTENTS
    assert wait.args["environment"]["GM_KUBECONFIG_FILE"] == ""


def test_construct_without_a_required_input_fails_before_any_resource() -> None:
    monitor = RecordingMonitor(FakeClusters())
    with pytest.raises(InputPropertyError, match="Missing required input 'clusterName'"):
        construct({"mgmtContext": "mgmt", "remoteContext": "east"}, monitor=monitor)
    assert monitor.records == []


def test_construct_rejects_an_unknown_enum_value() -> None:
    with pytest.raises(Exception, match="relayDiscovery"):
        construct({"clusterName": "east", "mgmtContext": "m", "remoteContext": "r", "relayDiscovery": "nodeport"})


def test_construct_reports_bad_input_with_the_field() -> None:
    with pytest.raises(Exception, match="cluster_name: 'East' is not a valid cluster name"):
        construct({"clusterName": "East", "mgmtContext": "m", "remoteContext": "r"})


# -- the entry point, as the engine starts it -------------------------------------------------------------------


def test_entry_point_serves_the_schema_over_grpc() -> None:
    """The engine runs `python provider/__main__.py <engine address>`, reads the port from the first line of
    stdout and calls GetPluginInfo and GetSchema (pulumi/pulumi pkg/resource/plugin/provider_plugin.go)."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "provider" / "__main__.py"), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT / "provider",
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=30)
            assert info.version == package_version()
            served = json.loads(stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30).schema)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert served == json.loads(SNAPSHOT.read_text())


# -- the Python distribution ------------------------------------------------------------------------------------


def test_wheel_installs_and_is_importable_outside_the_repository(tmp_path: Path) -> None:
    source = tmp_path / "source"  # build from a copy: setuptools writes build/ and *.egg-info next to pyproject.toml
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",  # the build backend's own output, its warnings included
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    # What users see when pip or `pulumi install` builds the package: a Python warning there (`...Warning: ...`) is
    # a packaging mistake (it once was shell/ missing from `packages`, found by the real-engine suite).
    assert [line for line in (built.stdout + built.stderr).splitlines() if "Warning: " in line] == []
    (wheel,) = (tmp_path / "dist").glob("gloo_mesh_registration-*.whl")
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    # The distribution's only top-level package is its own name: a program with a `components` package of its own
    # (as most programs laid out like this repository have) keeps it.
    top_level = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info"))
    assert top_level == ["gloo_mesh_registration"]
    assert (target / "gloo_mesh_registration" / "py.typed").exists()
    # The shell steps are package data: every file of the source tree is in the wheel, and a script is made from them.
    shipped = sorted(p.name for p in (target / "gloo_mesh_registration" / "shell").glob("*.sh"))
    assert shipped == sorted(p.name for p in (ROOT / "components" / "gloo_mesh_registration" / "shell").glob("*.sh"))
    probe = (
        "import gloo_mesh_registration, gloo_mesh_registration.registration; "
        "print(gloo_mesh_registration.__file__); print(gloo_mesh_registration.RemoteClusterRegistration.__name__); "
        "from gloo_mesh_registration.lifecycle import relay_secrets_step; "
        "print(relay_secrets_step().interpreter[2].count('read-relay-secrets)'))"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=outside,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        str(target / "gloo_mesh_registration" / "__init__.py"),
        "RemoteClusterRegistration",
        "1",
    ]


def test_requirements_install_the_package_for_the_program() -> None:
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()
    assert (ROOT / "provider" / "requirements.txt").read_text().splitlines()[-1] == ".."


# -- examples ---------------------------------------------------------------------------------------------------


def _check_inputs(where: str, properties: dict[str, Any], schema: dict[str, Any]) -> None:
    resource = component_schema(schema)
    inputs = resource["inputProperties"]
    unknown = set(properties) - set(inputs)
    assert not unknown, f"{where}: inputs not in the schema: {sorted(unknown)}"
    missing = set(resource["requiredInputs"]) - set(properties)
    assert not missing, f"{where}: required inputs missing: {sorted(missing)}"
    for name, value in properties.items():
        spec = inputs[name]
        if isinstance(value, str) and value.startswith("${"):
            continue  # a reference to another resource or config value
        if spec.get("type") == "string":
            assert isinstance(value, str), f"{where}.{name}: expected a string"
        elif spec.get("type") == "integer":
            assert isinstance(value, int), f"{where}.{name}: expected an integer"
        elif spec.get("$ref", "").startswith("#/types/"):
            enum = schema["types"][spec["$ref"].removeprefix("#/types/")]["enum"]
            assert value in [e["value"] for e in enum], f"{where}.{name}: {value!r} is not one of the enum values"


def test_yaml_example_matches_the_schema(schema: dict[str, Any]) -> None:
    program = yaml.safe_load((ROOT / "examples" / "yaml" / "Pulumi.yaml").read_text())
    assert program["packages"][PACKAGE_NAME] == "../../provider"
    registrations = {n: r for n, r in program["resources"].items() if r["type"] == COMPONENT}
    assert registrations
    for name, resource in registrations.items():
        _check_inputs(f"examples/yaml {name}", resource["properties"], schema)
        for key in ("mgmtProvider", "remoteProvider"):
            referenced = resource["properties"][key].strip("${}")
            assert program["resources"][referenced]["type"] == KUBERNETES_PROVIDER
    for output in program["outputs"].values():
        assert output.split(".")[-1].rstrip("}") in component_schema(schema)["properties"]


def test_typescript_example_matches_the_schema(schema: dict[str, Any]) -> None:
    source = (ROOT / "examples" / "typescript" / "index.ts").read_text()
    calls = re.findall(r"new glooMeshRelay\.RemoteClusterRegistration\(\s*\"[^\"]+\",\s*\{(.*?)\n\}\);", source, re.S)
    assert calls, "no RemoteClusterRegistration in examples/typescript/index.ts"
    for body in calls:
        keys = re.findall(r"^\s+(\w+):", body, re.M)
        _check_inputs("examples/typescript", dict.fromkeys(keys, "${expression}"), schema)
    for output in re.findall(r"registration\.(\w+);", source):
        assert output in component_schema(schema)["properties"]
    package = json.loads((ROOT / "examples" / "typescript" / "package.json").read_text())
    assert package["dependencies"]["@pulumi/gloo-mesh-relay"] == "file:sdks/gloo-mesh-relay"


def test_python_example_runs_on_the_mock_runtime() -> None:
    source = (ROOT / "examples" / "python" / "__main__.py").read_text()
    tree = ast.parse(source)
    arg_dicts = [
        node.args[1]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "RemoteClusterRegistration"
    ]
    assert arg_dicts and all(isinstance(d, ast.Dict) for d in arg_dicts)
    for arg_dict in arg_dicts:
        assert isinstance(arg_dict, ast.Dict)
        keys = {k.value for k in arg_dict.keys if isinstance(k, ast.Constant)}
        assert keys <= ARG_KEYS and "cluster_name" in keys

    def program() -> None:
        config = {f"register-from-python:{c}-kubeconfig": KUBECONFIG_CONTENTS for c in ("eu-west-1-a", "eu-west-1-b")}
        pulumi.runtime.config.set_all_config(config, list(config))
        exec(compile(source, "examples/python/__main__.py", "exec"), {"__name__": "__main__"})

    recorded = run_program(program, project="register-from-python")
    clusters = sorted(plain(r.inputs)["metadata"]["name"] for r in recorded.registered(CLUSTER_1X))
    assert clusters == ["eu-west-1-a", "eu-west-1-b"]
    for provider in recorded.registered(KUBERNETES_PROVIDER):
        if provider.name != "management":
            assert rpc.is_rpc_secret(provider.inputs["kubeconfig"])


def test_served_to_other_languages_each_registration_reads_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The component provider gets one Construct per registration, each after `reset_options` and with its own copy
    of the Provider reference, rehydrated from its URN (pulumi/pulumi sdk/python/lib/pulumi/provider/server.py,
    _construct; a resource built with ``ResourceOptions(urn=...)`` is looked up, not registered again); emulated here
    by two constructs, each with its own Provider object rehydrated from the one registered Provider's URN."""
    from pulumi.provider.experimental import host

    monkeypatch.setattr(host, "is_hosting", True)
    provider = ComponentProvider(COMPONENTS, PACKAGE_NAME, version=package_version())

    def constructs(urn: str) -> None:
        for name in ("east", "west"):
            mgmt = k8s.Provider("management", opts=pulumi.ResourceOptions(urn=urn))  # a fresh object per Construct
            inputs = {"clusterName": name, "mgmtProvider": mgmt, "mgmtContext": "mgmt", "remoteContext": name}
            provider.construct(name, COMPONENT, inputs, pulumi.ResourceOptions())

    def program() -> None:
        registered = k8s.Provider("management", context="mgmt")  # the calling program's Provider, registered once
        registered.urn.apply(constructs)

    recorded = run_program(program)
    reads = recorded.reads()
    assert len({r.urn for r in reads}) == len(reads), "a read was declared twice under one URN"
    components = {r.urn for r in recorded.registered(COMPONENT)}
    assert all(r.parent in components for r in reads)
    assert len(reads) == 2 * 2  # per registration: Deployment, Service
    assert len(recorded.invoked(READ_RELAY_SECRETS)) == 2  # and the relay secrets


def test_a_provider_without_a_schema_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the SDK's inference ever give no schema (an SDK upgrade that cannot read the annotations), the provider
    refuses to start with that reason instead of serving an empty package."""
    import pulumi.provider.experimental.component as component

    class NoSchema:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.schema = None

    monkeypatch.setattr(component, "ComponentProvider", NoSchema)
    from gloo_mesh_registration.package import component_provider

    with pytest.raises(RuntimeError, match=r"^the component provider inferred no schema$"):
        component_provider()
