"""A test double of the Pulumi engine: records what the engine would receive, answers like two live clusters.

``RecordingMonitor`` subclasses the SDK's ``MockMonitor`` and keeps every RegisterResource / ReadResource /
Invoke request as the engine would get it (type, name, parent, provider reference, dependencies, inputs with
their secret wrappers). Engine behaviour it emulates, with its source:

* ``additionalSecretOutputs``: the engine marks those output properties secret (pulumi/pulumi
  ``pkg/resource/deploy/step_executor.go``, "additional secret outputs"); the stock MockMonitor ignores them.
* Reads (``X.get``) answer from live cluster state, during preview too (pulumi docs, "Resource get functions").
* URNs: the parent's full qualified type chain plus the type and name, the root stack's type left out; a second
  resource or read with a URN already used in the run fails with the engine's message (pulumi/pulumi
  ``pkg/resource/deploy/deployment.go`` ``generateURN``, ``step_generator.go`` ``generateURN``;
  ``sdk/go/common/diag/errors.go``). The stock MockMonitor keeps only the parent's last type and checks nothing.

``FakeClusters`` is the live state of a management and a remote cluster; tests change it to model failures.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import mocks, rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import get_project, get_stack
from pulumi.runtime.sync_await import _sync_await

from gloo_mesh_registration.lifecycle import (
    CHECK_KUBECTL,
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_NAMESPACE,
    ENV_RELAY_SECRETS,
    FIND_EXISTING,
    READ_RELAY_SECRETS,
)

CA_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfakeRootCA\n-----END CERTIFICATE-----\n"
CA_PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEfakeROOTKEYmaterial\n-----END RSA PRIVATE KEY-----\n"
BOOTSTRAP_TOKEN = "s3cr3t-bootstrap-token-7f9c2e"
KUBECONFIG_CONTENTS = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: kubeconfig-bearer-9d1e\n"
ROOT = Path(__file__).resolve().parents[1]
STACK_FILES = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
"""Every stack file, for the tests that run each one through ``run_main`` (or ``stack_run``)."""

# Type tokens as the engine receives them, spelled once for all fast tests. What the program declares is compared with
# these literals, not with the product's constants: a token taken from the product would check nothing.
STACK_TYPE = "pulumi:pulumi:Stack"
COMPONENT = "gloo-mesh-relay:index:RemoteClusterRegistration"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
NODE = "kubernetes:core/v1:Node"
CLUSTER_1X = "kubernetes:multicluster.solo.io/v1alpha1:KubernetesCluster"
"""The KubernetesCluster of Gloo Mesh Enterprise 1.x."""
CLUSTER_2X = "kubernetes:admin.gloo.solo.io/v2:KubernetesCluster"
"""The KubernetesCluster of Gloo Platform 2.x."""
COMMAND = "command:local:Command"
LOCAL_RUN = "command:local:run"
"""The invoke a step's shell command runs through (``local.run``)."""
KUBECTL_CHECKED_BY = "4242"
"""What the run's kubectl check prints: the PID of the process that ran it (the command provider)."""
SECRET_VALUES = (CA_PRIVATE_KEY, BOOTSTRAP_TOKEN, "kubeconfig-bearer-9d1e")
KEEPS_TOKEN = "\nGM_REMOVE_TOKEN=no\n"
"""The certificate step's setting that keeps the token after a successful run (2.x's default)."""
REMOVES_TOKEN = "\nGM_REMOVE_TOKEN=yes\n"
"""The certificate step's setting that removes the token after a successful run, and one left behind earlier."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _server_deployment(name: str, tag: str) -> dict[str, Any]:
    """A management server's Deployment in gloo-mesh, one per generation: one container named as the server, whose
    image tag is the version the component discovers (the tests that add sidecars or change the image start here)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "gloo-mesh"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": f"gcr.io/gloo-mesh/{name}:{tag}"}]},
            },
        },
    }


def _default_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Live objects of the management cluster, keyed by (type token, "namespace/name" or "name")."""
    return {
        (SECRET, "gloo-mesh/relay-root-tls-secret"): {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "relay-root-tls-secret", "namespace": "gloo-mesh"},
            "type": "Opaque",
            "data": {"ca.crt": b64(CA_CERT), "tls.key": b64(CA_PRIVATE_KEY), "tls.crt": b64(CA_CERT)},
        },
        (SECRET, "gloo-mesh/relay-identity-token-secret"): {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "relay-identity-token-secret", "namespace": "gloo-mesh"},
            "type": "Opaque",
            "data": {"token": b64(BOOTSTRAP_TOKEN)},
        },
        (DEPLOYMENT, "gloo-mesh/enterprise-networking"): _server_deployment("enterprise-networking", "1.1.6"),
        (SERVICE, "gloo-mesh/enterprise-networking"): {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "enterprise-networking", "namespace": "gloo-mesh"},
            "spec": {
                "type": "LoadBalancer",
                "ports": [
                    {"name": "grpc", "port": 9900, "targetPort": 9900, "nodePort": 31900},
                    {"name": "http", "port": 8090, "targetPort": 8090},
                ],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
        },
        (SERVICE, "istio-system/istio-ingressgateway"): {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
            "spec": {
                "type": "NodePort",
                "ports": [
                    {"name": "http2", "port": 80, "nodePort": 30080},
                    {"name": "https", "port": 443, "nodePort": 32443},
                ],
            },
        },
        (NODE, "mgmt-cluster-control-plane"): {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "mgmt-cluster-control-plane"},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "172.18.0.2"},
                    {"type": "Hostname", "address": "mgmt-cluster-control-plane"},
                ]
            },
        },
    }


class CommandFailedError(Exception):
    """What pulumi-command reports for a step that exits non-zero (``<exit error>: running "<command>":\n<output>``,
    pulumi/pulumi-command ``provider/pkg/provider/local/commandOutputs.go``)."""


def certificate_step_output(args: dict[str, Any]) -> str:
    """What the client certificate step prints on stderr for an agent that takes 17 s: the lines of
    ``lifecycle.client_certificate_step`` with its cluster and namespace (read from the script the invoke carries;
    the script itself runs with the real kubectl in tests/e2e/test_lifecycle_kubectl.py)."""
    program = str(plain(args).get("interpreter", ["", "", ""])[2])
    cluster = re.search(r"^GM_CLUSTER=(\S+)$", program, re.MULTILINE)
    namespace = re.search(r"^GM_NAMESPACE=(\S+)$", program, re.MULTILINE)
    assert cluster is not None and namespace is not None, "not the client certificate step's script"
    return (
        f"cluster {cluster[1]}: waiting for the agent's client certificate (15s of 300s)\n"
        f"cluster {cluster[1]}: the agent holds its client certificate (after 17s)\n"
        f"bootstrap token removed from namespace {namespace[1]}"
    )


@dataclass(frozen=True)
class LogRecord:
    """One ``pulumi.log`` message as the engine would receive it."""

    severity: str  # "debug" | "info" | "warning" | "error"
    message: str
    urn: str
    ephemeral: bool


LOG_SEVERITIES = {0: "debug", 1: "info", 2: "warning", 3: "error"}
"""``engine.proto``'s ``LogSeverity`` values."""


class RecordingEngine:
    """The engine's ``Log`` endpoint: records each message with its URN, then hands it to the mock runtime's own
    engine (which passes it to Python's ``logging``, where tests read it with ``caplog``)."""

    def __init__(self, logs: list[LogRecord], inner: Any) -> None:
        self.logs = logs
        self.inner = inner

    def Log(self, request: Any) -> None:  # noqa: N802 (gRPC method name)
        self.logs.append(
            LogRecord(LOG_SEVERITIES[int(request.severity)], request.message, request.urn, bool(request.ephemeral))
        )
        self.inner.Log(request)


class DuplicateURNError(Exception):
    """What the engine reports for a second resource under a URN already used in the deployment."""


def gloo_platform_2_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Live objects of a Gloo Platform 2.x management cluster: the same relay secrets, server
    ``gloo-mesh-mgmt-server`` (image tag 2.5.8, the agent version), its Service, the telemetry gateway."""
    objects = {key: value for key, value in _default_objects().items() if "enterprise-networking" not in key[1]}
    objects[(DEPLOYMENT, "gloo-mesh/gloo-mesh-mgmt-server")] = _server_deployment("gloo-mesh-mgmt-server", "2.5.8")
    for name, port, address in (
        ("gloo-mesh-mgmt-server", {"name": "grpc", "port": 9900}, "203.0.113.20"),
        ("gloo-telemetry-gateway", {"name": "otlp", "port": 4317}, "203.0.113.21"),
    ):
        objects[(SERVICE, f"gloo-mesh/{name}")] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "gloo-mesh"},
            "spec": {"type": "LoadBalancer", "ports": [port]},
            "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
        }
    return objects


class ObjectNotFoundError(Exception):
    """What the kubernetes provider reports for a read of an object that does not exist."""


class FakeClusters(mocks.Mocks):
    """Live state behind reads and the ``command:local:run`` relay secrets read; registrations echo their inputs."""

    def __init__(self, mgmt_context: str | None = None, *, platform: bool = False) -> None:
        self.objects = gloo_platform_2_objects() if platform else _default_objects()
        self.invokes: list[mocks.MockCallArgs] = []
        self.mgmt_context = mgmt_context
        self.kubectl_fails: str | None = None
        """When set, the run's kubectl check reports this problem (kubectl missing or too old)."""
        self.agent_fails: str | None = None
        """When set, the client certificate step fails with this output (an agent that never connects)."""
        self.certificate_output: str | None = None
        """When set, what the client certificate step prints (stderr) when it ends well; else
        :func:`certificate_step_output`."""
        self.existing: set[str] = set()
        """Objects on the clusters besides the management plane, as the find-existing step names them
        (``namespace/<name>``, ``secret/<ns>/<name>``, ``helm-release/<ns>/<name>``, ``<resource>/<ns>/<name>``,
        ``helm-crds/<ns>/<release>``)."""
        self.details: dict[str, list[str]] = {}
        """What the find-existing step prints after a reference of ``existing`` (``helm-crds``: ``<ns>/<crd>``)."""
        self.unreachable: dict[str, str] = {}
        """Contexts of clusters that do not answer, with kubectl's reason: the find-existing step prints
        ``UNREACHABLE <reason>`` for them, as the real script does when kubectl fails."""
        self.forbidden: dict[str, str] = {}
        """Contexts of clusters whose RBAC refuses the find-existing step's look, with the permission refused as the
        API server names it: the step prints ``FORBIDDEN <that>``, as the real script does."""
        self.forbidden_secrets: dict[str, str] = {}
        """Relay secrets (by name) whose read RBAC refuses, with the permission refused: the relay secrets read prints
        ``<name> FORBIDDEN <that>``, as the real script does."""
        self.managed: set[str] = set()
        """Logical names of the resources the stack manages already: in a preview, every other resource is being
        created and gets an unknown ID, as the engine answers (a preview's create step has no ID yet)."""
        self.preview = False

    def secret_data(self, ref: str) -> dict[str, str]:
        return self.objects[(SECRET, ref)]["data"]  # type: ignore[no-any-return]

    def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.invokes.append(args)
        if args.token == LOCAL_RUN and args.args.get("command") == CHECK_KUBECTL:
            if self.kubectl_fails is not None:
                return {"stdout": f"PROBLEM {self.kubectl_fails}\n", "stderr": ""}
            return {"stdout": f"CHECKED {KUBECTL_CHECKED_BY}\n", "stderr": ""}
        if args.token == LOCAL_RUN and args.args.get("command") == READ_RELAY_SECRETS:
            return {"stdout": self._relay_secrets_report(args.args.get("environment") or {}), "stderr": ""}
        if args.token == LOCAL_RUN and args.args.get("command") == FIND_EXISTING:
            environment = args.args.get("environment") or {}
            if environment.get(ENV_CONTEXT) in self.unreachable:
                return {"stdout": f"UNREACHABLE {self.unreachable[environment[ENV_CONTEXT]]}\n", "stderr": ""}
            if environment.get(ENV_CONTEXT) in self.forbidden:
                return {"stdout": f"FORBIDDEN {self.forbidden[environment[ENV_CONTEXT]]}\n", "stderr": ""}
            refs = environment.get("GM_OBJECTS", "").split()
            found = [" ".join([ref, *self.details.get(ref, [])]) for ref in refs if self._exists(ref)]
            return {"stdout": "\n".join(found), "stderr": ""}
        if args.token == LOCAL_RUN and args.args.get("command") == ENSURE_CERTIFICATE:
            if self.agent_fails is not None:
                raise CommandFailedError(f'exit status 1: running "{ENSURE_CERTIFICATE}":\n{self.agent_fails}')
            return {"stdout": "", "stderr": self.certificate_output or certificate_step_output(args.args)}
        raise NotImplementedError(f"{args.token} {args.args.get('command')!r}")

    def _exists(self, ref: str) -> bool:
        """Whether the find-existing step would print ``ref``: a management object of this state (``deployments/...``)
        or one of ``existing`` (leftovers: none carries a stack's owner label, so ``@owned`` changes nothing)."""
        ref = ref.removesuffix("@owned")
        kind, _, rest = ref.partition("/")
        if kind == "deployments":
            return (DEPLOYMENT, rest) in self.objects
        return ref in self.existing

    def _relay_secrets_report(self, environment: dict[str, str]) -> str:
        """Answer the relay secrets read as the real script does against this state (the script itself runs with
        the real kubectl in tests/e2e/test_lifecycle_kubectl.py): in the namespace and for the ``secret=key`` pairs its
        environment names, ``name keys k=len ...`` and ``name value <base64>``, or ``name MISSING``. A context other
        than ``mgmt_context`` (when set) is a cluster without those secrets."""
        namespace = environment.get(ENV_NAMESPACE, "")
        wrong_cluster = self.mgmt_context is not None and environment.get(ENV_CONTEXT) != self.mgmt_context
        lines = []
        for pair in environment.get(ENV_RELAY_SECRETS, "").split():
            name, _, key = pair.partition("=")
            if name in self.forbidden_secrets:
                lines.append(f"{name} FORBIDDEN {self.forbidden_secrets[name]}")
                continue
            obj = None if wrong_cluster else self.objects.get((SECRET, f"{namespace}/{name}"))
            if obj is None:
                lines.append(f"{name} MISSING")
                continue
            data = obj.get("data") or {}
            lines.append(f"{name} keys " + " ".join(f"{k}={len(v)}" for k, v in sorted(data.items())))
            if data.get(key):
                lines.append(f"{name} value {data[key]}")
        return "\n".join(lines) + "\n"

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.resource_id and not args.inputs:  # a read (X.get)
            obj = self.objects.get((args.typ, args.resource_id))
            if obj is None:
                raise ObjectNotFoundError(f'resource "{args.resource_id}" of type {args.typ} does not exist')
            return args.resource_id, copy.deepcopy(obj)
        state = dict(args.inputs)
        creating = self.preview and args.custom and args.name not in self.managed
        if args.typ == RELEASE:
            state["status"] = {"status": "deployed", "name": state.get("name"), "version": state.get("version")}
        if args.typ == COMMAND:
            state.update({"stdout": "", "stderr": ""})
        return ("" if creating else f"{args.name}-id"), state


@dataclass
class Recorded:
    """One request as the engine would receive it."""

    op: str  # "register" | "read"
    type: str
    name: str
    urn: str
    parent: str
    provider: str
    dependencies: frozenset[str]
    inputs: dict[str, Any]
    custom: bool
    additional_secret_outputs: tuple[str, ...]
    resource_id: str = ""
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    aliases: tuple[dict[str, Any], ...] = ()
    """Alias specs as the engine receives them (``{"spec": {"type": ...}}`` or ``{"urn": ...}``)."""

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""


@dataclass(frozen=True)
class Invocation:
    """One invoke as the engine would receive it: token, arguments with their secret wrappers, and every resource
    registered before it was sent (the SDK sends an invoke only once its ``depends_on`` are registered)."""

    token: str
    args: dict[str, Any]
    after: tuple[str, ...]
    provider: str = ""
    """The provider reference (``urn::id``) the SDK sent: the invoke's own, or its parent's for the package."""

    @property
    def command(self) -> str:
        return str(plain(self.args).get("command", ""))


@dataclass
class RecordingMonitor(mocks.MockMonitor):
    """MockMonitor that records requests and honours ``additionalSecretOutputs`` like the engine."""

    fake: FakeClusters
    records: list[Recorded] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    """What the program logged (``pulumi.log``), in order."""
    registered_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per URN, what a component registered as its outputs (``register_outputs``: the engine stores them in the
    component's state, where ``pulumi stack export`` and a parent's program see them)."""

    def __post_init__(self) -> None:
        super().__init__(self.fake)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            qualified = parent.split("::")[2]
            if qualified != STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def _record(self, op: str, request: Any, properties: Any) -> None:
        urn = self.make_urn(request.parent, request.type, request.name)
        if any(r.urn == urn for r in self.records):
            raise DuplicateURNError(f"Duplicate resource URN '{urn}'; try giving it a unique name")
        self.records.append(
            Recorded(
                op=op,
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent,
                provider=request.provider,
                dependencies=frozenset(request.dependencies),
                inputs=rpc.deserialize_properties(properties, keep_unknowns=True),
                custom=getattr(request, "custom", True),
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                resource_id=getattr(request, "id", "") or getattr(request, "importId", ""),
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                protect=bool(getattr(request, "protect", False)),
                ignore_changes=tuple(getattr(request, "ignoreChanges", ())),
                replace_on_changes=tuple(getattr(request, "replaceOnChanges", ())),
                aliases=tuple(MessageToDict(alias) for alias in getattr(request, "aliases", ())),
            )
        )

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.tok != "pulumi:pulumi:getResource":
            self.invocations.append(
                Invocation(
                    token=request.tok,
                    args=rpc.deserialize_properties(request.args, keep_unknowns=True),
                    after=tuple(r.urn for r in self.records),
                    provider=request.provider,
                )
            )
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.type != STACK_TYPE:
            self._record("register", request, request.object)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        return self._mark_secret_outputs(response, request.additionalSecretOutputs)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.registered_outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self._record("read", request, request.properties)
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        return self._mark_secret_outputs(response, request.additionalSecretOutputs)

    @staticmethod
    def _mark_secret_outputs(response: Any, secret_keys: Any) -> Any:
        if not secret_keys:
            return response
        struct = response.object if hasattr(response, "object") and response.HasField("object") else response.properties
        state = rpc.deserialize_properties(struct, keep_unknowns=True)
        for key in secret_keys:
            if key in state and not rpc.is_rpc_secret(state[key]):
                state[key] = rpc.wrap_rpc_secret(state[key])
        struct.CopyFrom(_sync_await(rpc.serialize_properties(state, {})))
        return response

    # -- queries used by the tests --------------------------------------------------------------------------

    def registered(self, type_: str | None = None) -> list[Recorded]:
        return [r for r in self.records if r.op == "register" and (type_ is None or r.type == type_)]

    def reads(self, type_: str | None = None) -> list[Recorded]:
        return [r for r in self.records if r.op == "read" and (type_ is None or r.type == type_)]

    def said(self) -> list[LogRecord]:
        """What the program logged for users: ``logs`` without debug messages (the SDK's own are debug)."""
        return [log for log in self.logs if log.severity != "debug"]

    def invoked(self, command: str) -> list[Invocation]:
        """The ``command:local:run`` invokes of one step (by its verb)."""
        return [i for i in self.invocations if i.token == LOCAL_RUN and i.command == command]

    def one(self, type_: str, name_suffix: str = "", op: str = "register") -> Recorded:
        found = [r for r in self.records if r.op == op and r.type == type_ and r.name.endswith(name_suffix)]
        assert len(found) == 1, f"expected one {type_} *{name_suffix}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self) -> dict[str, Recorded]:
        return {r.urn: r for r in self.records}

    def ancestors_closure(self, urn: str) -> set[str]:
        """Every URN that ``urn`` waits on, transitively (dependencies, as the engine orders steps)."""
        index = self.by_urn()
        seen: set[str] = set()
        stack = [urn]
        while stack:
            current = index.get(stack.pop())
            if current is None:
                continue
            for dep in current.dependencies:
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any, bool]]:
    """Yield (path, leaf, inside_secret) for every leaf of a deserialized property tree."""
    if rpc.is_rpc_secret(value):
        for sub_path, leaf, _ in walk(rpc.unwrap_rpc_secret(value), path):
            yield sub_path, leaf, True
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")
        return
    yield path, value, False


def plain(value: Any) -> Any:
    """A deserialized property tree with every secret wrapper removed."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def run_program(
    program: Callable[[], Any],
    fake: FakeClusters | None = None,
    *,
    preview: bool = False,
    project: str = "gloo-mesh-relay-registration",
    stack: str = "test",
    monitor: RecordingMonitor | None = None,
) -> RecordingMonitor:
    """Run ``program`` on the mock runtime with a fresh monitor and root stack; return what was recorded.

    Raises what the program raised (the SDK re-raises exceptions from applies after all RPCs finish).
    """
    monitor = monitor or RecordingMonitor(fake or FakeClusters())
    fake = monitor.fake
    fake.preview = preview
    pulumi.runtime.settings.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_mocks(fake, project=project, stack=stack, preview=preview, monitor=monitor)
    settings = pulumi.runtime.settings.SETTINGS
    settings.engine = RecordingEngine(monitor.logs, settings.engine)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> pulumi.Output[Any]:
        result = program()
        return pulumi.Output.from_input(result if isinstance(result, pulumi.Output) else None)

    body()
    return monitor


def fake_for(stack_file: Path) -> FakeClusters:
    """The management plane a stack file expects: Gloo Platform 2.x when it says so, else Gloo Mesh Enterprise 1.x."""
    config = yaml.safe_load(stack_file.read_text()).get("config", {})
    management: dict[str, Any] = next((v for k, v in config.items() if k.endswith(":management")), {})
    return FakeClusters(platform=management.get("agentGeneration") == "gloo-platform-2")


def run_main(
    stack_file: Path,
    fake: FakeClusters | None = None,
    *,
    preview: bool = False,
    config_override: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    monitor: RecordingMonitor | None = None,
) -> RecordingMonitor:
    """Run the project's ``__main__.py`` on the mock runtime with the config of a ``stacks/`` file.

    Emulates what the CLI's Python language host gives the program: every config value as text (objects as
    JSON) under its ``project:key`` name in the PULUMI_CONFIG environment variable, and the secret keys in
    PULUMI_CONFIG_SECRET_KEYS (pulumi/pulumi ``sdk/python/cmd/pulumi-language-python``; read back by
    ``sdk/python/lib/pulumi/runtime/config.py``).
    """
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    raw = yaml.safe_load(stack_file.read_text()).get("config", {}) | (config_override or {})
    config = {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    saved = {key: os.environ.get(key) for key in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys or [])
    set_all_config({}, [])
    try:
        if fake is None and monitor is None:
            fake = fake_for(stack_file)
        return run_program(program, fake, preview=preview, project=project, stack=stack, monitor=monitor)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_STACK_RUNS: dict[tuple[Path, bool], RecordingMonitor] = {}


def stack_run(stack_file: Path, *, preview: bool = False) -> RecordingMonitor:
    """``run_main`` of a stack file as it stands, once per session for up and once for preview: every test that asks
    for the same run gets the same record, so none may change it (a test that changes the config or the clusters calls
    ``run_main`` itself)."""
    key = (stack_file, preview)
    if key not in _STACK_RUNS:
        _STACK_RUNS[key] = run_main(stack_file, preview=preview)
    return _STACK_RUNS[key]
