"""What the component's arguments are: their types (the package schema is inferred from them), one declaration per
argument of everything else (stack-file key, default or how an unset one is derived, secret-ness), and the validated
settings.

Validation itself is in :mod:`gloo_mesh_registration.validation`. To add an argument: a field of
:class:`RemoteClusterRegistrationArgs` (type and description), its row in :data:`ARGUMENTS`, its check in the
validation concern it belongs to, and its :class:`RegistrationSettings` field; then ``scripts/reference.py`` renders
it into the reference (``docs/reference.md``) and Pulumi.yaml's config descriptions.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from .agent_generation import AgentGeneration, GenerationName
from .facts import RegistrationConfigError as RegistrationConfigError  # re-exported: importers of args use it from here
from .facts import check_dns1123_label as check_dns1123_label
from .facts import is_dns1123_subdomain as is_dns1123_subdomain
from .values import merge_values


class RelayDiscovery(StrEnum):
    """How the relay server address is discovered when it is not given."""

    LOADBALANCER = "loadbalancer"
    """The relay server Service's LoadBalancer ingress (ip or hostname) and its grpc port."""
    ISTIO_INGRESS_NODEPORT = "istio-ingress-nodeport"
    """A management node's InternalIP and the nodePort of istio-ingressgateway's https port (the guide's kind setup)."""


RELAY_DISCOVERY_MODES = tuple(mode.value for mode in RelayDiscovery)
MAX_CLIENT_CERT_TIMEOUT_SECONDS = 3600


class RemoteClusterRegistrationArgs(TypedDict, total=False):
    """Arguments of :class:`gloo_mesh_registration.RemoteClusterRegistration`; the keys mirror meshctl's flags."""

    cluster_name: Required[str]
    """Name the cluster registers under: the agent's cluster value and the KubernetesCluster name (a DNS-1123 label)."""
    agent_generation: GenerationName
    """`gloo-mesh-enterprise-1` or `gloo-platform-2`; discovered from the management server's Deployment if absent."""
    mgmt_context: str
    """Kubeconfig context of the management cluster."""
    mgmt_kubeconfig: pulumi.Input[str]
    """Kubeconfig of the management cluster: file path or contents (contents are treated as a secret)."""
    mgmt_provider: k8s.Provider
    """Existing kubernetes Provider of the management cluster (also give its context or kubeconfig, unless insecure)."""
    remote_context: str
    """Kubeconfig context of the cluster being registered."""
    remote_kubeconfig: pulumi.Input[str]
    """Kubeconfig of the cluster being registered: file path or contents (contents are treated as a secret)."""
    remote_provider: k8s.Provider
    """An existing kubernetes Provider for the cluster being registered."""
    relay_server_address: pulumi.Input[str]
    """`host:port` of the relay server; discovered from the management cluster when absent."""
    relay_discovery: RelayDiscovery
    """How to discover the relay address: `loadbalancer` (default) or `istio-ingress-nodeport`."""
    relay_node_name: str
    """Management node whose InternalIP fronts the Istio ingress NodePort (`istio-ingress-nodeport` only)."""
    relay_authority: str
    """gRPC authority and TLS server name of the relay server (default: `<the generation's server>.gloo-mesh`)."""
    agent_version: pulumi.Input[str]
    """Agent chart version: the server's, or an older one held in a staged upgrade; read from the server if absent."""
    chart_repo: str
    """Helm repository of the agent chart(s) (default: the generation's public repository)."""
    mgmt_namespace: str
    """Namespace of the relay server, its secrets and the KubernetesCluster objects (default `gloo-mesh`)."""
    remote_namespace: str
    """Namespace of the agent and its secrets on the registered cluster (default `gloo-mesh`)."""
    create_remote_namespace: bool
    """Create the remote namespace (default true); false labels a namespace that exists and never deletes it."""
    cluster_domain: str
    """DNS suffix of the registered cluster (default `cluster.local`)."""
    agent_values: Mapping[str, Any]
    """Extra Helm values, merged under the registration's own; overriding a registration value is an error."""
    crd_values: Mapping[str, Any]
    """Gloo Platform 2.x only: Helm values of the `gloo-platform-crds` release (`featureGates.ExternalWorkloads`)."""
    insecure: bool
    """Register without TLS: no secrets copied, no certificate wait. The management plane must be insecure too."""
    wait_for_client_cert: bool
    """Wait until the agent holds its client certificate (default true)."""
    client_cert_timeout_seconds: int
    """How long to wait for the client certificate (default 300)."""
    remove_bootstrap_token: bool
    """Remove the bootstrap token once the agent holds its certificate (default: 1.x when waiting; 2.x keeps it)."""
    telemetry: bool
    """Gloo Platform 2.x only: run the agent's telemetry collector, exporting to the management telemetry gateway."""
    adopt: bool
    """Take over a cluster registered before (meshctl, the guide's Helm steps) in place, for one `pulumi up`."""
    agent_release_name: str
    """Helm release name of the agent (default: the generation's usual one, `enterprise-agent` or `gloo-platform`);
    set it to adopt a release installed under another name (`gloo-platform-agent`, `gloo-agent`), and keep it."""
    telemetry_gateway_address: pulumi.Input[str]
    """`host:port` of the telemetry gateway (2.x, implies telemetry); discovered from its LoadBalancer when absent."""


class StackObject(StrEnum):
    """Where a stack file (``stacks/Pulumi.<stack>.yaml``) sets an argument."""

    MANAGEMENT = "management"
    """The ``management`` object: the management plane, shared by every cluster of the stack."""
    CLUSTER = "clusters"
    """Each ``clusters`` entry: one registered cluster (it overrides a management value of the same key)."""


@dataclass(frozen=True)
class FromGeneration:
    """A default that the management plane's generation decides (its authority, chart repository, ...)."""

    of: Callable[[AgentGeneration], object]


@dataclass(frozen=True)
class Argument:
    """Everything about one argument except its type and description (those are the field of
    :class:`RemoteClusterRegistrationArgs`, which the package schema is inferred from)."""

    name: str
    """The python name: a key of :class:`RemoteClusterRegistrationArgs`."""
    stack_objects: tuple[StackObject, ...]
    """Where a stack file sets it; none: only a program passes it (a Provider object)."""
    key: str | None = None
    """Its stack-file key where that is not the camelCase of :attr:`name`."""
    default: object = None
    """A fixed default, a :class:`FromGeneration`, or None: optional, discovered, or derived from other arguments by
    the validation."""
    derived: str | FromGeneration | None = None
    """Where :attr:`default` is None: how discovery or the validation fills the argument in when it is unset, in
    words (a :class:`FromGeneration` of words where that depends on the generation). The reference
    (``docs/reference.md``, ``scripts/reference.py``) shows it as the default; None: unset stays unset."""
    secret: bool = False
    """May hold credentials (kubeconfig contents). The kubeconfig rule (:func:`kubeconfig_is_path`) makes contents a
    Pulumi secret wherever they go, and messages and ``repr`` never show them; this marks which arguments that is
    (tests/test_stacks.py holds the two in step)."""

    def __post_init__(self) -> None:
        if self.default is not None and self.derived is not None:
            raise ValueError(f"argument {self.name}: give its default or how it is derived, not both")

    @property
    def stack_key(self) -> str:
        """The key in a stack file: the camelCase of the python name unless declared."""
        if self.key is not None:
            return self.key
        first, *rest = self.name.split("_")
        return first + "".join(part.title() for part in rest)


_MANAGEMENT = (StackObject.MANAGEMENT,)
_CLUSTER = (StackObject.CLUSTER,)

ARGUMENTS: tuple[Argument, ...] = (
    Argument("cluster_name", _CLUSTER, key="name"),
    Argument("agent_generation", _MANAGEMENT, derived="discovered: the server Deployment in the management namespace"),
    Argument("mgmt_context", _MANAGEMENT, key="context"),
    Argument("mgmt_kubeconfig", _MANAGEMENT, key="kubeconfig", secret=True),
    Argument("mgmt_provider", ()),
    Argument("remote_context", _CLUSTER, key="context"),
    Argument("remote_kubeconfig", _CLUSTER, key="kubeconfig", secret=True),
    Argument("remote_provider", ()),
    Argument(
        "relay_server_address",
        (StackObject.MANAGEMENT, StackObject.CLUSTER),
        derived="discovered from the management cluster, by relay discovery",
    ),
    Argument("relay_discovery", _MANAGEMENT, default=RelayDiscovery.LOADBALANCER),
    Argument("relay_node_name", _MANAGEMENT),
    Argument("relay_authority", _MANAGEMENT, default=FromGeneration(lambda gen: gen.default_authority)),
    Argument(
        "agent_version",
        (StackObject.MANAGEMENT, StackObject.CLUSTER),
        derived="discovered: the server Deployment's image tag",
    ),
    Argument("chart_repo", _MANAGEMENT, default=FromGeneration(lambda gen: gen.chart_repo)),
    Argument("mgmt_namespace", _MANAGEMENT, key="namespace", default="gloo-mesh"),
    Argument("remote_namespace", _CLUSTER, key="namespace", default=FromGeneration(lambda gen: gen.default_namespace)),
    Argument("create_remote_namespace", _CLUSTER, key="createNamespace", default=True),
    Argument("cluster_domain", _CLUSTER, default="cluster.local"),
    Argument("agent_values", _CLUSTER, default=MappingProxyType({})),
    Argument("crd_values", _CLUSTER, default=MappingProxyType({})),
    Argument("insecure", _MANAGEMENT, default=False),
    Argument("wait_for_client_cert", _CLUSTER, derived="true, unless insecure"),
    Argument("client_cert_timeout_seconds", _CLUSTER, default=300),
    Argument(
        "remove_bootstrap_token",
        _CLUSTER,
        derived=FromGeneration(
            lambda gen: "true while waiting for the client certificate" if gen.removes_token_by_default else "false"
        ),
    ),
    Argument("telemetry", _MANAGEMENT, derived="true when a telemetry gateway address is given, else false"),
    Argument("adopt", _CLUSTER, default=False),
    Argument("agent_release_name", _CLUSTER, default=FromGeneration(lambda gen: gen.release_name)),
    Argument(
        "telemetry_gateway_address",
        _MANAGEMENT,
        derived="discovered, with telemetry: the telemetry gateway Service's LoadBalancer",
    ),
)
"""One row per argument, in the order of :class:`RemoteClusterRegistrationArgs`; the stack-file keys, the set of
argument names and the fixed defaults are derived from it."""

ARGUMENTS_BY_NAME: Mapping[str, Argument] = MappingProxyType({argument.name: argument for argument in ARGUMENTS})
ARG_KEYS: frozenset[str] = frozenset(ARGUMENTS_BY_NAME)


def default_of(name: str, generation: AgentGeneration | None = None) -> Any:
    """The declared default of argument ``name`` (the generation's own for a :class:`FromGeneration` one)."""
    default = ARGUMENTS_BY_NAME[name].default
    if isinstance(default, FromGeneration):
        assert generation is not None, f"the default of {name} depends on the generation"
        return default.of(generation)
    return default


def stack_keys(stack_object: StackObject) -> dict[str, str]:
    """Stack-file key to argument name, for the arguments a stack file sets in ``stack_object``."""
    return {a.stack_key: a.name for a in ARGUMENTS if stack_object in a.stack_objects}


@dataclass(frozen=True)
class ClusterAccess:
    """How the program reaches one cluster role (management or remote)."""

    role: Literal["management", "remote"]
    context: str | None
    kubeconfig: pulumi.Input[str] | None = field(repr=False)
    """A file path or the contents (credentials): left out of ``repr``, as of every message."""
    provider: k8s.Provider | None

    def kubeconfig_input(self) -> pulumi.Input[str] | None:
        """The kubeconfig as given to a Provider or kubectl: a file path as is, contents always as a secret."""
        if self.kubeconfig is None or (isinstance(self.kubeconfig, str) and kubeconfig_is_path(self.kubeconfig)):
            return self.kubeconfig
        return pulumi.Output.secret(self.kubeconfig)

    def describe(self) -> str:
        """A human description for messages; never the kubeconfig contents."""
        parts = []
        if self.context is not None:
            parts.append(f"context {self.context!r}")
        if isinstance(self.kubeconfig, str) and kubeconfig_is_path(self.kubeconfig):
            parts.append(f"kubeconfig file {self.kubeconfig!r}")
        elif self.kubeconfig is not None:
            parts.append("the given kubeconfig contents")
        if not parts and self.provider is not None:
            parts.append("the given provider")
        return " in ".join(parts) if parts else "no cluster access"


@dataclass(frozen=True)
class RegistrationSettings:
    """Validated arguments with every default filled in."""

    cluster_name: str
    mgmt: ClusterAccess
    remote: ClusterAccess
    relay_server_address: pulumi.Input[str] | None
    relay_discovery: RelayDiscovery
    relay_node_name: str | None
    relay_authority: str
    agent_version: pulumi.Input[str] | None
    chart_repo: str
    mgmt_namespace: str
    remote_namespace: str
    create_remote_namespace: bool
    cluster_domain: str
    agent_values: Mapping[str, Any]
    crd_values: Mapping[str, Any]
    insecure: bool
    wait_for_client_cert: bool
    client_cert_timeout_seconds: int
    remove_bootstrap_token: bool
    generation: AgentGeneration
    telemetry: bool
    telemetry_gateway_address: pulumi.Input[str] | None
    adopt: bool
    agent_release_name: str

    def helm_values(
        self, *, server_address: str, agent_version: str, telemetry_address: str | None = None
    ) -> dict[str, Any]:
        """The agent's Helm values: `agent_values` under the registration's own values."""
        owned = self.generation.registration_values(
            cluster_name=self.cluster_name,
            server_address=server_address,
            authority=self.relay_authority,
            namespace=self.remote_namespace,
            insecure=self.insecure,
            agent_version=agent_version,
            telemetry_address=telemetry_address,
        )
        return merge_values(self.agent_values, owned, self.generation.reserved_value_paths())

    def with_management_provider(self, provider: k8s.Provider) -> "RegistrationSettings":
        """These settings, reaching the management cluster through ``provider`` too (a program's shared Provider,
        declared after the settings were validated: a stack file cannot hold one)."""
        return replace(self, mgmt=replace(self.mgmt, provider=provider))


FieldLabel = Callable[[str], str]
"""The name an error message gives an argument: the python name, or the stack-file key it was read from."""

GenerationSource = Callable[[ClusterAccess, str, FieldLabel], AgentGeneration]
"""Finds the generation of the management plane reached through an access and namespace (discovery)."""

ReleaseSource = Callable[[ClusterAccess, str, tuple[str, ...]], frozenset[str] | None]
"""Which of some Helm release names exist in a namespace of a cluster (None: the cluster cannot be asked)."""


def kubeconfig_is_path(kubeconfig: str) -> bool:
    """Path or contents, the one rule: contents have a line break, or start with ``{`` or ``apiVersion`` after
    leading blanks; anything else is a file path (which messages may name; contents never)."""
    return "\n" not in kubeconfig and not kubeconfig.lstrip().startswith(("{", "apiVersion"))


_DNS_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


def check_host_port(label: str, value: str) -> str:
    """Return `value` if it is `host:port` with a DNS name or IP host and a port in 1..65535."""
    host, sep, port = value.rpartition(":")
    fix = "give host:port, for example '203.0.113.10:9900' or 'relay.example.com:443' ('[2001:db8::1]:9900' for IPv6)"
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise RegistrationConfigError(label, repr(value), "has no valid port (1 to 65535)", fix)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise RegistrationConfigError(label, repr(value), "has an invalid IPv6 host", fix) from None
        return value
    if not host or len(host) > 253 or not _DNS_HOSTNAME.match(host):
        raise RegistrationConfigError(label, repr(value), "has no valid host name or IPv4 address", fix)
    return value
