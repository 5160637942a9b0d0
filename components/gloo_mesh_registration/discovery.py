"""Discovery from the management cluster: agent version, relay address, the two relay secret values, and the
agent generation.

**One regime for discovered facts: Outputs.** The agent version, the relay address, the telemetry gateway and the
relay secrets are read as Pulumi Outputs (``X.get`` reads through the management Provider; the secrets by a
``command:local:run`` invoke), whatever the caller gave. Why Outputs: a registration imported into a larger program may
reach its management cluster through a kubeconfig that is an unknown Output during preview (a cluster created by the
same program) or through a Provider object alone; only reads the engine makes through that Provider work there. They
also run in ``pulumi preview``, so a preview shows what ``pulumi up`` will use. Bad discovered input is still refused
before anything is created on the registered cluster: the first resource there (the namespace) waits on the checked
version and on the secrets read, so a refused version fails the run before it.

**The one exception: facts that decide what is declared** are read by a plain (blocking) kubectl run before the
first resource: the agent generation (:func:`discover_generation`: the KubernetesCluster's apiVersion, the charts and
which releases exist depend on it, and a resource's type must be known when it is declared) and, with ``adopt``, the
agent release's name (:func:`find_agent_releases`: an import of the wrong name cannot be undone by the Output that
would find it). They need kubectl access that is known now (a context or a kubeconfig string); without it the
generation must be given (``agent_generation``), and the message says so.

What both share: one cache per program run (:func:`_once`, keyed by what is read and how the cluster is reached, so a
fleet reads each management object once), and one way of reporting: :class:`DiscoveryError` when the cluster does not
answer what is needed, :class:`RegistrationConfigError` when an argument must be set instead; each names the object,
the cluster access and the fix. API modules are imported where they are used: ``pulumi_kubernetes.apps.v1`` costs
start-up time and is needed only when the version must be discovered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pulumi
import pulumi_kubernetes as k8s

from .agent_generation import GENERATIONS, AgentGeneration
from .args import (
    ClusterAccess,
    FieldLabel,
    RegistrationConfigError,
    RegistrationSettings,
    RelayDiscovery,
    check_host_port,
)
from .facts import image_tag
from .lifecycle import (
    FIND_EXISTING,
    READ_RELAY_SECRETS,
    ExistingObjects,
    ForbiddenError,
    checked_kubectl,
    existing_objects_step,
    kubectl_environment,
    objects_environment,
    parse_existing,
    parse_relay_secrets_report,
    relay_secrets_environment,
    relay_secrets_step,
    run_step,
)
from .program_run import run_state
from .rbac import ISTIO_INGRESS_SERVICE, ISTIO_NAMESPACE, RBAC_DOCS, manifest_path
from .sdk_internals import hosting_component_provider
from .validation import check_generation_version, generation_version_problem, normalize_agent_version


class DiscoveryError(pulumi.RunError):
    """The management cluster does not answer what the registration needs; the message says what to set."""


T = TypeVar("T")


def _once(key: tuple[object, ...], make: Callable[[], T]) -> T:
    """``make()`` once per program run and ``key``: the one cache of discovered facts (a later run in this process
    reads afresh)."""
    facts = run_state("discovered-facts")
    if key not in facts:
        facts[key] = make()
    made: T = facts[key]
    return made


def _access_key(access: ClusterAccess) -> tuple[object, ...]:
    """How a cluster is reached, as part of a cache key (an Output kubeconfig by identity: its value is not known)."""
    return (access.context, access.kubeconfig if isinstance(access.kubeconfig, str) else id(access.kubeconfig))


@dataclass(frozen=True)
class ReadScope:
    """Where a registration's reads of the management cluster live, and whether they are shared.

    Through a Provider the caller passes in (``mgmt_provider``), every registration that uses it reads each
    management object once: one read of the server Deployment and Service, and one read of the relay secrets, per
    management plane instead of per cluster. Those shared reads are children of that Provider, not of one
    registration, so no cluster's resources wait on another cluster's; they are named after the Provider and the
    object they read. An engine URN is the parent's type chain plus the name (pulumi/pulumi
    ``pkg/resource/deploy/deployment.go``, ``generateURN``), so the reads' URNs are distinct whenever the Providers'
    are, and distinct for every object read through one Provider; the engine rejects a duplicate URN, reads included
    (``step_generator.go``). Through the registration's own Provider, the reads are the registration's children.
    """

    prefix: str
    parent: pulumi.Resource
    provider: k8s.Provider
    shared_key: tuple[object, ...] | None

    @staticmethod
    def of(name: str, settings: RegistrationSettings, provider: k8s.Provider, component: pulumi.Resource) -> ReadScope:
        if settings.mgmt.provider is None or _served_to_other_languages():
            return ReadScope(prefix=name, parent=component, provider=provider, shared_key=None)
        provider_name = provider.pulumi_resource_name
        return ReadScope(prefix=provider_name, parent=provider, provider=provider, shared_key=(id(provider),))

    def name(self, kind: str, ref: str) -> str:
        """The logical name of the read of ``ref`` (``namespace/name``, or a cluster-scoped name) as ``kind``:
        ``<registration>-<kind>`` for a registration's own read, ``<provider>-<kind>-<namespace>.<name>`` for a shared
        one (a namespace holds no dot, so distinct objects get distinct names)."""
        if self.shared_key is None:
            return f"{self.prefix}-{kind}"
        return f"{self.prefix}-{kind}-{ref.replace('/', '.')}"

    def once(self, what: tuple[object, ...], make: Callable[[], T]) -> T:
        """``make()`` once per shared scope and ``what``; every call in an unshared scope."""
        if self.shared_key is None:
            return make()
        return _once((*self.shared_key, *what), make)

    def opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.provider, parent=self.parent, **kwargs)


def _served_to_other_languages() -> bool:
    """Whether this process is the component provider (`provider/__main__.py`). The engine sends it one Construct per
    registration, each with fresh runtime settings and its own copy of the Provider reference (pulumi/pulumi
    sdk/python/lib/pulumi/provider/server.py, `_construct`), so reads cannot be shared across registrations there:
    shared names would be declared twice."""
    return hosting_component_provider()


def _given(value: pulumi.Input[str] | None, check: Callable[[str], str]) -> pulumi.Output[str] | None:
    """A value the user gave instead of discovery: plain strings were checked already, Outputs are checked once
    they resolve (they may come from other resources). None when nothing was given."""
    if value is None:
        return None
    if isinstance(value, str):
        return pulumi.Output.from_input(value)
    return pulumi.Output.from_input(cast("pulumi.Output[str]", value)).apply(check)


def resolve_agent_version(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[str]:
    """Step 1: the given version, else the image tag of the server Deployment (as meshctl does)."""
    given = _given(
        settings.agent_version,
        lambda v: check_generation_version(
            "agent_version", normalize_agent_version("agent_version", v), settings.generation
        ),
    )
    if given is not None:
        return given
    return scope.once(("agent-version", settings.mgmt_namespace), lambda: _discover_agent_version(scope, settings))


def _discover_agent_version(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[str]:
    from pulumi_kubernetes.apps.v1 import Deployment

    gen = settings.generation
    ref = f"{settings.mgmt_namespace}/{gen.server_deployment}"
    deployment = Deployment.get(scope.name("server-deployment", ref), ref, opts=scope.opts())
    where = f"Deployment {settings.mgmt_namespace}/{gen.server_deployment} ({settings.mgmt.describe()})"

    def version_from_spec(spec: Any) -> str:
        containers = list(spec.template.spec.containers or []) if spec is not None else []
        container = next((c for c in containers if gen.server_container_hint in (c.name or "")), None)
        container = container or (containers[0] if containers else None)
        if container is None or not container.image:
            raise DiscoveryError(f"{where} has no {gen.server_container_hint} container image. Fix: set agent_version.")
        tag = image_tag(container.image)
        if tag is None:
            raise DiscoveryError(
                f"{where} runs image {container.image!r}, which has no tag (digest-pinned), so the agent version "
                "cannot be read from it. Fix: set agent_version to the enterprise-networking version."
            )
        try:
            version = normalize_agent_version("agent_version", tag)
        except RegistrationConfigError:
            raise DiscoveryError(
                f"{where} runs image {container.image!r}, whose tag {tag!r} is not a version (mirrored or re-tagged "
                "image?). Fix: set agent_version to the enterprise-networking version."
            ) from None
        refused = generation_version_problem(version, gen)
        if refused is not None:
            problem, fix = refused
            raise DiscoveryError(
                f"agent_version: {version!r}, the server version discovered from {where} (image "
                f"{container.image!r}), {problem}. Fix: {fix}"
            )
        return version

    return deployment.spec.apply(version_from_spec)


def resolve_relay_address(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[str]:
    """Step 2: the given `host:port`, else discovered from the server's LoadBalancer or the Istio ingress NodePort."""
    given = _given(settings.relay_server_address, lambda a: check_host_port("relay_server_address", a))
    if given is not None:
        return given
    gen = settings.generation
    if settings.relay_discovery is RelayDiscovery.LOADBALANCER:
        return scope.once(
            ("relay-address-lb", settings.mgmt_namespace, gen.server_service),
            lambda: _address_from_load_balancer(
                scope,
                settings,
                service=gen.server_service,
                port_name=gen.server_grpc_port_name,
                kind="relay-service",
                argument="relay_server_address",
                fix="set relay_server_address (or relay_discovery: istio-ingress-nodeport)",
            ),
        )
    return scope.once(
        ("relay-address-nodeport", settings.relay_node_name), lambda: _address_from_node_port(scope, settings)
    )


def resolve_telemetry_address(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[str] | None:
    """Gloo Platform 2.x with telemetry: the given gateway `host:port`, else its LoadBalancer and `otlp` port."""
    if not settings.telemetry:
        return None
    given = _given(settings.telemetry_gateway_address, lambda a: check_host_port("telemetry_gateway_address", a))
    if given is not None:
        return given
    gen = settings.generation
    service, port_name = gen.telemetry_service, gen.telemetry_port_name
    assert service is not None and port_name is not None  # validation allows telemetry only where there is a gateway
    return scope.once(
        ("telemetry-address-lb", settings.mgmt_namespace, service),
        lambda: _address_from_load_balancer(
            scope,
            settings,
            service=service,
            port_name=port_name,
            kind="telemetry-service",
            argument="telemetry_gateway_address",
            fix="set telemetry_gateway_address",
        ),
    )


def _address_from_load_balancer(
    scope: ReadScope,
    settings: RegistrationSettings,
    *,
    service: str,
    port_name: str,
    kind: str,
    argument: str,
    fix: str,
) -> pulumi.Output[str]:
    """The ingress address of a LoadBalancer Service and its port named ``port_name``; ``argument`` sets it instead."""
    from pulumi_kubernetes.core.v1 import Service

    ref = f"{settings.mgmt_namespace}/{service}"
    read = Service.get(scope.name(kind, ref), ref, opts=scope.opts())
    where = f"Service {ref} ({settings.mgmt.describe()})"

    def from_load_balancer(spec: Any, status: Any) -> str:
        port = _named_port(spec, port_name, where, node_port=False, argument=argument)
        ingress = list(status.load_balancer.ingress or []) if status and status.load_balancer else []
        host = next((i.ip or i.hostname for i in ingress if (i.ip or i.hostname)), None)
        if host is None:
            raise DiscoveryError(
                f"{where} has no LoadBalancer ingress address yet (pending, or not of type LoadBalancer). Fix: wait "
                f"for the load balancer, or {fix}."
            )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return check_host_port(argument, address)

    # Nested applies keep the typed output objects (Output.all turns them into plain dicts).
    return read.spec.apply(lambda spec: read.status.apply(lambda status: from_load_balancer(spec, status)))


def _address_from_node_port(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[str]:
    from pulumi_kubernetes.core.v1 import Node, Service

    ingress_ref = f"{ISTIO_NAMESPACE}/{ISTIO_INGRESS_SERVICE}"
    ingress_service = Service.get(scope.name("istio-ingress-service", ingress_ref), ingress_ref, opts=scope.opts())
    node_ref = str(settings.relay_node_name)
    node = Node.get(scope.name("relay-node", node_ref), node_ref, opts=scope.opts())
    service_where = f"Service {ingress_ref} ({settings.mgmt.describe()})"
    node_where = f"Node {settings.relay_node_name} ({settings.mgmt.describe()})"

    def from_node_port(spec: Any, node_status: Any) -> str:
        port = _named_port(spec, "https", service_where, node_port=True, argument="relay_server_address")
        addresses = list(node_status.addresses or []) if node_status else []
        address = next((a.address for a in addresses if a.type == "InternalIP"), None)
        if address is None:
            raise DiscoveryError(f"{node_where} reports no InternalIP address. Fix: set relay_server_address.")
        return check_host_port("relay_server_address", f"[{address}]:{port}" if ":" in address else f"{address}:{port}")

    return ingress_service.spec.apply(lambda spec: node.status.apply(lambda status: from_node_port(spec, status)))


def _named_port(spec: Any, port_name: str, where: str, *, node_port: bool, argument: str) -> int:
    ports = list(spec.ports or []) if spec is not None else []
    port = next((p for p in ports if p.name == port_name), None)
    number = (port.node_port if node_port else port.port) if port is not None else None
    if not number:
        kind = "nodePort of the port" if node_port else "port"
        raise DiscoveryError(f"{where} has no {kind} named {port_name!r}. Fix: set {argument}.")
    return int(number)


def discover_generation(mgmt: ClusterAccess, namespace: str, label: FieldLabel) -> AgentGeneration:
    """The generation whose server Deployment runs in ``namespace`` of the management cluster (one kubectl run per
    management plane and program run; it runs in preview too). Resources are declared by generation, so this is a
    plain (blocking) invoke, made before anything is declared."""
    return _once(
        ("agent-generation", *_access_key(mgmt), namespace), lambda: _discover_generation(mgmt, namespace, label)
    )


def _look_before_declaring(access: ClusterAccess, refs: list[str]) -> ExistingObjects:
    """Which of ``refs`` exist, by the find-existing step as a plain (blocking) invoke: it runs before the component
    exists, so on the default command provider."""
    from pulumi_command import local

    environment = {**checked_kubectl(), **kubectl_environment(access), **objects_environment(refs)}
    ran = local.run(
        command=FIND_EXISTING,
        interpreter=existing_objects_step().interpreter,
        environment=cast("Mapping[str, str]", environment),
        logging=local.Logging.NONE,
    )
    return parse_existing(ran.stdout)


def _discover_generation(mgmt: ClusterAccess, namespace: str, label: FieldLabel) -> AgentGeneration:
    servers = {f"deployments/{namespace}/{gen.server_deployment}": gen for gen in GENERATIONS.values()}
    names = " or ".join(f"{gen.server_deployment} ({gen.label})" for gen in GENERATIONS.values())
    fix = f"set {label('agent_generation')} to one of {', '.join(GENERATIONS)}"
    if mgmt.context is None and not isinstance(mgmt.kubeconfig, str):
        raise RegistrationConfigError(
            label("agent_generation"),
            "nothing",
            "was given, and the management cluster is reachable only through a Provider or a kubeconfig that is an "
            "Output, so kubectl cannot look for the server before resources are declared",
            fix,
        )
    found = _look_before_declaring(mgmt, list(servers))
    if found.unreachable is not None:
        raise DiscoveryError(
            f"the management cluster ({mgmt.describe()}) is not reachable ({found.unreachable}), so the agent "
            f"generation cannot be discovered. Fix: check its context or kubeconfig, or {fix}."
        )
    if found.forbidden is not None:
        files = " or ".join(manifest_path("management", gen) for gen in GENERATIONS.values())
        raise ForbiddenError(
            f"the management cluster ({mgmt.describe()}) refused the look for the server Deployment in namespace "
            f"{namespace!r}: {found.forbidden}, so the agent generation cannot be discovered. Fix: grant get on the "
            f"Deployments {' and '.join(gen.server_deployment for gen in GENERATIONS.values())} in that namespace "
            f"(the management role, {files} {RBAC_DOCS}), or {fix}."
        )
    generations = [servers[ref] for ref in sorted(found.refs) if ref in servers]
    if len(generations) != 1:
        problem = "neither" if not generations else "both"
        raise RegistrationConfigError(
            label("agent_generation"),
            "nothing",
            f"was given, and the management cluster ({mgmt.describe()}) runs {problem} of {names} in namespace "
            f"{namespace!r}, so the agent generation cannot be told",
            fix,
        )
    return generations[0]


def find_agent_releases(remote: ClusterAccess, namespace: str, names: tuple[str, ...]) -> frozenset[str] | None:
    """Which of the Helm releases ``names`` exist in ``namespace`` of the registered cluster (adoption only), or None
    when the cluster does not answer. A plain (blocking) invoke made before anything is declared, once per cluster,
    namespace and names in a program run; like :func:`discover_generation`, it uses the default command provider."""
    return _once(
        ("agent-releases", *_access_key(remote), namespace, names),
        lambda: _find_agent_releases(remote, namespace, names),
    )


def _find_agent_releases(remote: ClusterAccess, namespace: str, names: tuple[str, ...]) -> frozenset[str] | None:
    refs = {f"helm-release/{namespace}/{name}": name for name in names}
    found = _look_before_declaring(remote, list(refs))
    if found.forbidden is not None:
        raise ForbiddenError(
            f"the registered cluster ({remote.describe()}) refused the look for the agent's Helm release in "
            f"namespace {namespace!r}: {found.forbidden}. Fix: grant list on secrets in that namespace (Helm keeps "
            f"its releases there; the workload role, rbac/workload-1x.yaml or rbac/workload-2x.yaml {RBAC_DOCS})."
        )
    if found.unreachable is not None:
        return None
    return frozenset(refs[ref] for ref in found.refs if ref in refs)


def read_relay_secrets(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[Mapping[str, str]]:
    """Steps 4 and 5 read: ``ca.crt`` of the root CA secret and the bootstrap token, base64, as one secret Output.

    One ``kubectl`` run through the ``command:local:run`` invoke (once per management plane when the reads are
    shared), which prints the two values and the lengths of every key, nothing else. Invoke results are not stored
    in the state, unlike a ``Secret.get`` read, whose outputs (the whole secret, the CA's private key included) the
    engine checkpoints. Invokes also run during ``pulumi preview``, so a missing or empty relay secret fails the
    preview, with a message naming the secret, the namespace and the context.
    """
    return scope.once(
        ("relay-secrets", settings.mgmt_namespace, *_access_key(settings.mgmt)),
        lambda: _read_relay_secrets(scope, settings),
    )


def _read_relay_secrets(scope: ReadScope, settings: RegistrationSettings) -> pulumi.Output[Mapping[str, str]]:
    gen = settings.generation
    wanted = {gen.root_ca_secret: gen.root_ca_key, gen.token_secret: gen.token_key}
    result = run_step(
        relay_secrets_step(),
        READ_RELAY_SECRETS,
        settings.mgmt,
        relay_secrets_environment(settings.mgmt_namespace, wanted),
        pulumi.InvokeOutputOptions(parent=scope.parent),
    )

    def values(stdout: str) -> Mapping[str, str]:
        report = parse_relay_secrets_report(stdout)
        refused = [secret for secret in wanted if secret in report.forbidden]
        if refused:
            raise ForbiddenError(
                f"the relay secrets in namespace {settings.mgmt_namespace!r} of the management cluster "
                f"({settings.mgmt.describe()}) cannot be read: {report.forbidden[refused[0]]}. Fix: grant get on the "
                f"secrets {gen.root_ca_secret} and {gen.token_secret} in that namespace (the management role, "
                f"{manifest_path('management', gen)} {RBAC_DOCS})."
            )
        for secret, key in wanted.items():
            keys = report.keys.get(secret)
            where = (
                f"secret {secret!r} in namespace {settings.mgmt_namespace!r} of the management cluster "
                f"({settings.mgmt.describe()})"
            )
            if keys is None:
                raise DiscoveryError(
                    f"{where} does not exist. Fix: install Gloo Mesh Enterprise on the management cluster (it "
                    "creates the relay secrets), or point mgmt_context/mgmt_namespace at it."
                )
            if keys.get(key, 0) == 0 or not report.values.get(secret):
                raise DiscoveryError(
                    f"{where} has no non-empty key {key!r}; an agent cannot bootstrap from it. Fix: recreate the "
                    "secret on the management cluster (see the Gloo Mesh relay certificate docs)."
                )
        return {secret: report.values[secret] for secret in wanted}

    stdout: pulumi.Output[str] = pulumi.Output.secret(result.stdout)
    return stdout.apply(values)
