"""The real program, run on the mock runtime, fed to the policy pack's analyzer as the Pulumi CLI feeds it.

The pack is served in process by its own `serve()` (a real `PolicyPack`, its gRPC server on a local port) and called
over gRPC with requests built from `pulumi.runtime.proto.analyzer_pb2`. What the engine does around the analyzer is
emulated here, from these sources (pulumi/pulumi unless noted; its `pkg/resource/deploy` read at commit 1b5949891b,
3.260 in development, the newest copy at hand, which has no release tags; the real-engine suite runs the v3.274.1 CLI,
and `tests/e2e/test_staged_upgrade.py` checks there what the pack is handed):

* Start-up: the pack prints its port and serves `Analyzer` (pulumi-policy `PolicyPack.__init__`); the CLI starts it
  with `python -m pulumi.policy ENGINE .` in the pack folder (`sdk/python/dist/pulumi-analyzer-policy-python`),
  which `test_the_pack_starts_as_the_cli_starts_it` does for real.
* Config: defaults from each policy's `configSchema`, then the `--policy-pack-config` file (a level, or an object
  with `enforcementLevel` and properties; `all` for every policy), validated against the schema, sent with
  `Configure` (`pkg/resource/analyzer/config.go`, `ReconcilePolicyPackConfig`).
* `Analyze`: once per registered resource, with its inputs, `options.parent` and its provider (URN, type, name, the
  provider's inputs) (`pkg/resource/deploy/step_generator.go`: `continueStepsFromImport` calls `analyzeAll`, on the
  path of `GenerateSteps`). Never for a read: `GenerateReadSteps` (the `ReadResourceEvent` of an `X.get`) makes a
  `ReadStep` and calls no analyzer. A custom resource registered without a provider gets the package's default
  provider `default_<version>` (`source_eval.go`, `defaultProviders`; a read too, `resmon.ReadResource`), unless
  `pulumi:disable-default-providers` denies it, which fails the deployment.
* `AnalyzeStack`: every resource the deployment registered (root stack, providers, components, custom resources) with
  its outputs, parent, dependencies and provider, and **no reads** (`step_generator.go`, `AnalyzeResources`, ranges
  over `deployment.news`; `step_executor.go`, `continueExecuteStep`, stores the state of an `OpRead` or
  `OpReadReplacement` step in `deployment.reads` instead). A registered resource's `dependencies` still name the reads it
  waits on, as the engine's state does; pulumi-policy leaves out every dependency that names no resource of the
  request (`pulumi_policy/policy.py`, `AnalyzeStack`), so a policy never sees them.
* A component's properties there are the outputs it registered (`register_outputs`): `RegisterResourceOutputs`
  overwrites the outputs of its state in `news` (`step_executor.go`, `executeRegisterResourceOutputs`).
* Properties keep secrets and unknowns (`sdk/go/common/resource/plugin/analyzer_plugin.go`, `MarshalProperties`
  with `KeepSecrets`/`KeepUnknowns`); outputs named in `additionalSecretOutputs` are secret.
* The stack's config reaches the pack as JSON in `PULUMI_CONFIG` (`analyzer_plugin.go`, `constructEnv`).

Not emulated: the provider's `Check` (pulumi-kubernetes adds `apiVersion`/`kind` to inputs; no policy reads them),
`propertyDependencies` (no policy reads them), and the root stack's properties: the engine's are the stack outputs,
finalized before `AnalyzeResources` runs (`deployment_executor.go`, `Execute`), but the mock runtime registers the
root stack's outputs before the program runs, so there are none to send (no policy reads them).
"""

from __future__ import annotations

import copy
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import jsonschema
import pulumi
import pulumi_kubernetes as k8s
import pulumi_policy.policy
import pytest
import yaml
from builders import registration_args, run_registrations
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_command import local

from gloo_mesh_registration import GLOO_MESH_ENTERPRISE_1X, RemoteClusterRegistration, RemoteClusterRegistrationArgs
from gloo_mesh_registration.facts import COMPONENT_TYPE
from lab.engine_double import (
    CA_CERT,
    CA_PRIVATE_KEY,
    CLUSTER_1X,
    CLUSTER_2X,
    NAMESPACE,
    RELEASE,
    ROOT,
    SECRET,
    SERVICE,
    STACK_FILES,
    STACK_TYPE,
    FakeClusters,
    RecordingMonitor,
    b64,
    plain,
    run_main,
    run_program,
    stack_run,
)
from policy import gloo_mesh_policies
from policy.gloo_mesh_policies import PACK_DESCRIPTION, STACK_ALLOW_INSECURE_KEY

POLICY_DIR = ROOT / "policy"
PROJECT_FILE = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}
ALL_POLICIES = {
    "kubernetes-explicit-provider",
    "agent-chart-version",
    "relay-cluster-matches-kubernetes-cluster",
    "kubernetes-cluster-name",
    "root-ca-copy-ca-crt-only",
    "agent-namespace-no-istio-injection",
    "registrations-independent",
    "relay-authority-allowed",
    "insecure-relay-refused",
    "registration-step-order",
}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str
    stage: str  # "Analyze" | "AnalyzeStack"


# -- the engine's side of the analyzer protocol ------------------------------------------------------------------


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties on the wire: secrets stay `{sig: secret, value: ...}` objects, unknowns stay sentinels."""
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


def _wire(value: Any) -> Any:
    """A deserialized value as it goes over the wire again: an unknown as the engine's unknown sentinel."""
    if isinstance(value, pulumi.output.Unknown):
        return rpc.UNKNOWN
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return value


def _mark_secret(state: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: rpc.wrap_rpc_secret(v) if k in keys and not rpc.is_rpc_secret(v) else v for k, v in state.items()}


def reconcile_config(info: Any, given: Mapping[str, Any]) -> dict[str, analyzer_pb2.PolicyConfig]:
    """`ReconcilePolicyPackConfig`: schema defaults, then `given` (a `--policy-pack-config` file), validated."""
    levels: dict[str, str] = {}
    props: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        levels[policy.name] = LEVEL_NAMES[policy.enforcementLevel]
        properties = json_format.MessageToDict(policy.configSchema.properties)
        schemas[policy.name] = {"type": "object", "properties": properties}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
        props[policy.name] = {k: v["default"] for k, v in properties.items() if "default" in v}
    if isinstance(given.get("all"), str):
        levels = dict.fromkeys(levels, given["all"])
    for name, value in given.items():
        if name == "all":
            continue
        assert name in levels, f"the config names {name!r}, which is not a policy of the pack"
        if isinstance(value, str):
            levels[name] = value
        else:
            value = dict(value)
            levels[name] = value.pop("enforcementLevel", levels[name])
            props[name].update(value)
    for name, schema in schemas.items():
        jsonschema.validate(props[name], schema)
    return {
        name: analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[levels[name]], properties=_struct(props[name]))
        for name in levels
    }


class PolicyAnalyzer:
    """Calls the pack like the engine: GetAnalyzerInfo, Configure, Analyze per resource, AnalyzeStack."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub

    def info(self) -> Any:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, given: Mapping[str, Any] | None = None) -> None:
        config = reconcile_config(self.info(), given or {})
        self.stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=config))

    def run(
        self,
        monitor: RecordingMonitor,
        config: Mapping[str, Any] | None = None,
        *,
        denied_default_providers: frozenset[str] = frozenset(),
    ) -> list[Violation]:
        self.configure(config)
        resources = _stack_resources(monitor, denied_default_providers)
        by_urn = {r.urn: r for r in resources}
        violations = []
        for record in monitor.registered():
            resource = by_urn[record.urn]
            request = analyzer_pb2.AnalyzeRequest(
                urn=record.urn,
                type=record.type,
                name=record.name,
                properties=_struct(record.inputs),
                options=resource.options,
                provider=resource.provider if resource.HasField("provider") else None,
            )
            violations += _violations(self.stub.Analyze(request), "Analyze")
        response = self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
        return violations + _violations(response, "AnalyzeStack")


def _violations(response: Any, stage: str) -> list[Violation]:
    return [
        Violation(d.policyName, LEVEL_NAMES[d.enforcementLevel], d.urn, d.message, stage) for d in response.diagnostics
    ]


def _stack_resources(monitor: RecordingMonitor, denied: frozenset[str]) -> list[Any]:
    """Every resource the deployment registered as `AnalyzerResource`s, default providers and the root stack included,
    reads left out: what `AnalyzeResources` sends. A component's properties are the outputs it registered, a custom
    resource's its state."""
    outputs = monitor.get_registered_resources()
    providers: dict[str, analyzer_pb2.AnalyzerProviderResource] = {}
    resources: list[Any] = []
    stack_urn = next((r.parent for r in monitor.records if r.parent and "::pulumi:pulumi:Stack::" in r.parent), "")
    if stack_urn:
        resources.append(
            analyzer_pb2.AnalyzerResource(urn=stack_urn, type=STACK_TYPE, name=stack_urn.rsplit("::", 1)[1])
        )
    for record in monitor.records:
        if record.type.startswith("pulumi:providers:"):
            providers[record.urn] = analyzer_pb2.AnalyzerProviderResource(
                urn=record.urn, type=record.type, name=record.name, properties=_struct(record.inputs)
            )
    for record in monitor.records:
        provider = providers.get(record.provider_urn) if record.provider_urn else None
        if provider is None and record.custom and not record.type.startswith("pulumi:providers:"):
            provider = _default_provider(
                record.type.split(":", 1)[0], stack_urn, denied, record.urn, providers, resources
            )
        if record.op == "read":
            continue  # its default provider is registered (above), the read itself is in `deployment.reads`
        if record.custom:
            state = outputs[record.urn].state if record.urn in outputs else {}
        else:
            state = _wire(monitor.registered_outputs.get(record.urn, {}))
        resources.append(
            analyzer_pb2.AnalyzerResource(
                urn=record.urn,
                type=record.type,
                name=record.name,
                properties=_struct(_mark_secret(state, record.additional_secret_outputs)),
                options=analyzer_pb2.AnalyzerResourceOptions(
                    parent=record.parent, additionalSecretOutputs=list(record.additional_secret_outputs)
                ),
                provider=provider,
                parent=record.parent,
                dependencies=sorted(record.dependencies),
            )
        )
    return resources


def _default_provider(
    package: str,
    stack_urn: str,
    denied: frozenset[str],
    urn: str,
    providers: dict[str, analyzer_pb2.AnalyzerProviderResource],
    resources: list[Any],
) -> analyzer_pb2.AnalyzerProviderResource:
    if package in denied or "*" in denied:
        raise AssertionError(f"Default provider for '{package}' disabled. '{urn}' must use an explicit provider.")
    try:
        version = metadata.version(f"pulumi-{package}")
        name = "default_" + "_".join(version.replace("-", ".").split("."))
    except metadata.PackageNotFoundError:
        name = "default"
    project_stack = stack_urn.split("::pulumi:pulumi:Stack::", 1)[0]
    provider_urn = f"{project_stack}::pulumi:providers:{package}::{name}"
    if provider_urn not in providers:
        providers[provider_urn] = analyzer_pb2.AnalyzerProviderResource(
            urn=provider_urn, type=f"pulumi:providers:{package}", name=name
        )
        resources.append(analyzer_pb2.AnalyzerResource(urn=provider_urn, type=f"pulumi:providers:{package}", name=name))
    return providers[provider_urn]


class _BlockingClock:
    """Stands in for `time` in pulumi-policy: its serve loop sleeps until the test is done."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def sleep(self, _seconds: float) -> None:
        self.released.wait()
        raise KeyboardInterrupt  # what PolicyPack's serve loop stops its server on


class _PortSink:
    """Stands in for stdout: PolicyPack prints the port it serves on, as the engine expects."""

    def __init__(self) -> None:
        self.ports: queue.Queue[int] = queue.Queue()

    def write(self, data: bytes) -> int:
        self.ports.put(int(data.decode().strip()))
        return len(data)


@pytest.fixture
def analyzer() -> Iterator[PolicyAnalyzer]:
    """The pack served for one test: each test starts it, so each test runs the pack's validator factories (what
    mutation testing records per test; a server shared by a module would credit its first test only)."""
    clock, sink = _BlockingClock(), _PortSink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pulumi_policy.policy, "time", clock)
        patch.setattr(pulumi_policy.policy, "sys", SimpleNamespace(stdout=SimpleNamespace(buffer=sink)))
        server = threading.Thread(target=gloo_mesh_policies.serve, daemon=True)
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{sink.ports.get(timeout=30)}")
        try:
            yield PolicyAnalyzer(analyzer_pb2_grpc.AnalyzerStub(channel))
        finally:
            channel.close()
            clock.released.set()
            server.join(timeout=10)
            assert not server.is_alive(), "the pack's server did not stop"


def names(violations: list[Violation]) -> set[str]:
    return {v.policy for v in violations}


# -- the pack as the engine sees it ------------------------------------------------------------------------------


def test_the_pack_describes_ten_policies_with_fixes_levels_and_config(analyzer: PolicyAnalyzer) -> None:
    info = analyzer.info()
    assert info.name == "gloo-mesh-relay-guardrails" and info.supportsConfig
    policies = {p.name: p for p in info.policies}
    assert set(policies) == ALL_POLICIES
    for policy in policies.values():
        assert "Fix:" in policy.description, policy.name
        assert policy.enforcementLevel in (analyzer_pb2.ADVISORY, analyzer_pb2.MANDATORY)
    assert policies["insecure-relay-refused"].enforcementLevel == analyzer_pb2.ADVISORY
    assert policies["root-ca-copy-ca-crt-only"].enforcementLevel == analyzer_pb2.MANDATORY
    # Every policy says how bad a violation is; a CA private key on a workload cluster is the worst.
    unrated = [p.name for p in policies.values() if p.severity == analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED]
    assert unrated == []
    assert policies["root-ca-copy-ca-crt-only"].severity == analyzer_pb2.POLICY_SEVERITY_CRITICAL
    configurable = {name for name, p in policies.items() if p.configSchema.properties}
    assert configurable == {
        "agent-chart-version",
        "kubernetes-cluster-name",
        "root-ca-copy-ca-crt-only",
        "relay-authority-allowed",
        "insecure-relay-refused",
    }


def test_the_example_policy_config_is_valid_for_the_pack(analyzer: PolicyAnalyzer) -> None:
    example = json.loads((POLICY_DIR / "config.example.json").read_text())
    config = reconcile_config(analyzer.info(), example)
    assert config["insecure-relay-refused"].enforcementLevel == analyzer_pb2.MANDATORY
    with pytest.raises(jsonschema.ValidationError):
        reconcile_config(analyzer.info(), {"relay-authority-allowed": {"allowedAuthorities": "not-a-list"}})


def test_list_settings_of_the_policy_config_are_described_default_to_empty_and_refuse_empty_names(
    analyzer: PolicyAnalyzer,
) -> None:
    info = analyzer.info()
    defaults = reconcile_config(info, {})
    for policy, key in (
        ("relay-authority-allowed", "allowedAuthorities"),
        ("root-ca-copy-ca-crt-only", "exemptProviders"),
    ):
        schema = json_format.MessageToDict(next(p for p in info.policies if p.name == policy).configSchema.properties)
        assert schema[key]["description"], (policy, key)
        assert json_format.MessageToDict(defaults[policy].properties) == {key: []}
        with pytest.raises(jsonschema.ValidationError, match=r"should be non-empty|is too short"):
            reconcile_config(info, {policy: {key: [""]}})


def test_the_pack_starts_as_the_cli_starts_it() -> None:
    """`python -m pulumi.policy ENGINE .` in the pack folder: the pack's two-line `__main__.py` serves the pack.

    policy/requirements.txt installs this repository's package into the pack's environment; here the checkout is
    on PYTHONPATH instead."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=POLICY_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the pack printed {port!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert {p.name for p in info.policies} == ALL_POLICIES
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_pack_folder_is_a_pulumi_policy_pack() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": ".venv"}}
    assert project["description"] == PACK_DESCRIPTION  # the same text as the engine gets from the pack
    requirements = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    assert f"pulumi-policy=={metadata.version('pulumi-policy')}" in requirements
    dev_requirements = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert f"pulumi-policy=={metadata.version('pulumi-policy')}" in dev_requirements
    main = [line for line in (POLICY_DIR / "__main__.py").read_text().splitlines() if line.strip()]
    assert len(main) == 2 and main[1] == "serve()"


def test_analyze_stack_gets_what_the_engine_registered_and_no_reads() -> None:
    """The request `AnalyzeStack` gets, as `AnalyzeResources` builds it: no read of the server Deployment or Service,
    though the registrations' Releases depend on them, and each component with the outputs it registered."""
    recorded = stack_run(ROOT / "stacks" / "Pulumi.fleet-example.yaml", preview=True)
    resources = {r.urn: r for r in _stack_resources(recorded, frozenset())}
    reads = {r.urn for r in recorded.reads()}
    assert reads and not reads & set(resources)
    assert all(reads & set(resources[r.urn].dependencies) for r in recorded.registered(RELEASE))
    components = recorded.registered(COMPONENT_TYPE)
    for component in components:
        outputs = json_format.MessageToDict(resources[component.urn].properties)
        assert outputs["cluster_name"] == component.name and outputs["agent_version"] == "1.1.6", outputs
    assert len(components) == 3


# -- every stack passes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=[f.name for f in STACK_FILES])
def test_every_stack_passes_every_policy(
    analyzer: PolicyAnalyzer, stack_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = stack_run(stack_file, preview=True)
    denied = frozenset(PROJECT_FILE["config"]["pulumi:disable-default-providers"]["value"])
    config = yaml.safe_load(stack_file.read_text())["config"]
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    )
    assert recorded.registered(RELEASE), "the program registered nothing to check"
    assert analyzer.run(recorded, denied_default_providers=denied) == []


# -- misconfigured registrations, each with the violation it must raise ------------------------------------------


def args(name: str = "east", **overrides: Any) -> RemoteClusterRegistrationArgs:
    """A fleet member: its remote context named after it, one management context for all."""
    return registration_args(name, "mgmt", f"{name}-ctx", **overrides)


def registrations(
    *entries: tuple[str, RemoteClusterRegistrationArgs],
    change: pulumi.ResourceTransformation | None = None,
) -> RecordingMonitor:
    """The registrations in preview, where the CLI calls the pack; see :func:`builders.run_registrations`."""
    return run_registrations(*entries, preview=True, change=change)


def of_type(
    type_: str, change: Callable[[Any, pulumi.ResourceOptions], tuple[Any, pulumi.ResourceOptions]]
) -> pulumi.ResourceTransformation:
    """A transformation of every child of type `type_`: `change(props, opts)` returns the new props and options."""

    def transformation(t: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if t.type_ != type_:
            return None
        props, opts = change(t.props, copy.copy(t.opts))
        return pulumi.ResourceTransformationResult(props, opts)

    return transformation


def _release_without_secrets(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    depends_on = opts.depends_on if isinstance(opts.depends_on, list) else []
    opts.depends_on = [d for d in depends_on if not isinstance(d, (k8s.core.v1.Secret, local.Command))]
    return props, opts


def _cluster_without_release(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    opts.depends_on = []
    return props, opts


def _cluster_without_provider(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    opts.provider = None
    return props, opts


def _renamed_cluster(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    metadata = props["metadata"]
    props = {**props, "metadata": k8s.meta.v1.ObjectMetaArgs(name="east-typo", namespace=metadata.namespace)}
    return props, opts


def _whole_root_secret(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    metadata = props.get("metadata")
    if metadata is None or metadata.name != GLOO_MESH_ENTERPRISE_1X.root_ca_secret:  # a read, or another Secret
        return props, opts
    # What a naive copy of the management secret would carry: the CA's private key next to its certificate.
    everything = {"ca.crt": b64(CA_CERT), "tls.crt": b64(CA_CERT), "tls.key": b64(CA_PRIVATE_KEY)}
    return {**props, "data": pulumi.Output.secret(everything)}, opts


def _injected_namespace(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    name = props["metadata"].name
    return {**props, "metadata": k8s.meta.v1.ObjectMetaArgs(name=name, labels={"istio-injection": "enabled"})}, opts


def test_a_removed_dependency_of_the_release_on_its_secrets(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(RELEASE, _release_without_secrets))
    violations = analyzer.run(recorded)
    assert names(violations) == {"registration-step-order"}
    messages = " ".join(v.message for v in violations)
    assert "root CA copy" in messages and "bootstrap token" in messages
    assert all(v.urn.endswith("::east-agent") and v.level == "mandatory" for v in violations)


def test_a_removed_dependency_of_the_kubernetes_cluster_on_the_release(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(CLUSTER_1X, _cluster_without_release))
    violations = analyzer.run(recorded)
    assert names(violations) == {"registration-step-order"}
    assert [v.urn.rsplit("::", 1)[1] for v in violations] == ["east-kubernetes-cluster"]


def test_relay_cluster_differs_from_the_kubernetes_cluster_name(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(CLUSTER_1X, _renamed_cluster))
    violations = analyzer.run(recorded)
    assert names(violations) == {"relay-cluster-matches-kubernetes-cluster"}
    assert {v.urn.rsplit("::", 1)[1] for v in violations} == {"east-agent", "east-kubernetes-cluster"}


def test_a_second_registration_of_the_same_name(analyzer: PolicyAnalyzer) -> None:
    """The component refuses this with one management Provider; two Providers of the same context get past it."""

    def program() -> None:
        first, second = (k8s.Provider(name, context="mgmt") for name in ("mgmt-a", "mgmt-b"))
        RemoteClusterRegistration("east-a", args(remote_context="east-a", mgmt_provider=first))
        RemoteClusterRegistration("east-b", args(remote_context="east-b", mgmt_provider=second))

    violations = analyzer.run(run_program(program, preview=True))
    assert names(violations) == {"relay-cluster-matches-kubernetes-cluster", "kubernetes-cluster-name"}
    duplicate = next(v for v in violations if v.policy == "kubernetes-cluster-name")
    assert "both register 'east'" in duplicate.message


def test_a_root_ca_copy_with_the_private_key(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(SECRET, _whole_root_secret))
    violations = analyzer.run(recorded)
    assert names(violations) == {"root-ca-copy-ca-crt-only"}
    assert {v.stage for v in violations} == {"Analyze"}
    assert any("tls.crt, tls.key" in v.message for v in violations)
    assert any("private key material" in v.message for v in violations)
    assert not any(CA_PRIVATE_KEY.splitlines()[1] in v.message for v in violations)


def test_a_resource_without_an_explicit_provider(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(CLUSTER_1X, _cluster_without_provider))
    assert recorded.one(CLUSTER_1X).provider == ""
    violations = analyzer.run(recorded)
    assert names(violations) == {"kubernetes-explicit-provider"}
    default_name = "default_" + metadata.version("pulumi-kubernetes").replace(
        ".", "_"
    )  # the SDK's, e.g. default_4_25_0
    assert f"default provider {default_name!r}" in violations[0].message
    # With the project's `pulumi:disable-default-providers: [kubernetes]`, the engine refuses it outright.
    with pytest.raises(AssertionError, match="Default provider for 'kubernetes' disabled"):
        analyzer.run(recorded, denied_default_providers=frozenset({"kubernetes"}))


def test_an_agent_namespace_open_to_sidecar_injection(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()), change=of_type(NAMESPACE, _injected_namespace))
    violations = analyzer.run(recorded)
    assert names(violations) == {"agent-namespace-no-istio-injection"}
    assert "'enabled'" in violations[0].message


def test_insecure_mode_is_advisory_unless_configured_mandatory_or_allowed(
    analyzer: PolicyAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = registrations(("east", args(insecure=True, relay_server_address="relay.example.com:9900")))
    violations = analyzer.run(recorded)
    assert names(violations) == {"insecure-relay-refused"}
    assert {v.level for v in violations} == {"advisory"}
    mandatory = analyzer.run(recorded, {"insecure-relay-refused": "mandatory"})
    assert {(v.policy, v.level) for v in mandatory} == {("insecure-relay-refused", "mandatory")}
    assert analyzer.run(recorded, {"insecure-relay-refused": {"allowInsecure": True}}) == []
    # The stack's own explicit allowance: the engine hands the stack config to the pack in PULUMI_CONFIG.
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({STACK_ALLOW_INSECURE_KEY: "true"}))
    assert analyzer.run(recorded, {"insecure-relay-refused": "mandatory"}) == []


def test_an_authority_outside_the_allow_list(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args(relay_authority="relay.example.com")))
    violations = analyzer.run(recorded)
    assert names(violations) == {"relay-authority-allowed"}
    assert "'relay.example.com'" in violations[0].message
    allowed = {"relay-authority-allowed": {"allowedAuthorities": ["relay.example.com"]}}
    assert analyzer.run(recorded, allowed) == []


def test_one_registration_waiting_on_another(analyzer: PolicyAnalyzer) -> None:
    def program() -> None:
        west = RemoteClusterRegistration("west", args("west"))
        RemoteClusterRegistration("east", args(), pulumi.ResourceOptions(depends_on=[west]))

    violations = analyzer.run(run_program(program, preview=True))
    assert names(violations) == {"registrations-independent"}
    assert [v.message.splitlines()[-1].split(":")[0] for v in violations] == [
        "Registration 'east' waits on registration 'west'"
    ]


def test_a_dependency_only_through_another_registrations_read_is_not_seen(analyzer: PolicyAnalyzer) -> None:
    """East's relay address is west's, discovered by west's read of the management Service: east's agent Release
    depends on that read, and the engine says so, but it hands the pack no reads, and pulumi-policy drops a dependency
    on a resource it was not handed. The read is of the management cluster, which east reaches anyway."""

    def program() -> None:
        west = RemoteClusterRegistration("west", args("west"))
        RemoteClusterRegistration("east", args(relay_server_address=west.relay_server_address))

    recorded = run_program(program, preview=True)
    read = recorded.one(SERVICE, "west-relay-service", op="read")
    assert read.parent == recorded.one(COMPONENT_TYPE, "west").urn
    assert read.urn in recorded.one(RELEASE, "east-agent").dependencies
    assert analyzer.run(recorded) == []


def test_agent_versions_that_differ_across_clusters(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args(agent_version="1.1.6")), ("west", args("west", agent_version="1.1.5")))
    violations = analyzer.run(recorded)
    assert names(violations) == {"agent-chart-version"}
    assert {v.urn.rsplit("::", 1)[1] for v in violations} == {"east-agent", "west-agent"}


def test_an_agent_version_that_differs_from_the_configured_server_version(analyzer: PolicyAnalyzer) -> None:
    recorded = stack_run(STACK_FILES[0], preview=True)
    violations = analyzer.run(recorded, {"agent-chart-version": {"expectedAgentVersion": "1.2.0"}})
    assert names(violations) == {"agent-chart-version"}
    assert "the management server runs 1.2.0" in violations[0].message
    assert analyzer.run(recorded, {"agent-chart-version": {"expectedAgentVersion": "v1.1.6"}}) == []


def _fleet_example_holding(
    monkeypatch: pytest.MonkeyPatch, held: str, version: str
) -> tuple[RecordingMonitor, dict[str, str]]:
    """The fleet example with cluster ``held`` held at ``version`` by its own agentVersion, in preview; the stack file
    handed to the pack as the engine hands it (``PULUMI_CONFIG``, ``PULUMI_PROJECT``). Returns what was recorded and
    each cluster's agent Release version."""
    stack_file = ROOT / "stacks" / "Pulumi.fleet-example.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    project = PROJECT_FILE["name"]
    clusters = [
        {**entry, "agentVersion": version} if entry["name"] == held else entry
        for entry in config[f"{project}:clusters"]
    ]
    config[f"{project}:clusters"] = clusters
    recorded = run_main(stack_file, preview=True, config_override={f"{project}:clusters": clusters})
    monkeypatch.setenv("PULUMI_PROJECT", project)
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    )
    versions = {
        plain(r.inputs)["values"]["relay"]["cluster"]: plain(r.inputs)["version"] for r in recorded.registered(RELEASE)
    }
    return recorded, versions


def test_a_staged_upgrade_that_holds_a_cluster_back_passes_the_pack(
    analyzer: PolicyAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fleet example mid-upgrade: the server (read, 1.1.6) is followed by two clusters, eu-west-1-b is held at
    1.1.5 by its own agentVersion. The pack reads the hold from the stack file, as the engine hands it over."""
    recorded, versions = _fleet_example_holding(monkeypatch, "eu-west-1-b", "1.1.5")
    assert versions == {"eu-west-1-a": "1.1.6", "eu-west-1-b": "1.1.5", "us-east-1-a": "1.1.6"}
    assert analyzer.run(recorded) == []
    # Read without the stack file's hold, the same resources break the version rule.
    monkeypatch.setenv("PULUMI_PROJECT", "another-project")
    assert names(analyzer.run(recorded)) == {"agent-chart-version"}


def test_a_hold_newer_than_the_server_its_registrations_read_is_refused(
    analyzer: PolicyAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's version reaches the pack as the following registrations' agent_version output, not as the read
    of the server Deployment (which the engine does not hand over)."""
    recorded, versions = _fleet_example_holding(monkeypatch, "eu-west-1-b", "1.1.7")
    assert versions == {"eu-west-1-a": "1.1.6", "eu-west-1-b": "1.1.7", "us-east-1-a": "1.1.6"}
    [violation] = analyzer.run(recorded)
    assert (violation.policy, violation.level, violation.urn.rsplit("::", 1)[1]) == (
        "agent-chart-version",
        "mandatory",
        "eu-west-1-b-agent",
    )
    assert violation.message.endswith(
        "Release 'eu-west-1-b-agent' installs agent 1.1.7, held by the stack file's agentVersion of cluster "
        "'eu-west-1-b', which is newer than the management server's version as registrations 'eu-west-1-a', "
        "'us-east-1-a' read it from the server Deployment: 1.1.6. An agent may stay behind its server during a staged "
        "upgrade, never ahead of it."
    )


def _older_chart(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    return {**props, "version": "1.1.5"}, opts


def test_an_agent_release_behind_the_version_its_registration_read(
    analyzer: PolicyAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Release that is not at the server's version its registration read (here changed by a transformation; for
    real, an `up --target` that leaves it behind after a server upgrade): one cluster, so only the registration's
    output tells the pack the server's version, where the stack file lets the cluster follow the server."""
    recorded = registrations(("east", args()), change=of_type(RELEASE, _older_chart))
    assert plain(recorded.one(RELEASE, "east-agent").inputs)["version"] == "1.1.5"
    assert analyzer.run(recorded) == []  # no stack file: the output might be a version given to the registration
    monkeypatch.setenv("PULUMI_PROJECT", "platform-team")
    clusters = json.dumps([{"name": "east", "context": "east-ctx"}])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"platform-team:clusters": clusters}))
    [violation] = analyzer.run(recorded)
    assert (violation.policy, violation.stage, violation.urn.rsplit("::", 1)[1]) == (
        "agent-chart-version",
        "AnalyzeStack",
        "east-agent",
    )
    assert violation.message.endswith(
        "Release 'east-agent' installs agent 1.1.5; the management server runs 1.1.6, as registration 'east' read it "
        "from the server Deployment."
    )


def test_a_kubernetes_cluster_outside_the_configured_management_namespace(analyzer: PolicyAnalyzer) -> None:
    recorded = registrations(("east", args()))
    violations = analyzer.run(recorded, {"kubernetes-cluster-name": {"managementNamespace": "gloo-mesh-system"}})
    assert names(violations) == {"kubernetes-cluster-name"}


# -- Gloo Platform 2.x --------------------------------------------------------------------------------------------


def platform_registrations(
    *entries: tuple[str, RemoteClusterRegistrationArgs],
    change: pulumi.ResourceTransformation | None = None,
) -> RecordingMonitor:
    """As :func:`registrations`, against a Gloo Platform 2.x management plane (discovered)."""
    return run_registrations(*entries, fake=FakeClusters(platform=True), preview=True, change=change)


def _release_without_its_crds(props: Any, opts: pulumi.ResourceOptions) -> tuple[Any, pulumi.ResourceOptions]:
    depends_on = opts.depends_on if isinstance(opts.depends_on, list) else []
    opts.depends_on = [d for d in depends_on if not isinstance(d, k8s.helm.v3.Release)]
    return props, opts


def test_a_gloo_platform_2_registration_passes_every_policy(analyzer: PolicyAnalyzer) -> None:
    assert analyzer.run(platform_registrations(("east", args()), ("west", args("west")))) == []


def test_a_gloo_platform_2_agent_that_does_not_wait_for_its_crds(analyzer: PolicyAnalyzer) -> None:
    recorded = platform_registrations(("east", args()), change=of_type(RELEASE, _release_without_its_crds))
    violations = analyzer.run(recorded)
    assert names(violations) == {"registration-step-order"}
    assert any("gloo-platform-crds Release" in v.message for v in violations)


def test_gloo_platform_2_values_are_checked_at_their_own_paths(analyzer: PolicyAnalyzer) -> None:
    recorded = platform_registrations(("east", args(relay_authority="relay.other.example")))
    violations = analyzer.run(recorded)
    assert names(violations) == {"relay-authority-allowed"}
    assert any("glooAgent.relay.authority 'relay.other.example'" in v.message for v in violations)
    insecure = analyzer.run(platform_registrations(("east", args(insecure=True))))
    assert names(insecure) == {"insecure-relay-refused"}


def test_a_gloo_platform_2_agent_registered_under_another_name(analyzer: PolicyAnalyzer) -> None:
    recorded = platform_registrations(("east", args()), change=of_type(CLUSTER_2X, _renamed_cluster))
    violations = analyzer.run(recorded)
    assert names(violations) == {"relay-cluster-matches-kubernetes-cluster"}
    assert any("common.cluster 'east'" in v.message for v in violations)
