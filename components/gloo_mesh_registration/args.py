"""The component's arguments, their defaults, and the validation that runs before any resource is declared.

A registration that is wrong in its input must fail with a message that names the field, the value and the
fix, before Pulumi is told about a single resource: nothing half-registered, nothing to clean up.
"""

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Required, TypedDict, cast
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s
import semver

from .agent_generation import GENERATIONS, AgentGeneration, GenerationName
from .values import ValueConflictError, merge_values


class RelayDiscovery(StrEnum):
    """How the relay server address is discovered when it is not given."""

    LOADBALANCER = "loadbalancer"
    """The enterprise-networking Service's LoadBalancer ingress (ip or hostname) and its grpc port."""
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
    """Agent chart version; must equal the server's. Discovered from the server Deployment's image when absent."""
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


ARG_KEYS: frozenset[str] = frozenset(RemoteClusterRegistrationArgs.__annotations__)


class RegistrationConfigError(pulumi.RunError, ValueError):
    """Bad input for a registration: names the field, the value and the fix."""

    def __init__(self, field_name: str, value: str, problem: str, fix: str) -> None:
        self.field_name = field_name
        self.value = value
        super().__init__(f"{field_name}: {value} {problem}. Fix: {fix}")


@dataclass(frozen=True)
class ClusterAccess:
    """How the program reaches one cluster role (management or remote)."""

    role: Literal["management", "remote"]
    context: str | None
    kubeconfig: pulumi.Input[str] | None
    provider: k8s.Provider | None

    def kubeconfig_input(self) -> pulumi.Input[str] | None:
        """The kubeconfig as given to a Provider or kubectl: a file path as is, contents always as a secret."""
        if self.kubeconfig is None or (isinstance(self.kubeconfig, str) and _looks_like_path(self.kubeconfig)):
            return self.kubeconfig
        return pulumi.Output.secret(self.kubeconfig)

    def describe(self) -> str:
        """A human description for messages; never the kubeconfig contents."""
        parts = []
        if self.context is not None:
            parts.append(f"context {self.context!r}")
        if isinstance(self.kubeconfig, str) and _looks_like_path(self.kubeconfig):
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


GenerationSource = Callable[[ClusterAccess, str, "FieldLabel"], AgentGeneration]
"""Finds the generation of the management plane reached through an access and namespace (discovery)."""

ReleaseSource = Callable[[ClusterAccess, str, tuple[str, ...]], frozenset[str] | None]
"""Which of some Helm release names exist in a namespace of a cluster (None: the cluster cannot be asked)."""


FieldLabel = Callable[[str], str]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


def is_dns1123_subdomain(value: object) -> bool:
    """Whether `value` is a DNS-1123 subdomain, as Kubernetes checks DNS names (at most 253 characters)."""
    return isinstance(value, str) and len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value) is not None


def _looks_like_path(kubeconfig: str) -> bool:
    return "\n" not in kubeconfig and not kubeconfig.lstrip().startswith(("{", "apiVersion"))


def check_dns1123_label(label: str, value: object, what: str) -> str:
    """Return `value` if it is a DNS-1123 label (what Kubernetes accepts as a namespace or cluster name)."""
    if not isinstance(value, str) or not value or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise RegistrationConfigError(
            label,
            repr(value),
            f"is not a valid {what}: it must be a DNS-1123 label (1 to 63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit)",
            f"use a name such as {_suggest_label(value)!r}",
        )
    return value


def _suggest_label(value: object) -> str:
    text = re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")[:63].strip("-")
    return text or "remote-cluster"


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


def normalize_agent_version(label: str, value: str) -> str:
    """Strip a leading `v` (as meshctl does) and require a semantic version such as `1.1.6`."""
    version = value.removeprefix("v")
    if not semver.Version.is_valid(version):
        raise RegistrationConfigError(
            label,
            repr(value),
            "is not a valid agent version",
            "give the enterprise-networking version as semver, e.g. '1.1.6' or 'v1.2.0-beta1' "
            "(`meshctl version` shows it), or leave it unset to read it from the management cluster",
        )
    return version


def generation_version_problem(version: str, generation: AgentGeneration) -> tuple[str, str] | None:
    """Why ``generation`` cannot register an agent of ``version`` (normalized), and the fix; None when it can."""
    if not generation.below_minimum(version):
        return None
    assert generation.minimum_version is not None
    first = ".".join(map(str, generation.minimum_version))
    return (
        f"is older than {first}, the first {generation.label} version this registration can install: "
        f"{generation.minimum_version_reason}",
        f"upgrade the management plane to {first} or later, or register this cluster with the charts of its own "
        "version outside this stack",
    )


def check_generation_version(label: str, version: str, generation: AgentGeneration) -> str:
    """Return ``version`` (normalized) if ``generation`` can register an agent of that version."""
    problem = generation_version_problem(version, generation)
    if problem is not None:
        raise RegistrationConfigError(label, repr(version), *problem)
    return version


def _bool(args: Mapping[str, Any], key: str, default: bool, label: FieldLabel) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise RegistrationConfigError(label(key), repr(value), "is not a boolean", "use true or false")
    return value


def _optional_str(args: Mapping[str, Any], key: str, label: FieldLabel) -> str | None:
    value = args.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise RegistrationConfigError(
            label(key), repr(value), "is not a non-empty string", "give a string or leave it unset"
        )
    return value


_KUBECTL_STEPS = {
    "management": "the read of ca.crt and the bootstrap token (by kubectl, so that the rest of the relay secrets, the "
    "CA's private key included, never enters the Pulumi state as a Secret read would put it there)",
    "remote": "the shell steps (placing and removing the bootstrap token, waiting for the client certificate, "
    "clean-up on destroy)",
}


def _access(
    args: Mapping[str, Any], role: Literal["management", "remote"], prefix: str, label: FieldLabel, needs_kubectl: bool
) -> ClusterAccess:
    context = _optional_str(args, f"{prefix}_context", label)
    kubeconfig = args.get(f"{prefix}_kubeconfig")
    provider = args.get(f"{prefix}_provider")
    if provider is not None and not isinstance(provider, k8s.Provider):
        raise RegistrationConfigError(
            label(f"{prefix}_provider"),
            type(provider).__name__,
            "is not a pulumi_kubernetes.Provider",
            "pass a kubernetes Provider",
        )
    if context is None and kubeconfig is None and provider is None:
        raise RegistrationConfigError(
            label(f"{prefix}_context"),
            "nothing",
            f"was given for the {role} cluster, and no kubernetes resource may fall back to the ambient "
            "kubeconfig context",
            f"set {label(f'{prefix}_context')}, {label(f'{prefix}_kubeconfig')} or {label(f'{prefix}_provider')}",
        )
    if isinstance(kubeconfig, str):
        if not kubeconfig.strip():
            raise RegistrationConfigError(
                label(f"{prefix}_kubeconfig"), "''", "is empty", "give a kubeconfig file path or its contents"
            )
        # A path stays as written (`~/...`, or relative to the project): the Provider and the steps expand it where
        # they run, so the same stack file on another machine (another CI runner's home) changes nothing.
        if _looks_like_path(kubeconfig) and not os.path.isfile(os.path.expanduser(kubeconfig)):
            raise RegistrationConfigError(
                label(f"{prefix}_kubeconfig"),
                repr(kubeconfig),
                "is not an existing kubeconfig file",
                "give the path of a kubeconfig file on this machine, or the kubeconfig contents as a secret",
            )
    if provider is not None and needs_kubectl and context is None and kubeconfig is None:
        raise RegistrationConfigError(
            label(f"{prefix}_provider"),
            "a Provider object",
            f"gives {_KUBECTL_STEPS[role]} no way to reach the {role} cluster with kubectl: a Provider's kubeconfig "
            "cannot be read back",
            f"also set {label(f'{prefix}_context')} and/or {label(f'{prefix}_kubeconfig')} for the same cluster, "
            "or set insecure (no secrets, no shell steps)",
        )
    return ClusterAccess(role=role, context=context, kubeconfig=kubeconfig, provider=provider)


def validate_registration_args(
    args: Mapping[str, Any],
    label: FieldLabel = lambda key: key,
    *,
    discover: GenerationSource | None = None,
    find_releases: ReleaseSource | None = None,
) -> RegistrationSettings:
    """Check every argument and fill in defaults; raise :class:`RegistrationConfigError` on the first problem.

    The agent generation is ``agent_generation``, else what ``discover`` finds on the management cluster (the
    component and the stack config pass discovery; without it the argument is required). Defaults that differ by
    generation (authority, chart repository, token removal) follow it. With ``adopt``, ``find_releases`` looks for
    the agent release under each name real installations use (:func:`check_adopted_release`)."""
    if not isinstance(args, Mapping):
        raise RegistrationConfigError(
            "args", type(args).__name__, "is not a mapping", "pass a RemoteClusterRegistrationArgs dict"
        )
    unknown = sorted(set(args) - ARG_KEYS)
    if unknown:
        raise RegistrationConfigError(
            label(unknown[0]),
            repr(unknown[0]),
            "is not a registration argument",
            f"use one of: {', '.join(sorted(ARG_KEYS))}",
        )
    cluster_name = check_dns1123_label(label("cluster_name"), args.get("cluster_name"), "cluster name")
    insecure = _bool(args, "insecure", False, label)
    mgmt = _access(args, "management", "mgmt", label, needs_kubectl=not insecure)
    remote = _access(args, "remote", "remote", label, needs_kubectl=not insecure)
    mgmt_namespace = check_dns1123_label(label("mgmt_namespace"), args.get("mgmt_namespace", "gloo-mesh"), "namespace")
    generation = _generation(args, label, mgmt, mgmt_namespace, discover)
    wait = _bool(args, "wait_for_client_cert", not insecure, label) and not insecure
    remove_token = _bool(args, "remove_bootstrap_token", wait and generation.removes_token_by_default, label)
    remove_token = remove_token and not insecure
    if remove_token and not wait:
        raise RegistrationConfigError(
            label("remove_bootstrap_token"),
            "true",
            "needs wait_for_client_cert: the token can only be removed once the agent holds its client certificate",
            f"set {label('wait_for_client_cert')} to true, or {label('remove_bootstrap_token')} to false",
        )
    address = args.get("relay_server_address")
    if isinstance(address, str):
        address = check_host_port(label("relay_server_address"), address)
    elif address is not None and not isinstance(address, pulumi.Output):
        raise RegistrationConfigError(label("relay_server_address"), repr(address), "is not a string", "give host:port")
    discovery = args.get("relay_discovery", "loadbalancer")
    if discovery not in RELAY_DISCOVERY_MODES:  # a RelayDiscovery member equals its value
        raise RegistrationConfigError(
            label("relay_discovery"),
            repr(discovery),
            "is not a discovery mode",
            f"use one of {', '.join(RELAY_DISCOVERY_MODES)}",
        )
    node_name = _optional_str(args, "relay_node_name", label)
    if address is None and discovery == "istio-ingress-nodeport" and node_name is None:
        raise RegistrationConfigError(
            label("relay_node_name"),
            "nothing",
            "is needed to discover the relay address through the Istio ingress NodePort",
            "set it to a management cluster node, e.g. 'mgmt-cluster-control-plane' for kind",
        )
    authority = args.get("relay_authority", generation.default_authority)
    if not isinstance(authority, str) or not is_dns1123_subdomain(authority):
        raise RegistrationConfigError(
            label("relay_authority"),
            repr(authority),
            "is not a DNS name",
            f"give the relay server's TLS name, normally {generation.default_authority!r}",
        )
    version = args.get("agent_version")
    if isinstance(version, str):
        version = normalize_agent_version(label("agent_version"), version)
        version = check_generation_version(label("agent_version"), version, generation)
    elif version is not None and not isinstance(version, pulumi.Output):
        raise RegistrationConfigError(
            label("agent_version"), repr(version), "is not a string", "give a version such as '1.1.6'"
        )
    chart_repo = args.get("chart_repo", generation.chart_repo)
    parsed = urlparse(chart_repo) if isinstance(chart_repo, str) else None
    if parsed is None or parsed.scheme not in ("https", "http", "oci") or not parsed.netloc:
        raise RegistrationConfigError(
            label("chart_repo"),
            repr(chart_repo),
            "is not a Helm repository URL",
            f"give an https:// or oci:// URL such as {generation.chart_repo!r}",
        )
    remote_namespace = check_dns1123_label(
        label("remote_namespace"), args.get("remote_namespace", generation.default_namespace), "namespace"
    )
    cluster_domain = args.get("cluster_domain", "cluster.local")
    if not isinstance(cluster_domain, str) or not is_dns1123_subdomain(cluster_domain):
        raise RegistrationConfigError(
            label("cluster_domain"),
            repr(cluster_domain),
            "is not a DNS domain",
            "give the cluster's DNS suffix, normally 'cluster.local'",
        )
    timeout = args.get("client_cert_timeout_seconds", 300)
    if isinstance(timeout, float) and timeout.is_integer():
        # From another language (Construct) every number arrives as a double (protobuf Struct): 600 is 600.0 here.
        timeout = int(timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_CLIENT_CERT_TIMEOUT_SECONDS:
        raise RegistrationConfigError(
            label("client_cert_timeout_seconds"),
            repr(timeout),
            f"is not a whole number of seconds from 1 to {MAX_CLIENT_CERT_TIMEOUT_SECONDS}",
            "use e.g. 300",
        )
    agent_values = args.get("agent_values", {})
    if not isinstance(agent_values, Mapping):
        raise RegistrationConfigError(
            label("agent_values"), type(agent_values).__name__, "is not a mapping", "give a mapping of Helm values"
        )
    crd_values = args.get("crd_values", {})
    if not isinstance(crd_values, Mapping):
        raise RegistrationConfigError(
            label("crd_values"), type(crd_values).__name__, "is not a mapping", "give a mapping of Helm values"
        )
    if crd_values and generation.crds_chart is None:
        raise RegistrationConfigError(
            label("crd_values"),
            "set",
            f"has no release to go to: {generation.label} installs no CRDs chart (its agent chart holds the CRDs)",
            f"remove it (put agent chart values in {label('agent_values')}), or register with a Gloo Platform 2.x "
            f"management plane ({label('agent_generation')})",
        )
    telemetry_address = args.get("telemetry_gateway_address")
    if isinstance(telemetry_address, str):
        telemetry_address = check_host_port(label("telemetry_gateway_address"), telemetry_address)
    elif telemetry_address is not None and not isinstance(telemetry_address, pulumi.Output):
        raise RegistrationConfigError(
            label("telemetry_gateway_address"), repr(telemetry_address), "is not a string", "give host:port"
        )
    telemetry = _bool(args, "telemetry", telemetry_address is not None, label)
    if telemetry and generation.telemetry_service is None:
        raise RegistrationConfigError(
            label("telemetry" if "telemetry" in args else "telemetry_gateway_address"),
            "set",
            f"needs a telemetry gateway, which {generation.label} does not have",
            f"remove it, or register with a Gloo Platform 2.x management plane ({label('agent_generation')})",
        )
    if telemetry_address is not None and not telemetry:
        raise RegistrationConfigError(
            label("telemetry_gateway_address"),
            "set",
            "is given while telemetry is off",
            f"set {label('telemetry')} to true, or remove {label('telemetry_gateway_address')}",
        )

    release_name = args.get("agent_release_name", generation.release_name)
    if not isinstance(release_name, str) or len(release_name) > 53 or not is_dns1123_subdomain(release_name):
        raise RegistrationConfigError(
            label("agent_release_name"),
            repr(release_name),
            "is not a Helm release name (at most 53 characters of a-z, 0-9, '-' and '.', starting and ending with a "
            "letter or digit)",
            f"give the agent release's name, e.g. {generation.release_name!r} (the default)",
        )
    if release_name == generation.crds_chart:
        raise RegistrationConfigError(
            label("agent_release_name"),
            repr(release_name),
            "is the name of the CRDs release this registration installs beside the agent",
            f"give the agent release's own name, e.g. {generation.release_name!r} (the default)",
        )

    settings = RegistrationSettings(
        cluster_name=cluster_name,
        mgmt=mgmt,
        remote=remote,
        relay_server_address=address,
        relay_discovery=RelayDiscovery(discovery),
        relay_node_name=node_name,
        relay_authority=authority,
        agent_version=version,
        chart_repo=chart_repo,
        mgmt_namespace=mgmt_namespace,
        remote_namespace=remote_namespace,
        create_remote_namespace=_bool(args, "create_remote_namespace", True, label),
        cluster_domain=cluster_domain,
        agent_values=agent_values,
        crd_values=crd_values,
        insecure=insecure,
        wait_for_client_cert=wait,
        client_cert_timeout_seconds=timeout,
        remove_bootstrap_token=remove_token,
        generation=generation,
        telemetry=telemetry,
        telemetry_gateway_address=telemetry_address,
        adopt=_bool(args, "adopt", False, label),
        agent_release_name=release_name,
    )
    check_agent_values(settings, label)
    if settings.adopt and find_releases is not None:
        check_adopted_release(settings, find_releases, label)
    return settings


def check_adopted_release(settings: RegistrationSettings, find_releases: ReleaseSource, label: FieldLabel) -> None:
    """With ``adopt``: when the agent release is not there under ``agent_release_name`` but is under another name
    real installations use, say which name to set, before anything is declared. The name cannot simply be taken from
    the cluster: adoption is for one ``pulumi up``, and a later run under the default name would replace the release.
    A cluster that cannot be asked, or that holds none of the names, is left to the import (which names the ID)."""
    remote = settings.remote
    if remote.context is None and not isinstance(remote.kubeconfig, str):
        return  # kubectl cannot reach it before anything is declared
    wanted = settings.agent_release_name
    names = (wanted, *(n for n in settings.generation.release_names_seen if n != wanted))
    if len(names) == 1:
        return  # no other name to look for (1.x: `enterprise-agent` only)
    found = find_releases(remote, settings.remote_namespace, names)
    if found is None or wanted in found or not found:
        return
    others = [n for n in names if n in found]
    raise RegistrationConfigError(
        label("agent_release_name"),
        repr(wanted),
        f"names no Helm release in namespace {settings.remote_namespace!r} of the registered cluster "
        f"({remote.describe()}), so there is no agent to adopt under it; the agent release there is "
        f"{' and '.join(repr(n) for n in others)}",
        f"set {label('agent_release_name')} to {others[0]!r} and keep it set after the adoption (a release under "
        "another name would be a new release)",
    )


def _generation(
    args: Mapping[str, Any],
    label: FieldLabel,
    mgmt: ClusterAccess,
    mgmt_namespace: str,
    discover: GenerationSource | None,
) -> AgentGeneration:
    """The generation the stack names, else the one found on the management cluster."""
    requested = args.get("agent_generation")
    if requested is not None:
        if requested not in GENERATIONS:  # a GenerationName member equals its value
            raise RegistrationConfigError(
                label("agent_generation"),
                repr(requested),
                "is not an agent generation",
                f"use one of {', '.join(GENERATIONS)}",
            )
        return GENERATIONS[GenerationName(requested)]
    if discover is None:
        raise RegistrationConfigError(
            label("agent_generation"),
            "nothing",
            "was given, and here it cannot be discovered from the management cluster",
            f"set it to one of {', '.join(GENERATIONS)}",
        )
    return discover(mgmt, mgmt_namespace, label)


def check_agent_values(settings: RegistrationSettings, label: FieldLabel = lambda key: key) -> None:
    """Reject `agent_values` that would change a registration value, before anything is declared: what is still to be
    discovered is checked as unknown (an address no user value equals; each range of versions with its own values),
    so that no conflict is left for the discovered values to reveal after resources have been declared."""
    known_address = settings.relay_server_address if isinstance(settings.relay_server_address, str) else DISCOVERED
    given = settings.agent_version
    versions = (given,) if isinstance(given, str) else settings.generation.value_versions()
    known_telemetry = (
        (settings.telemetry_gateway_address if isinstance(settings.telemetry_gateway_address, str) else DISCOVERED)
        if settings.telemetry
        else None
    )
    conflicts: list[ValueConflictError] = []
    for version in versions:
        try:
            settings.helm_values(
                server_address=cast(str, known_address),
                agent_version=version,
                telemetry_address=cast("str | None", known_telemetry),
            )
        except ValueConflictError as conflict:
            conflicts.append(conflict)
    if not conflicts:
        return
    if len(conflicts) == len(versions):
        raise agent_values_error(conflicts[0], settings.generation, label)
    # Some versions' values agree with it, some do not: which holds is known only once the version is discovered.
    raise RegistrationConfigError(
        f"{label('agent_values')}.{'.'.join(conflicts[0].path)}",
        "a value",
        "sets what the registration sets for some agent versions and not for others, and the version is still to "
        "be discovered",
        f"remove it from {label('agent_values')} (the registration sets what the version needs), or set "
        f"{label('agent_version')}",
    )


class _Discovered:
    """A registration value known only after discovery: equal to no user value (of any type, so comparisons from
    either side give the same answer), so that any user value at its path is a conflict at validation."""

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "'<discovered>'"


DISCOVERED = _Discovered()


def agent_values_error(
    conflict: ValueConflictError, generation: AgentGeneration, label: FieldLabel = lambda key: key
) -> RegistrationConfigError:
    """The error for a user value that collides with a registration value (the user's value is not echoed)."""
    relay = generation.relay_value_path
    arguments: dict[tuple[str, ...], str] = {
        generation.cluster_value_path: "cluster_name",
        (*relay, "serverAddress"): "relay_server_address",
        (*relay, "authority"): "relay_authority",
        ("telemetryCollector", "config", "exporters", "otlp", "endpoint"): "telemetry_gateway_address",
        **dict.fromkeys(generation.insecure_value_paths(), "insecure"),
    }
    argument = arguments.get(conflict.path, "the registration's own arguments")
    path = ".".join(conflict.path)
    return RegistrationConfigError(
        f"{label('agent_values')}.{path}",
        "a value",
        f"would override the registration's value ({conflict.owned_value!r}); registration-critical values are "
        "not silently overridden",
        f"remove it from {label('agent_values')} and set {argument} instead",
    )
