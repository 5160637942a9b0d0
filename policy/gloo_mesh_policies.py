"""Guardrails for Gloo relay registrations (Gloo Mesh Enterprise 1.x and Gloo Platform 2.x), as a Pulumi policy pack.

Importable on purpose: constructing :class:`pulumi_policy.PolicyPack` starts the analyzer's gRPC server and
blocks, so it happens only in :func:`serve` (called by the pack's ``__main__.py``). Tests import the policies.

Resource policies see a resource's inputs before it is created (``Analyze``); stack policies see every resource of
the stack with its outputs, parent, provider and dependencies at the end of a preview or update (``AnalyzeStack``).
``pulumi up`` previews first, so a mandatory stack violation stops it before anything is applied (unless it is run
with ``--skip-preview``). Policies see secret values unwrapped; no message here ever repeats a value of a secret.

Every name and rule the policies check (charts, secrets, value paths, the cluster resource, the component's type,
DNS-1123 names, image tags) comes from ``gloo_mesh_registration.facts``, installed into the pack's environment as the
``gloo-mesh-registration`` package (``policy/requirements.txt``), so the pack and the component cannot disagree. That
module imports no provider SDK: the pack's process never loads pulumi_kubernetes or pulumi_command. Each policy checks
the resources of every agent generation, each by its own names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import semver
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidation,
    StackValidationArgs,
    StackValidationPolicy,
)

from gloo_mesh_registration.facts import (
    AGENT_VERSION_OUTPUT,
    CLUSTER_NAME_OUTPUT,
    COMPONENT_TYPE,
    GENERATIONS,
    AgentGeneration,
    ConfiguredAgentVersions,
    RegistrationConfigError,
    check_dns1123_label,
    configured_agent_versions,
    configured_management_namespace,
    is_dns1123_subdomain,
)

PACK_NAME = "gloo-mesh-relay-guardrails"
PACK_DESCRIPTION = (
    "Guardrails for Gloo relay registrations (RemoteClusterRegistration), Gloo Mesh Enterprise 1.x and Gloo Platform "
    "2.x: explicit providers, one agent chart version equal to the server's, cluster names and domains, a root CA copy "
    "without the private key, the agent namespace without Istio injection, independent registrations, the relay "
    "authority, no insecure relay unless allowed, and the registration steps' order."
)
"""What the pack checks, as the engine shows it; ``PulumiPolicy.yaml`` says the same (a test holds them equal)."""

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
SECRET_TYPE = "kubernetes:core/v1:Secret"
NAMESPACE_TYPES = ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:NamespacePatch")
COMMAND_TYPE = "command:local:Command"

STACK_ALLOW_INSECURE_KEY = "gloo-mesh-guardrails:allowInsecure"
"""Stack config key (``config:`` of a ``Pulumi.<stack>.yaml``) by which one stack allows insecure registrations."""
REGISTRATION_TYPE = COMPONENT_TYPE
"""Type token of the registration component: the resources below one belong to one registered cluster."""

_DEFAULT_PROVIDER_NAME = re.compile(r"^default(_.+)?$")
"""Names the engine gives default providers: ``default`` or ``default_<major>_<minor>_<patch>...`` (pulumi/pulumi
``pkg/resource/deploy/providers``, ``ProviderRequest.DefaultName``, used by ``source_eval.go``)."""


# -- reading properties ------------------------------------------------------------------------------------------


def _path(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return []
    return [item for item in value if isinstance(item, str)]


def _version(value: str) -> str | None:
    """An exact semantic version (a leading ``v`` stripped, as meshctl does), or None."""
    stripped = value.strip().removeprefix("v")
    return stripped if semver.Version.is_valid(stripped) else None


def _is_agent_release(resource_type: str, props: Mapping[str, Any], gen: AgentGeneration) -> bool:
    chart = props.get("chart") if resource_type == RELEASE_TYPE else None
    return isinstance(chart, str) and (chart == gen.chart or chart.endswith("/" + gen.chart))


def _relay_value(props: Mapping[str, Any], gen: AgentGeneration, key: str) -> Any:
    return _path(props, "values", *gen.relay_value_path, key)


def _cluster_value(props: Mapping[str, Any], gen: AgentGeneration) -> Any:
    return _path(props, "values", *gen.cluster_value_path)


def _release_namespace(props: Mapping[str, Any]) -> str:
    return _text(props.get("namespace")) or "default"


def _provider_urn(resource: PolicyResource) -> str | None:
    return resource.provider.urn if resource.provider is not None else None


def _stack_config() -> dict[str, Any]:
    """The stack's config as the engine hands it to a policy pack: JSON in ``PULUMI_CONFIG`` (pulumi/pulumi
    ``sdk/go/common/resource/plugin/analyzer_plugin.go``, ``constructEnv``)."""
    try:
        parsed = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class _Graph:
    """The stack's resources by URN, with the edges the engine orders steps by."""

    def __init__(self, resources: Sequence[PolicyResource]) -> None:
        self.resources = resources
        self.by_urn = {r.urn: r for r in resources}

    def dependencies(self, resource: PolicyResource, *, with_provider: bool = False) -> Iterator[PolicyResource]:
        yield from resource.dependencies
        if with_provider and resource.provider is not None and resource.provider.urn in self.by_urn:
            yield self.by_urn[resource.provider.urn]

    def closure(self, resource: PolicyResource, *, with_provider: bool = False) -> dict[str, PolicyResource]:
        """Every resource ``resource`` waits on, transitively."""
        seen: dict[str, PolicyResource] = {}
        stack = [resource]
        while stack:
            for dep in self.dependencies(stack.pop(), with_provider=with_provider):
                if dep.urn not in seen:
                    seen[dep.urn] = dep
                    stack.append(dep)
        return seen

    def of_type(self, *types: str) -> list[PolicyResource]:
        return [r for r in self.resources if r.resource_type in types]


def _agent_releases(graph: _Graph, gen: AgentGeneration) -> list[PolicyResource]:
    return [r for r in graph.of_type(RELEASE_TYPE) if _is_agent_release(r.resource_type, r.props, gen)]


def _is_insecure(props: Mapping[str, Any], gen: AgentGeneration) -> bool:
    return any(_truthy(_path(props, "values", *path)) for path in gen.insecure_value_paths())


def _cluster_name(resource: PolicyResource) -> str | None:
    return _text(_path(resource.props, "metadata", "name"))


def _cluster_identity(provider: PolicyProviderResource | None) -> str:
    """Which cluster a provider reaches: its context and kubeconfig (providers without either use the ambient
    kubeconfig's current context, so they all reach the same cluster). The kubeconfig is hashed, never shown."""
    if provider is None:
        return "ambient"
    context = _text(provider.props.get("context")) or ""
    kubeconfig = provider.props.get("kubeconfig")
    digest = hashlib.sha256(kubeconfig.encode()).hexdigest() if isinstance(kubeconfig, str) else ""
    return f"context={context};kubeconfig={digest}" if context or digest else "ambient"


# -- 1. explicit provider ----------------------------------------------------------------------------------------


def _explicit_provider(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:"):
        return
    provider = args.provider
    if provider is None:
        report_violation(f"{args.resource_type} '{args.name}' has no provider.", None)
    elif _DEFAULT_PROVIDER_NAME.match(provider.name):
        report_violation(
            f"{args.resource_type} '{args.name}' uses the default provider '{provider.name}', i.e. whatever "
            "kubeconfig context is current where Pulumi runs.",
            None,
        )


# -- 2. agent chart version --------------------------------------------------------------------------------------


def _agent_chart_version(gen: AgentGeneration) -> StackValidation:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = _Graph(args.resources)
        expected_raw = _text(args.get_config().get("expectedAgentVersion"))
        expected = _version(expected_raw) if expected_raw else None
        if expected_raw and expected is None:
            report_violation(f"Policy config expectedAgentVersion {expected_raw!r} is not a version.", None)
        configured = configured_agent_versions(os.environ.get("PULUMI_PROJECT", ""), _stack_config())
        releases = _agent_releases(graph, gen)
        servers = _server_versions_read(releases, configured)
        pinned: dict[str, tuple[PolicyResource, str]] = {}
        held: list[tuple[PolicyResource, str, str]] = []
        for release in releases:
            raw = release.props.get("version")
            if not isinstance(raw, str) or not raw.strip():
                report_violation(
                    f"Release '{release.name}' pins no chart version: Helm would install the newest "
                    f"{gen.chart} chart, whatever the server runs.",
                    release.urn,
                )
                continue
            version = _version(raw)
            if version is None:
                report_violation(
                    f"Release '{release.name}' chart version {raw!r} is not one exact version.", release.urn
                )
                continue
            cluster = _text(_cluster_value(release.props, gen))
            if cluster is not None and configured.clusters.get(cluster) == version:
                held.append((release, cluster, version))
                continue
            pinned[release.urn] = (release, version)
            if expected is not None and version != expected:
                report_violation(
                    f"Release '{release.name}' installs agent {version}; the management server runs {expected} "
                    "(policy config expectedAgentVersion).",
                    release.urn,
                )
            for server_version, readers in servers.items():
                if version != server_version:
                    report_violation(
                        f"Release '{release.name}' installs agent {version}; the management server runs "
                        f"{server_version}, as {_readers(readers)} read it from the server Deployment.",
                        release.urn,
                    )
        if len({version for _, version in pinned.values()}) > 1:
            listing = ", ".join(sorted(f"{r.name}={v}" for r, v in pinned.values()))
            for release, _ in pinned.values():
                report_violation(
                    f"Agent versions differ across the stack's clusters ({listing}); every agent must run the "
                    "server's version.",
                    release.urn,
                )
        bounds = [
            (f"the management server's version as {_readers(readers)} read it from the server Deployment", version)
            for version, readers in servers.items()
        ]
        if expected is not None:
            bounds.append(("the management server (policy config expectedAgentVersion)", expected))
        for release, cluster, version in held:
            _check_held_agent(release, cluster, version, bounds, report_violation)

    return validate


def _server_versions_read(
    releases: Sequence[PolicyResource], configured: ConfiguredAgentVersions
) -> dict[str, list[str]]:
    """The management server's version as the stack's registrations read it, each with the names of the registrations
    that read it.

    The engine hands ``AnalyzeStack`` no reads (pulumi/pulumi ``step_generator.go``, ``AnalyzeResources``, ranges over
    ``deployment.news``; ``step_executor.go`` keeps a read's state in ``deployment.reads``), so the server Deployment
    a registration read is never among the resources here. What is: the registration component with the outputs it
    registered (``executeRegisterResourceOutputs`` puts them in its state), among them the agent version it resolved.
    That is the version it read from the server's Deployment when it was given none, which the pack knows from the
    stack file (``configured.following``): a program without this project's stack file gives no server version here
    (``expectedAgentVersion`` does)."""
    found: dict[str, set[str]] = {}
    for release in releases:
        registration = _registration_of(release)
        if registration is None:
            continue
        cluster = _text(registration.props.get(CLUSTER_NAME_OUTPUT))
        if cluster is None or cluster not in configured.following:
            continue
        raw = _text(registration.props.get(AGENT_VERSION_OUTPUT))
        version = _version(raw) if raw else None
        if version is not None:
            found.setdefault(version, set()).add(registration.name)
    return {version: sorted(names) for version, names in sorted(found.items())}


def _readers(names: Sequence[str]) -> str:
    """``registration 'a'``, ``registrations 'a', 'b'``, or the first three and how many more."""
    shown = ", ".join(f"'{name}'" for name in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"registration{'s' if len(names) > 1 else ''} {shown}{more}"


def _check_held_agent(
    release: PolicyResource,
    cluster: str,
    version: str,
    bounds: list[tuple[str, str]],
    report_violation: ReportViolation,
) -> None:
    """An agent the stack file holds at a version of its own (``clusters[i].agentVersion``, a staged upgrade) may be
    older than the server, never newer: every skew Solo documents lets agents lag their server, none lets them lead.

    ``bounds``: what the server's version is known as: the version the stack's following registrations read from its
    Deployment (their ``agent_version`` outputs), and ``expectedAgentVersion``. Where every cluster is held or the
    stack file sets a management ``agentVersion``, no registration reads the server, and only the latter bounds it."""
    for server, server_version in bounds:
        if semver.Version.parse(version) > semver.Version.parse(server_version):
            report_violation(
                f"Release '{release.name}' installs agent {version}, held by the stack file's agentVersion of cluster "
                f"'{cluster}', which is newer than {server}: {server_version}. An agent may stay behind its server "
                "during a staged upgrade, never ahead of it.",
                release.urn,
            )


# -- 3. relay.cluster and KubernetesCluster ----------------------------------------------------------------------


def _relay_cluster_matches(gen: AgentGeneration) -> StackValidation:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = _Graph(args.resources)
        clusters = graph.of_type(gen.cluster_type)
        cluster_names = {name for name in map(_cluster_name, clusters) if name}
        releases_by_name: dict[str, list[PolicyResource]] = {}
        for release in _agent_releases(graph, gen):
            name = _text(_cluster_value(release.props, gen))
            if name is None:
                report_violation(f"Release '{release.name}' sets no {'.'.join(gen.cluster_value_path)}.", release.urn)
                continue
            releases_by_name.setdefault(name, []).append(release)
            if name not in cluster_names:
                report_violation(
                    f"Release '{release.name}' registers as {'.'.join(gen.cluster_value_path)} '{name}', but the "
                    f"stack declares no {gen.cluster_kind} named '{name}'.",
                    release.urn,
                )
        for cluster in clusters:
            name = _cluster_name(cluster)
            releases = releases_by_name.get(name or "", [])
            if len(releases) != 1:
                names = ", ".join(sorted(f"'{r.name}'" for r in releases)) or "none"
                report_violation(
                    f"{gen.cluster_kind} '{name}' has {len(releases)} agent Releases with "
                    f"{'.'.join(gen.cluster_value_path)} '{name}' ({names}); it needs exactly one.",
                    cluster.urn,
                )

    return validate


# -- 4. KubernetesCluster names ----------------------------------------------------------------------------------


def _cluster_names(gen: AgentGeneration) -> StackValidation:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = _Graph(args.resources)
        namespace = (
            _text(args.get_config().get("managementNamespace"))
            or configured_management_namespace(os.environ.get("PULUMI_PROJECT", ""), _stack_config())
            or gen.default_namespace
        )
        seen: dict[tuple[str, str, str], PolicyResource] = {}
        for cluster in graph.of_type(gen.cluster_type):
            name = _cluster_name(cluster)
            try:
                check_dns1123_label("metadata.name", name, "cluster name")
            except RegistrationConfigError as bad_name:
                report_violation(f"{gen.cluster_kind} '{cluster.name}' {bad_name}", cluster.urn)
            actual_namespace = _text(_path(cluster.props, "metadata", "namespace"))
            if actual_namespace != namespace:
                report_violation(
                    f"{gen.cluster_kind} '{cluster.name}' is in namespace {actual_namespace!r}, not in the "
                    f"management namespace '{namespace}' (policy config managementNamespace, else the stack's "
                    "management.namespace, else the default).",
                    cluster.urn,
                )
            domain = _path(cluster.props, "spec", "clusterDomain")
            if not is_dns1123_subdomain(domain):
                report_violation(
                    f"{gen.cluster_kind} '{cluster.name}' has spec.clusterDomain {domain!r}; give the cluster's "
                    "DNS suffix, normally 'cluster.local'.",
                    cluster.urn,
                )
            key = (_cluster_identity(cluster.provider), actual_namespace or "", name or "")
            first = seen.setdefault(key, cluster)
            if first is not cluster:
                report_violation(
                    f"{gen.cluster_kind} '{cluster.name}' and '{first.name}' both register '{name}' in "
                    f"namespace '{actual_namespace}' of the same management cluster.",
                    cluster.urn,
                )

    return validate


# -- 5. root CA copy ---------------------------------------------------------------------------------------------


def _root_ca_copy(gen: AgentGeneration) -> ResourceValidation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != SECRET_TYPE or _path(args.props, "metadata", "name") != gen.root_ca_secret:
            return
        if args.provider is not None and args.provider.name in _strings(args.get_config().get("exemptProviders")):
            return
        data = args.props.get("data")
        string_data = args.props.get("stringData")
        data = data if isinstance(data, Mapping) else {}
        string_data = string_data if isinstance(string_data, Mapping) else {}
        extra = sorted((set(data) | set(string_data)) - {gen.root_ca_key})
        if extra:
            report_violation(
                f"Secret '{args.name}' ({gen.root_ca_secret}) holds {', '.join(extra)} besides {gen.root_ca_key}.",
                None,
            )
        if gen.root_ca_key not in data and gen.root_ca_key not in string_data:
            report_violation(f"Secret '{args.name}' ({gen.root_ca_secret}) has no {gen.root_ca_key}.", None)
        decoded = [_decoded(v) for v in data.values()] + [v for v in string_data.values() if isinstance(v, str)]
        if any("PRIVATE KEY" in value for value in decoded):
            report_violation(f"Secret '{args.name}' ({gen.root_ca_secret}) carries private key material.", None)

    return validate


def _decoded(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


# -- 6. agent namespace without sidecars -------------------------------------------------------------------------


def _agent_namespace(gen: AgentGeneration) -> StackValidation:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = _Graph(args.resources)
        namespaces = graph.of_type(*NAMESPACE_TYPES)
        for release in _agent_releases(graph, gen):
            name = _release_namespace(release.props)
            declared = [
                ns
                for ns in namespaces
                if _path(ns.props, "metadata", "name") == name and _provider_urn(ns) == _provider_urn(release)
            ]
            if not declared:
                report_violation(
                    f"Release '{release.name}' installs the agent into namespace '{name}', which this stack does "
                    "not declare on the same cluster, so nothing keeps Istio from injecting it.",
                    release.urn,
                )
            for ns in declared:
                label = _path(ns.props, "metadata", "labels", "istio-injection")
                if label != "disabled":
                    report_violation(
                        f"Namespace '{name}' ({ns.name}) of agent Release '{release.name}' has istio-injection "
                        f"{label!r}.",
                        ns.urn,
                    )

    return validate


# -- 7. independent registrations --------------------------------------------------------------------------------


def _independent_registrations(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Registrations are recognised by the component's type, whatever their generation.

    The edges are the dependencies and providers of the resources the engine hands over: the registered ones. Reads
    are not among them (pulumi/pulumi ``step_generator.go``, ``AnalyzeResources``, ranges over ``deployment.news``;
    ``step_executor.go`` keeps a read in ``deployment.reads``), and pulumi-policy drops a dependency on a resource it
    was not handed, so an edge that only passes through another registration's read is not seen. Such a read is of
    the management cluster, which every registration reaches anyway, never of another registered cluster."""
    graph = _Graph(args.resources)
    owner = {r.urn: _registration_of(r) for r in graph.resources}
    reported: set[tuple[str, str]] = set()
    for resource in graph.resources:
        mine = owner[resource.urn]
        if mine is None:
            continue
        for dep in graph.closure(resource, with_provider=True).values():
            theirs = owner.get(dep.urn)
            if theirs is None or theirs.urn == mine.urn or (mine.urn, theirs.urn) in reported:
                continue
            reported.add((mine.urn, theirs.urn))
            report_violation(
                f"Registration '{mine.name}' waits on registration '{theirs.name}': '{resource.name}' depends "
                f"on '{dep.name}'.",
                resource.urn,
            )


def _registration_of(resource: PolicyResource) -> PolicyResource | None:
    current: PolicyResource | None = resource
    while current is not None:
        if current.resource_type == REGISTRATION_TYPE:
            return current
        current = current.parent
    return None


# -- 8. relay authority ------------------------------------------------------------------------------------------


def _relay_authority(gen: AgentGeneration) -> ResourceValidation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not _is_agent_release(args.resource_type, args.props, gen):
            return
        configured = _strings(args.get_config().get("allowedAuthorities"))
        allowed = configured or [gen.default_authority]
        authority = _relay_value(args.props, gen, "authority")
        path = ".".join((*gen.relay_value_path, "authority"))
        if isinstance(authority, str) and authority:
            effective, sets = authority, f"sets {path} {authority!r}"
        else:
            effective = gen.default_authority
            sets = f"sets no {path}, so the {gen.chart} chart's default {effective!r} applies"
        if effective not in allowed:
            source = (
                "policy config allowedAuthorities"
                if configured
                else f"the {gen.label} default; allowedAuthorities in the policy config replaces it"
            )
            report_violation(f"Release '{args.name}' {sets}; allowed: {', '.join(allowed)} ({source}).", None)

    return validate


# -- 9. insecure mode --------------------------------------------------------------------------------------------


def _insecure_mode(gen: AgentGeneration) -> ResourceValidation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not _is_agent_release(args.resource_type, args.props, gen) or not _is_insecure(args.props, gen):
            return
        if _truthy(args.get_config().get("allowInsecure")) or _truthy(_stack_config().get(STACK_ALLOW_INSECURE_KEY)):
            return
        report_violation(
            f"Release '{args.name}' registers without TLS (insecure flag set in its values).",
            None,
        )

    return validate


# -- 10. step order ----------------------------------------------------------------------------------------------


def _step_order(gen: AgentGeneration) -> StackValidation:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        graph = _Graph(args.resources)
        releases = _agent_releases(graph, gen)
        for release in releases:
            if _is_insecure(release.props, gen):
                continue
            waits_on = graph.closure(release)
            namespace = _release_namespace(release.props)
            needs = [
                (f"root CA copy ({gen.root_ca_secret})", _root_ca_copies(graph, release, namespace, gen)),
                (f"bootstrap token ({gen.token_secret})", _token_placements(graph, namespace, gen)),
            ]
            if gen.crds_chart is not None:
                needs.append((f"{gen.crds_chart} Release", _crds_releases(graph, release, namespace, gen.crds_chart)))
            for what, candidates in needs:
                if not any(c.urn in waits_on for c in candidates):
                    found = ", ".join(sorted(f"'{c.name}'" for c in candidates)) or "none in the stack"
                    report_violation(
                        f"Release '{release.name}' does not wait for the {what} in namespace '{namespace}' "
                        f"(candidates: {found}).",
                        release.urn,
                    )
        for cluster in graph.of_type(gen.cluster_type):
            name = _cluster_name(cluster)
            own = [r for r in releases if _cluster_value(r.props, gen) == name]
            if own and not any(r.urn in graph.closure(cluster) for r in own):
                report_violation(
                    f"{gen.cluster_kind} '{cluster.name}' does not wait for its agent Release "
                    f"({', '.join(sorted(repr(r.name) for r in own))}).",
                    cluster.urn,
                )

    return validate


def _root_ca_copies(
    graph: _Graph, release: PolicyResource, namespace: str, gen: AgentGeneration
) -> list[PolicyResource]:
    return [
        s
        for s in graph.of_type(SECRET_TYPE)
        if _path(s.props, "metadata", "name") == gen.root_ca_secret
        and _path(s.props, "metadata", "namespace") == namespace
        and _provider_urn(s) == _provider_urn(release)
    ]


def _crds_releases(graph: _Graph, release: PolicyResource, namespace: str, chart: str) -> list[PolicyResource]:
    return [
        r
        for r in graph.of_type(RELEASE_TYPE)
        if r.props.get("chart") == chart
        and _release_namespace(r.props) == namespace
        and _provider_urn(r) == _provider_urn(release)
    ]


def _token_placements(graph: _Graph, namespace: str, gen: AgentGeneration) -> list[PolicyResource]:
    """The token as a Secret resource, or a command that applies the token Secret's manifest from stdin."""
    found = []
    for resource in graph.of_type(SECRET_TYPE, COMMAND_TYPE):
        if resource.resource_type == SECRET_TYPE:
            metadata = _path(resource.props, "metadata")
        else:
            try:
                manifest = json.loads(resource.props.get("stdin") or "null")
            except (TypeError, json.JSONDecodeError):
                continue
            metadata = _path(manifest, "metadata") if _path(manifest, "kind") == "Secret" else None
        if _path(metadata, "name") == gen.token_secret and _path(metadata, "namespace") == namespace:
            found.append(resource)
    return found


# -- the pack ----------------------------------------------------------------------------------------------------


def _string_list(description: str, default: list[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "description": description,
        "default": default,
    }


V = TypeVar("V", StackValidation, ResourceValidation)


def _every(factory: Callable[[AgentGeneration], V], generations: Sequence[AgentGeneration]) -> V:
    """One validation that runs ``factory``'s for each generation (each finds only its own resources)."""
    validations = [factory(gen) for gen in generations]

    def validate(args: Any, report_violation: ReportViolation) -> None:
        for one in validations:
            one(args, report_violation)

    return cast(V, validate)


def policies(generations: Sequence[AgentGeneration] = tuple(GENERATIONS.values())) -> list[Policy]:
    """The pack's policies, in the order of docs/reference.md's policy table."""
    gen = generations[0]  # names the generations share (secret names, namespace) come from the first
    charts = " / ".join(g.chart for g in generations)
    kinds = " / ".join(sorted({g.cluster_kind for g in generations}))
    cluster_paths = " / ".join(".".join(g.cluster_value_path) for g in generations)
    authority_paths = " / ".join(".".join((*g.relay_value_path, "authority")) for g in generations)
    insecure_paths = " / ".join(".".join(path) for g in generations for path in g.insecure_value_paths())
    default_authorities = "; ".join(f"{g.label} ({g.chart}): {g.default_authority}" for g in generations)
    return [
        ResourceValidationPolicy(
            name="kubernetes-explicit-provider",
            description=(
                "Every kubernetes resource names an explicit Provider for its cluster, never the default provider "
                "(the ambient kubeconfig context). Fix: pass opts=ResourceOptions(provider=...) and set "
                "`pulumi:disable-default-providers: [kubernetes]` in Pulumi.yaml."
            ),
            validate=_explicit_provider,
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=Severity.HIGH,
        ),
        StackValidationPolicy(
            name="agent-chart-version",
            description=(
                f"Each agent Release ({charts}) pins one exact chart version, the same for every cluster of the "
                "stack and equal to the management server's version. The pack knows the server's version as the "
                "stack's registrations read it from the server Deployment: the agent_version output of each "
                "registration whose cluster the stack file lets follow the server (no agentVersion in its clusters "
                "entry or in management). The engine hands the pack no reads, so it never sees the Deployment "
                "itself; where no registration reads it (every version set in the stack file, or a program without "
                "this project's stack file), only expectedAgentVersion in the policy config gives the server's "
                "version. A cluster whose stack-file entry sets its own agentVersion (a staged upgrade's hold) may "
                "run that version while it is not newer than the server's. Fix: set agentVersion to the server's "
                "version (`meshctl version`), or leave it unset to read it from the server; to hold a cluster back "
                "during a staged upgrade, set agentVersion in its clusters entry."
            ),
            validate=_every(_agent_chart_version, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "expectedAgentVersion": {
                        "type": "string",
                        "description": (
                            "The management server's version the agents must equal, e.g. 1.1.6: the one source of "
                            "it where no registration of the stack reads it from the server."
                        ),
                    }
                }
            ),
            severity=Severity.HIGH,
        ),
        StackValidationPolicy(
            name="relay-cluster-matches-kubernetes-cluster",
            description=(
                f"The cluster value ({cluster_paths}) of each agent Release names a {kinds} of the stack, and each "
                f"{kinds} has exactly one agent Release: two agents under one name take each other's relay identity. "
                "Fix: register every cluster once, under one name, through RemoteClusterRegistration."
            ),
            validate=_every(_relay_cluster_matches, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=Severity.CRITICAL,
        ),
        StackValidationPolicy(
            name="kubernetes-cluster-name",
            description=(
                f"{kinds} names are DNS-1123 labels, unique per management cluster, in the management "
                "namespace, with a spec.clusterDomain. Fix: give each cluster a unique name such as 'eu-west-1-a', "
                "and set the management namespace and clusterDomain. The management namespace is managementNamespace "
                "in the policy config, else the stack's management.namespace, else the generation's default."
            ),
            validate=_every(_cluster_names, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "managementNamespace": {
                        "type": "string",
                        "minLength": 1,
                        "description": (
                            "Namespace of the relay server and the cluster objects (default: the stack's "
                            f"management.namespace, else {gen.default_namespace})."
                        ),
                    }
                }
            ),
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name="root-ca-copy-ca-crt-only",
            description=(
                f"The {gen.root_ca_secret} copy on a registered cluster holds only {gen.root_ca_key}: the "
                "management secret can hold the CA's private key, which must never leave the management cluster. "
                f"Fix: copy only data['{gen.root_ca_key}'] (RemoteClusterRegistration does)."
            ),
            validate=_every(_root_ca_copy, _distinct(generations, lambda g: (g.root_ca_secret, g.root_ca_key))),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "exemptProviders": _string_list(
                        "Names of Provider resources of a management cluster whose own root secret this program "
                        "manages (not a copy).",
                        [],
                    )
                }
            ),
            severity=Severity.CRITICAL,
        ),
        StackValidationPolicy(
            name="agent-namespace-no-istio-injection",
            description=(
                "The agent's namespace is declared on its cluster with the label istio-injection: disabled: a sidecar "
                "in front of the agent breaks its relay connection. Fix: create or label the namespace with "
                "istio-injection=disabled (RemoteClusterRegistration does, also with createNamespace: false)."
            ),
            validate=_every(_agent_namespace, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=Severity.HIGH,
        ),
        StackValidationPolicy(
            name="registrations-independent",
            description=(
                "No resource of one cluster's registration depends on a resource of another's (directly, through "
                "resources outside both, or through its Provider), so one unreachable cluster never holds up the "
                "others. It sees the resources the stack registers, not its reads (the engine hands the pack none): "
                "a dependency only on another registration's read of the management cluster, such as its discovered "
                "relay address given as an input, is not reported. Fix: give each registration its own inputs (e.g. "
                "the relay address as a value, not another registration's output) and no depends_on across "
                "registrations."
            ),
            validate=_independent_registrations,
            enforcement_level=EnforcementLevel.ADVISORY,
            severity=Severity.MEDIUM,
        ),
        ResourceValidationPolicy(
            name="relay-authority-allowed",
            description=(
                f"The relay authority ({authority_paths}) of each agent Release (the relay server's gRPC authority "
                "and TLS name; unset, the chart's default) is one the server certificate is issued for: one of "
                "allowedAuthorities in the policy config, else the default of the Release's generation, known by its "
                f"chart ({default_authorities}). Fix: set relayAuthority to an allowed name, or list the names your "
                "server certificates carry in allowedAuthorities in the policy config (the list replaces the "
                "defaults: include the default of each generation your stacks register with)."
            ),
            validate=_every(_relay_authority, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "allowedAuthorities": _string_list(
                        "Authorities the relay server certificate is valid for; they replace the defaults. Empty "
                        f"(the default): each agent Release's own generation's default ({default_authorities}).",
                        [],
                    )
                }
            ),
            severity=Severity.HIGH,
        ),
        ResourceValidationPolicy(
            name="insecure-relay-refused",
            description=(
                f"Agents register over TLS: insecure mode ({insecure_paths}) is refused unless the "
                f"stack allows it explicitly. Fix: remove insecure, or allow it for this stack with the stack "
                f"config `{STACK_ALLOW_INSECURE_KEY}: true` (or allowInsecure in the policy config); "
                "set enforcementLevel mandatory to block it."
            ),
            validate=_every(_insecure_mode, generations),
            enforcement_level=EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(
                properties={
                    "allowInsecure": {
                        "type": "boolean",
                        "description": "Allow insecure registrations in every stack this configuration applies to.",
                        "default": False,
                    }
                }
            ),
            severity=Severity.HIGH,
        ),
        StackValidationPolicy(
            name="registration-step-order",
            description=(
                f"Each agent Release waits for the {gen.root_ca_secret} copy and the bootstrap token of its "
                f"namespace (and, where the generation has one, its CRDs Release), and each {kinds} waits for its "
                "agent Release (the registration steps' order). Fix: keep the depends_on of "
                "RemoteClusterRegistration's steps, or add the missing ones."
            ),
            validate=_every(_step_order, generations),
            enforcement_level=EnforcementLevel.MANDATORY,
            severity=Severity.HIGH,
        ),
    ]


def _distinct(
    generations: Sequence[AgentGeneration], key: Callable[[AgentGeneration], object]
) -> list[AgentGeneration]:
    """One generation per distinct ``key`` (the generations share secret names: check each secret once)."""
    seen: dict[object, AgentGeneration] = {}
    for gen in generations:
        seen.setdefault(key(gen), gen)
    return list(seen.values())


def serve() -> None:
    """Serve the pack to the Pulumi engine (blocks; the pack's ``__main__.py`` calls this)."""
    PolicyPack(
        name=PACK_NAME,
        policies=policies(),
        enforcement_level=EnforcementLevel.ADVISORY,
        description=PACK_DESCRIPTION,
        display_name="Gloo Mesh relay registration guardrails",
    )
