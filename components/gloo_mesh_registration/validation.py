"""The validation that runs before any resource is declared, one function per concern.

A registration that is wrong in its input must fail with a message that names the field, the value and the fix,
before Pulumi is told about a single resource: nothing half-registered, nothing to clean up. Each concern checks its
arguments in a fixed order, so the first problem of an input is always the same one.
"""

import os
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, cast
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s
import semver

from .agent_generation import GENERATIONS, AgentGeneration, GenerationName
from .args import (
    ARG_KEYS,
    MAX_CLIENT_CERT_TIMEOUT_SECONDS,
    RELAY_DISCOVERY_MODES,
    ClusterAccess,
    FieldLabel,
    GenerationSource,
    RegistrationConfigError,
    RegistrationSettings,
    RelayDiscovery,
    ReleaseSource,
    check_dns1123_label,
    check_host_port,
    default_of,
    is_dns1123_subdomain,
    kubeconfig_is_path,
)
from .values import ValueConflictError


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
        if kubeconfig_is_path(kubeconfig) and not os.path.isfile(os.path.expanduser(kubeconfig)):
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
    _check_known_keys(args, label)
    cluster_name = check_dns1123_label(label("cluster_name"), args.get("cluster_name"), "cluster name")
    insecure = _bool(args, "insecure", default_of("insecure"), label)
    mgmt = _access(args, "management", "mgmt", label, needs_kubectl=not insecure)
    remote = _access(args, "remote", "remote", label, needs_kubectl=not insecure)
    mgmt_namespace = check_dns1123_label(
        label("mgmt_namespace"), args.get("mgmt_namespace", default_of("mgmt_namespace")), "namespace"
    )
    generation = _generation(args, label, mgmt, mgmt_namespace, discover)
    wait, remove_token = _certificate_wait(args, label, insecure, generation)
    relay = _relay(args, label, generation)
    version, chart_repo = _agent_chart(args, label, generation)
    remote_namespace, cluster_domain = _registered_cluster(args, label, generation)
    timeout = _client_cert_timeout(args, label)
    agent_values, crd_values = _helm_values(args, label, generation)
    telemetry, telemetry_address = _telemetry(args, label, generation)
    release_name = _agent_release_name(args, label, generation)
    settings = RegistrationSettings(
        cluster_name=cluster_name,
        mgmt=mgmt,
        remote=remote,
        relay_server_address=relay.address,
        relay_discovery=relay.discovery,
        relay_node_name=relay.node_name,
        relay_authority=relay.authority,
        agent_version=version,
        chart_repo=chart_repo,
        mgmt_namespace=mgmt_namespace,
        remote_namespace=remote_namespace,
        create_remote_namespace=_bool(args, "create_remote_namespace", default_of("create_remote_namespace"), label),
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
        adopt=_bool(args, "adopt", default_of("adopt"), label),
        agent_release_name=release_name,
    )
    check_agent_values(settings, label)
    if settings.adopt and find_releases is not None:
        check_adopted_release(settings, find_releases, label)
    return settings


def _check_known_keys(args: Mapping[str, Any], label: FieldLabel) -> None:
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


def _certificate_wait(
    args: Mapping[str, Any], label: FieldLabel, insecure: bool, generation: AgentGeneration
) -> tuple[bool, bool]:
    """Whether to wait for the agent's client certificate, and whether to remove the bootstrap token after it."""
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
    return wait, remove_token


class _Relay(NamedTuple):
    address: pulumi.Input[str] | None
    discovery: RelayDiscovery
    node_name: str | None
    authority: str


def _relay(args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration) -> _Relay:
    """Where the agent dials the relay server: the given address, or how to discover it; and the server's name."""
    address = _host_port_or_output(args, "relay_server_address", label)
    discovery = args.get("relay_discovery", default_of("relay_discovery"))
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
    authority = args.get("relay_authority", default_of("relay_authority", generation))
    if not isinstance(authority, str) or not is_dns1123_subdomain(authority):
        raise RegistrationConfigError(
            label("relay_authority"),
            repr(authority),
            "is not a DNS name",
            f"give the relay server's TLS name, normally {generation.default_authority!r}",
        )
    return _Relay(address, RelayDiscovery(discovery), node_name, authority)


def _host_port_or_output(args: Mapping[str, Any], key: str, label: FieldLabel) -> pulumi.Input[str] | None:
    """A ``host:port`` argument: checked now when a string, once it resolves when an Output (discovery does that)."""
    address = args.get(key)
    if isinstance(address, str):
        return check_host_port(label(key), address)
    if address is not None and not isinstance(address, pulumi.Output):
        raise RegistrationConfigError(label(key), repr(address), "is not a string", "give host:port")
    return cast("pulumi.Input[str] | None", address)


def _agent_chart(
    args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration
) -> tuple[pulumi.Input[str] | None, str]:
    """The agent chart's version (None: discovered from the server) and its Helm repository."""
    version = args.get("agent_version")
    if isinstance(version, str):
        version = normalize_agent_version(label("agent_version"), version)
        version = check_generation_version(label("agent_version"), version, generation)
    elif version is not None and not isinstance(version, pulumi.Output):
        raise RegistrationConfigError(
            label("agent_version"), repr(version), "is not a string", "give a version such as '1.1.6'"
        )
    chart_repo = args.get("chart_repo", default_of("chart_repo", generation))
    parsed = urlparse(chart_repo) if isinstance(chart_repo, str) else None
    if parsed is None or parsed.scheme not in ("https", "http", "oci") or not parsed.netloc:
        raise RegistrationConfigError(
            label("chart_repo"),
            repr(chart_repo),
            "is not a Helm repository URL",
            f"give an https:// or oci:// URL such as {generation.chart_repo!r}",
        )
    return version, chart_repo


def _registered_cluster(args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration) -> tuple[str, str]:
    """The agent's namespace and the registered cluster's DNS domain."""
    remote_namespace = check_dns1123_label(
        label("remote_namespace"), args.get("remote_namespace", default_of("remote_namespace", generation)), "namespace"
    )
    cluster_domain = args.get("cluster_domain", default_of("cluster_domain"))
    if not isinstance(cluster_domain, str) or not is_dns1123_subdomain(cluster_domain):
        raise RegistrationConfigError(
            label("cluster_domain"),
            repr(cluster_domain),
            "is not a DNS domain",
            "give the cluster's DNS suffix, normally 'cluster.local'",
        )
    return remote_namespace, cluster_domain


def _client_cert_timeout(args: Mapping[str, Any], label: FieldLabel) -> int:
    timeout = args.get("client_cert_timeout_seconds", default_of("client_cert_timeout_seconds"))
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
    return timeout


def _helm_values(
    args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The user's Helm values of the agent release and (2.x) of the CRDs release."""
    agent_values = args.get("agent_values", default_of("agent_values"))
    if not isinstance(agent_values, Mapping):
        raise RegistrationConfigError(
            label("agent_values"), type(agent_values).__name__, "is not a mapping", "give a mapping of Helm values"
        )
    crd_values = args.get("crd_values", default_of("crd_values"))
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
    return agent_values, crd_values


def _telemetry(
    args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration
) -> tuple[bool, pulumi.Input[str] | None]:
    """(2.x) Whether the agent runs its telemetry collector, and the gateway it exports to (None: discovered)."""
    telemetry_address = _host_port_or_output(args, "telemetry_gateway_address", label)
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
    return telemetry, telemetry_address


def _agent_release_name(args: Mapping[str, Any], label: FieldLabel, generation: AgentGeneration) -> str:
    release_name = args.get("agent_release_name", default_of("agent_release_name", generation))
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
    return release_name


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
