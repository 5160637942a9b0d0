"""Each policy of the pack called directly, on inputs that pass and inputs that fail.

Resource policies get `ResourceValidationArgs` (a resource's inputs and provider), stack policies get
`StackValidationArgs` (every resource with outputs, parent, provider and dependencies), as pulumi-policy builds them.
The graph below is what one `RemoteClusterRegistration` declares (tests/test_registration_graph.py asserts the
same shape from the real component); each test changes one thing in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from gloo_mesh_registration import GLOO_MESH_ENTERPRISE_1X as GEN
from gloo_mesh_registration.agent_generation import GENERATIONS
from gloo_mesh_registration.agent_generation import GLOO_PLATFORM_2X as PLATFORM
from gloo_mesh_registration.facts import AGENT_VERSION_OUTPUT, CLUSTER_NAME_OUTPUT, COMPONENT_TYPE
from lab.engine_double import (
    CA_CERT,
    CA_PRIVATE_KEY,
    COMMAND,
    KUBERNETES_PROVIDER,
    NAMESPACE,
    NAMESPACE_PATCH,
    RELEASE,
    SECRET,
    b64,
)
from policy.gloo_mesh_policies import STACK_ALLOW_INSECURE_KEY, policies


def pack_policy(name: str) -> Policy:
    """The pack's policy ``name``, built for the check at hand: the pack makes each validator in a factory (one per
    generation), so building the pack inside each test makes every test exercise the factories, not only the first
    test of a run (what mutation testing measures per test, TESTING.md)."""
    return {p.name: p for p in policies()}[name]


CLUSTER = GEN.cluster_type
POLICY_EXAMPLE = Path(__file__).resolve().parents[1] / "policy" / "config.example.json"
STACK = "urn:pulumi:test::proj"


def _options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def provider(name: str, **props: Any) -> PolicyProviderResource:
    return PolicyProviderResource(KUBERNETES_PROVIDER, props, f"{STACK}::{KUBERNETES_PROVIDER}::{name}", name)


def check_resource(
    policy_name: str,
    type_: str,
    props: Mapping[str, Any],
    *,
    via: PolicyProviderResource | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """The messages the resource policy reports for one resource."""
    policy = pack_policy(policy_name)
    assert isinstance(policy, ResourceValidationPolicy)
    args = ResourceValidationArgs(type_, props, f"{STACK}::{type_}::r", "r", _options(), via, config)
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    policy.validate(args, report)
    return messages


def check_stack(
    policy_name: str, resources: list[PolicyResource], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(resource name or "", message) for each violation the stack policy reports."""
    policy = pack_policy(policy_name)
    assert isinstance(policy, StackValidationPolicy)
    by_urn = {r.urn: r.name for r in resources}
    found: list[tuple[str, str]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((by_urn.get(urn or "", ""), message))

    policy.validate(StackValidationArgs(resources, config), report)
    return found


def editable(props: Mapping[str, Any]) -> dict[str, Any]:
    """The props of a resource built here (a dict), for a test to change."""
    assert isinstance(props, dict)
    return props


# -- a registration's resources, as AnalyzeStack delivers them --------------------------------------------------


def release_props(cluster: str, version: str | None = "1.1.6", **relay: Any) -> dict[str, Any]:
    values = {
        "serverAddress": "203.0.113.10:9900",
        "cluster": cluster,
        "authority": GEN.default_authority,
        "rootTlsSecret": {"name": GEN.root_ca_secret, "namespace": "gloo-mesh"},
        "tokenSecret": {"name": GEN.token_secret, "namespace": "gloo-mesh", "key": GEN.token_key},
        **relay,
    }
    props: dict[str, Any] = {
        "chart": GEN.chart,
        "name": GEN.release_name,
        "namespace": "gloo-mesh",
        "values": {"relay": values},
    }
    if version is not None:
        props["version"] = version
    return props


@dataclass
class Stack:
    """Resources of a stack under construction; `add` links parents, providers and dependencies."""

    resources: list[PolicyResource] = field(default_factory=list)
    providers: dict[str, PolicyProviderResource] = field(default_factory=dict)

    def add(
        self,
        type_: str,
        name: str,
        props: Mapping[str, Any] | None = None,
        *,
        parent: PolicyResource | None = None,
        via: str | None = None,
        deps: tuple[PolicyResource, ...] = (),
    ) -> PolicyResource:
        qualified = f"{parent.resource_type}${type_}" if parent else type_
        urn = f"{STACK}::{qualified}::{name}"
        prov = self.providers[via] if via else None
        resource = PolicyResource(
            type_, dict(props or {}), urn, name, _options(parent.urn if parent else None), prov, parent, list(deps), {}
        )
        self.resources.append(resource)
        if type_ == KUBERNETES_PROVIDER:
            self.providers[name] = PolicyProviderResource(type_, dict(props or {}), urn, name)
        return resource

    def named(self, name: str) -> PolicyResource:
        return next(r for r in self.resources if r.name == name)

    def registration(
        self, name: str, *, mgmt: str = "management", version: str | None = "1.1.6", insecure: bool = False
    ) -> PolicyResource:
        """What RemoteClusterRegistration declares for one cluster, as AnalyzeStack hands it over: no reads (the
        engine sends none; the component reads the server Deployment and Services, and the relay secrets by invoke)."""
        if mgmt not in self.providers:
            self.add(KUBERNETES_PROVIDER, mgmt, {"context": "mgmt"})
        # The component's state carries the outputs it registered, among them the agent version it resolved.
        outputs = {CLUSTER_NAME_OUTPUT: name} | ({AGENT_VERSION_OUTPUT: version} if version is not None else {})
        component = self.add(COMPONENT_TYPE, name, outputs)
        remote = self.add(KUBERNETES_PROVIDER, f"{name}-remote", {"context": f"{name}-ctx"}, parent=component).name
        ns = self.add(
            NAMESPACE,
            f"{name}-namespace",
            {"metadata": {"name": "gloo-mesh", "labels": {"istio-injection": "disabled"}}},
            parent=component,
            via=remote,
        )
        prerequisites: tuple[PolicyResource, ...] = (ns,)
        relay: dict[str, Any] = {"insecure": True} if insecure else {}
        if not insecure:
            ca = self.add(
                SECRET,
                f"{name}-root-ca",
                {"metadata": {"name": GEN.root_ca_secret, "namespace": "gloo-mesh"}, "data": {"ca.crt": b64(CA_CERT)}},
                parent=component,
                via=remote,
                deps=(ns,),
            )
            manifest = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": GEN.token_secret, "namespace": "gloo-mesh"},
            }
            token = self.add(
                COMMAND, f"{name}-bootstrap-token", {"stdin": json.dumps(manifest)}, parent=component, deps=(ns,)
            )
            prerequisites = (ns, ca, token)
        release = self.add(
            RELEASE,
            f"{name}-agent",
            release_props(name, version, **relay),
            parent=component,
            via=remote,
            deps=prerequisites,
        )
        self.add(
            CLUSTER,
            f"{name}-kubernetes-cluster",
            {"metadata": {"name": name, "namespace": "gloo-mesh"}, "spec": {"clusterDomain": "cluster.local"}},
            parent=component,
            via=mgmt,
            deps=(release,),
        )
        return component


def fleet(*names: str) -> Stack:
    stack = Stack()
    for name in names:
        stack.registration(name)
    return stack


@pytest.mark.parametrize("policy_name", sorted(p.name for p in policies() if isinstance(p, StackValidationPolicy)))
def test_a_well_formed_fleet_passes_every_stack_policy(policy_name: str) -> None:
    assert check_stack(policy_name, fleet("east", "west").resources) == []


# -- 1. explicit provider ----------------------------------------------------------------------------------------


def test_explicit_provider() -> None:
    props = {"metadata": {"name": "gloo-mesh"}}
    assert (
        check_resource("kubernetes-explicit-provider", NAMESPACE, props, via=provider("east-remote", context="east"))
        == []
    )
    assert check_resource("kubernetes-explicit-provider", COMMAND, {}) == []  # not a kubernetes resource
    [missing] = check_resource("kubernetes-explicit-provider", NAMESPACE, props)
    assert "has no provider" in missing
    [default] = check_resource("kubernetes-explicit-provider", NAMESPACE, props, via=provider("default_4_34_2"))
    assert "default provider 'default_4_34_2'" in default and "current" in default


# -- 2. agent chart version --------------------------------------------------------------------------------------


def _with_release(stack: Stack, name: str, **changes: Any) -> Stack:
    editable(stack.named(f"{name}-agent").props).update(changes)
    return stack


def test_agent_chart_version_is_pinned_exact_and_consistent() -> None:
    assert check_stack("agent-chart-version", _with_release(fleet("east"), "east", version="v1.1.6").resources) == []
    [(where, unpinned)] = check_stack("agent-chart-version", _with_release(fleet("east"), "east", version="").resources)
    assert where == "east-agent" and "pins no chart version" in unpinned
    [(_, ranged)] = check_stack("agent-chart-version", _with_release(fleet("east"), "east", version="^1.1").resources)
    assert "'^1.1' is not one exact version" in ranged
    differing = check_stack(
        "agent-chart-version", _with_release(fleet("east", "west"), "west", version="1.1.5").resources
    )
    assert sorted(where for where, _ in differing) == ["east-agent", "west-agent"]
    assert all("east-agent=1.1.6, west-agent=1.1.5" in message for _, message in differing)


def _resolved(stack: Stack, name: str, version: str) -> Stack:
    """Registration ``name`` resolved ``version`` (given, or read from the server) and installs its agent at it."""
    editable(stack.named(name).props)[AGENT_VERSION_OUTPUT] = version
    return _with_release(stack, name, version=version)


def _stack_file(
    monkeypatch: pytest.MonkeyPatch, clusters: Mapping[str, str | None], management: str | None = None
) -> None:
    """The stack file the engine hands the pack (``PULUMI_CONFIG``, ``PULUMI_PROJECT``): one ``clusters`` entry per
    name, with its own agentVersion where one is given, and the management agentVersion if given."""
    monkeypatch.setenv("PULUMI_PROJECT", "platform-team")
    entries = [
        {"name": name, "context": f"{name}-ctx", **({"agentVersion": v} if v is not None else {})}
        for name, v in clusters.items()
    ]
    config = {
        "platform-team:management": json.dumps(
            {"context": "mgmt", **({"agentVersion": management} if management is not None else {})}
        ),
        "platform-team:clusters": json.dumps(entries),
    }
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))


def test_agent_chart_version_equals_the_configured_server_version_and_the_one_its_registrations_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    stack = fleet("east")
    assert check_stack("agent-chart-version", stack.resources, {"expectedAgentVersion": "1.1.6"}) == []
    [(_, configured)] = check_stack("agent-chart-version", stack.resources, {"expectedAgentVersion": "1.2.0"})
    assert configured == (
        "Release 'east-agent' installs agent 1.1.6; the management server runs 1.2.0 (policy config "
        "expectedAgentVersion)."
    )
    # The registration read the server at 1.1.7 (its agent_version output) while its Release stays at 1.1.6: what an
    # `up --target` of other resources leaves behind after a server upgrade, or a transformation of the Release.
    editable(stack.named("east").props)[AGENT_VERSION_OUTPUT] = "1.1.7"
    _stack_file(monkeypatch, {"east": None})
    [(where, read)] = check_stack("agent-chart-version", stack.resources)
    assert (where, read) == (
        "east-agent",
        "Release 'east-agent' installs agent 1.1.6; the management server runs 1.1.7, as registration 'east' read it "
        "from the server Deployment.",
    )
    # The output is the server's only where the stack file lets the cluster follow the server: with a management
    # agentVersion, without a stack file of the project, or for a cluster the file does not list, it may be a version
    # given to the registration, and the registration read nothing.
    _stack_file(monkeypatch, {"east": None}, management="1.1.7")
    assert check_stack("agent-chart-version", stack.resources) == []
    _stack_file(monkeypatch, {"west": None})
    assert check_stack("agent-chart-version", stack.resources) == []
    monkeypatch.setenv("PULUMI_PROJECT", "another-project")
    assert check_stack("agent-chart-version", stack.resources) == []
    # An output that is no version tells nothing.
    _stack_file(monkeypatch, {"east": None})
    editable(stack.named("east").props)[AGENT_VERSION_OUTPUT] = "latest"
    assert check_stack("agent-chart-version", stack.resources) == []


def test_a_cluster_its_stack_file_holds_back_may_run_an_older_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A staged upgrade: the server at 1.1.7, the canary (east) follows it, west is held at 1.1.6 by its own
    agentVersion. Without the hold, west follows the server too (its registration reads 1.1.7) while its Release is
    left at 1.1.6, which breaks the rule twice (the server's version, the same for every cluster)."""
    stack = _resolved(fleet("east", "west"), "east", "1.1.7")
    editable(stack.named("west").props)[AGENT_VERSION_OUTPUT] = "1.1.7"
    _stack_file(monkeypatch, {"east": None, "west": None})
    unheld = check_stack("agent-chart-version", stack.resources)
    assert sorted(where for where, _ in unheld) == ["east-agent", "west-agent", "west-agent"]
    assert any(
        "'west-agent' installs agent 1.1.6; the management server runs 1.1.7, as registrations" in m for _, m in unheld
    )
    # Held, west's registration reads nothing: its output is the hold.
    _resolved(stack, "west", "1.1.6")
    _stack_file(monkeypatch, {"east": None, "west": "v1.1.6"})
    assert check_stack("agent-chart-version", stack.resources) == []
    assert check_stack("agent-chart-version", stack.resources, {"expectedAgentVersion": "1.1.7"}) == []
    # A hold waives the rule for the version it names only: west's release is not at its hold (1.1.5).
    _stack_file(monkeypatch, {"east": None, "west": "1.1.5"})
    assert len(check_stack("agent-chart-version", stack.resources)) == 3
    # Another project's clusters are not this stack's: only the rule of one version is left to break.
    _stack_file(monkeypatch, {"east": None, "west": "1.1.6"})
    monkeypatch.setenv("PULUMI_PROJECT", "another-project")
    assert len(check_stack("agent-chart-version", stack.resources)) == 2


def test_a_held_agent_may_not_be_newer_than_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's version is known as the following registrations read it (the real engine hands the pack no reads,
    so not as the server Deployment itself), or as expectedAgentVersion."""
    stack = _resolved(_resolved(fleet("east", "west"), "east", "1.1.7"), "west", "1.2.0")
    _stack_file(monkeypatch, {"east": None, "west": "1.2.0"})
    [(where, newer)] = check_stack("agent-chart-version", stack.resources)
    assert (where, newer) == (
        "west-agent",
        "Release 'west-agent' installs agent 1.2.0, held by the stack file's agentVersion of cluster 'west', which is "
        "newer than the management server's version as registration 'east' read it from the server Deployment: "
        "1.1.7. An agent may stay behind its server during a staged upgrade, never ahead of it.",
    )
    # Many readers: the first three are named.
    fleet_of_five = fleet("a", "b", "c", "d", "west")
    for name in "abcd":
        _resolved(fleet_of_five, name, "1.1.7")
    _resolved(fleet_of_five, "west", "1.2.0")
    _stack_file(monkeypatch, dict.fromkeys("abcd") | {"west": "1.2.0"})
    [(_, many)] = check_stack("agent-chart-version", fleet_of_five.resources)
    assert "as registrations 'a', 'b', 'c' and 1 more read it from the server Deployment: 1.1.7." in many
    # Every cluster held: no registration read the server; only the configured server version bounds them.
    _stack_file(monkeypatch, {"east": "1.1.7", "west": "1.2.0"})
    assert check_stack("agent-chart-version", stack.resources) == []
    [(_, configured)] = check_stack("agent-chart-version", stack.resources, {"expectedAgentVersion": "1.1.7"})
    assert "newer than the management server (policy config expectedAgentVersion): 1.1.7" in configured


def test_a_stack_frozen_at_the_old_version_may_lead_with_a_held_canary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack-wide variant: management.agentVersion keeps every cluster at 1.1.6, the canary's own entry moves it
    to 1.1.7. The others follow the stack's version, not the server's, so they bound nothing."""
    stack = _resolved(fleet("east", "west"), "east", "1.1.7")
    _stack_file(monkeypatch, {"east": "1.1.7", "west": None}, management="1.1.6")
    assert check_stack("agent-chart-version", stack.resources) == []
    # Without the stack's version, west follows the server (its registration read 1.1.6): a canary ahead is refused.
    _stack_file(monkeypatch, {"east": "1.1.7", "west": None})
    [(where, ahead)] = check_stack("agent-chart-version", stack.resources)
    assert where == "east-agent"
    assert "newer than the management server's version as registration 'west' read it from the server" in ahead


# -- 3. relay.cluster matches a KubernetesCluster ----------------------------------------------------------------


def test_relay_cluster_matches_exactly_one_kubernetes_cluster() -> None:
    stack = fleet("east")
    stack.named("east-agent").props["values"]["relay"]["cluster"] = "east-typo"
    found = check_stack("relay-cluster-matches-kubernetes-cluster", stack.resources)
    assert sorted(where for where, _ in found) == ["east-agent", "east-kubernetes-cluster"]
    assert "no KubernetesCluster named 'east-typo'" in dict(found)["east-agent"]
    assert dict(found)["east-kubernetes-cluster"] == (
        "KubernetesCluster 'east' has 0 agent Releases with relay.cluster 'east' (none); it needs exactly one."
    )

    twice = fleet("east")
    twice.add(RELEASE, "east-agent-again", release_props("east"), via="east-remote")
    [(where, message)] = check_stack("relay-cluster-matches-kubernetes-cluster", twice.resources)
    assert where == "east-kubernetes-cluster" and "has 2 agent Releases" in message

    unnamed = fleet("east")
    del unnamed.named("east-agent").props["values"]["relay"]["cluster"]
    assert ("east-agent", "Release 'east-agent' sets no relay.cluster.") in check_stack(
        "relay-cluster-matches-kubernetes-cluster", unnamed.resources
    )


# -- 4. KubernetesCluster names ----------------------------------------------------------------------------------


def _cluster(stack: Stack, name: str) -> PolicyResource:
    return stack.named(f"{name}-kubernetes-cluster")


def test_kubernetes_cluster_names_are_labels_in_the_management_namespace_with_a_domain() -> None:
    stack = fleet("east")
    _cluster(stack, "east").props["metadata"]["name"] = "East_1"
    [(_, label)] = check_stack("kubernetes-cluster-name", stack.resources)
    assert "'East_1' is not a valid cluster name" in label and "use a name such as 'east-1'" in label

    stack = fleet("east")
    _cluster(stack, "east").props["metadata"]["namespace"] = "default"
    [(_, namespace)] = check_stack("kubernetes-cluster-name", stack.resources)
    assert namespace == (
        "KubernetesCluster 'east-kubernetes-cluster' is in namespace 'default', not in the management namespace "
        "'gloo-mesh' (policy config managementNamespace, else the stack's management.namespace, else the default)."
    )
    assert check_stack("kubernetes-cluster-name", stack.resources, {"managementNamespace": "default"}) == []

    stack = fleet("east")
    del _cluster(stack, "east").props["spec"]["clusterDomain"]
    [(_, domain)] = check_stack("kubernetes-cluster-name", stack.resources)
    assert "spec.clusterDomain None" in domain


def test_the_management_namespace_defaults_to_the_stacks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plane in another namespace (stack file ``management.namespace``) needs no policy config: the engine hands the
    pack the stack's config (PULUMI_CONFIG, objects as JSON text) and project (PULUMI_PROJECT)."""
    stack = fleet("east")
    _cluster(stack, "east").props["metadata"]["namespace"] = "gloo-platform"
    monkeypatch.setenv("PULUMI_PROJECT", "platform-team")
    management = json.dumps({"context": "mgmt", "namespace": "gloo-platform"})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"platform-team:management": management}))
    assert check_stack("kubernetes-cluster-name", stack.resources) == []
    # The policy config still wins, and another project's key is not this stack's.
    [(_, namespace)] = check_stack("kubernetes-cluster-name", stack.resources, {"managementNamespace": "gloo-mesh"})
    assert "namespace 'gloo-platform', not in the management namespace 'gloo-mesh'" in namespace
    monkeypatch.setenv("PULUMI_PROJECT", "another-project")
    assert len(check_stack("kubernetes-cluster-name", stack.resources)) == 1


def test_kubernetes_cluster_names_are_unique_per_management_cluster() -> None:
    stack = Stack()
    stack.registration("east")
    stack.add(KUBERNETES_PROVIDER, "management-again", {"context": "mgmt"})
    stack.registration("east-b", mgmt="management-again")
    _cluster(stack, "east-b").props["metadata"]["name"] = "east"
    [(where, message)] = check_stack("kubernetes-cluster-name", stack.resources)
    assert where == "east-b-kubernetes-cluster" and "both register 'east'" in message
    # The same name with another management cluster is another cluster object.
    editable(stack.providers["management-again"].props)["context"] = "other-mgmt"
    assert check_stack("kubernetes-cluster-name", stack.resources) == []


def test_a_management_cluster_is_its_context_and_its_kubeconfig() -> None:
    """One context name in two kubeconfigs is two clusters; no provider, or one with neither, is the ambient one."""
    stack = Stack()
    stack.add(KUBERNETES_PROVIDER, "management", {"context": "mgmt", "kubeconfig": "apiVersion: v1 # one"})
    stack.registration("east")
    stack.add(KUBERNETES_PROVIDER, "management-b", {"context": "mgmt", "kubeconfig": "apiVersion: v1 # other"})
    stack.registration("east-b", mgmt="management-b")
    _cluster(stack, "east-b").props["metadata"]["name"] = "east"
    assert check_stack("kubernetes-cluster-name", stack.resources) == []
    editable(stack.providers["management-b"].props)["kubeconfig"] = "apiVersion: v1 # one"
    assert [where for where, _ in check_stack("kubernetes-cluster-name", stack.resources)] == [
        "east-b-kubernetes-cluster"
    ]

    ambient = Stack()
    ambient.add(KUBERNETES_PROVIDER, "management", {})
    ambient.registration("east")
    ambient.registration("east-b")
    _cluster(ambient, "east-b").props["metadata"]["name"] = "east"
    _cluster(ambient, "east-b").provider = None
    [(where, message)] = check_stack("kubernetes-cluster-name", ambient.resources)
    assert where == "east-b-kubernetes-cluster" and "both register 'east'" in message


# -- 5. root CA copy ---------------------------------------------------------------------------------------------


def test_root_ca_copy_holds_ca_crt_only() -> None:
    copy = {"metadata": {"name": GEN.root_ca_secret, "namespace": "gloo-mesh"}, "data": {"ca.crt": b64(CA_CERT)}}
    remote = provider("east-remote", context="east")
    assert check_resource("root-ca-copy-ca-crt-only", SECRET, copy, via=remote) == []
    with_key = {**copy, "data": {"ca.crt": b64(CA_CERT), "tls.key": b64(CA_PRIVATE_KEY)}}
    found = check_resource("root-ca-copy-ca-crt-only", SECRET, with_key, via=remote)
    assert any("holds tls.key besides ca.crt" in m for m in found) and any("private key material" in m for m in found)
    assert not any(b64(CA_PRIVATE_KEY) in m or "fakeROOTKEY" in m for m in found)
    smuggled = {**copy, "stringData": {"ca.crt": CA_CERT + CA_PRIVATE_KEY}, "data": {}}
    assert check_resource("root-ca-copy-ca-crt-only", SECRET, smuggled, via=remote) == [
        f"Secret 'r' ({GEN.root_ca_secret}) carries private key material."
    ]
    assert check_resource("root-ca-copy-ca-crt-only", SECRET, {**copy, "data": {}}, via=remote) == [
        f"Secret 'r' ({GEN.root_ca_secret}) has no ca.crt."
    ]
    other = {"metadata": {"name": "unrelated"}, "data": {"tls.key": b64(CA_PRIVATE_KEY)}}
    assert check_resource("root-ca-copy-ca-crt-only", SECRET, other, via=remote) == []
    # A program that also manages the management plane's own root secret exempts that cluster's provider.
    own = provider("management", context="mgmt")
    assert (
        check_resource(
            "root-ca-copy-ca-crt-only", SECRET, with_key, via=own, config={"exemptProviders": ["management"]}
        )
        == []
    )


# -- 6. agent namespace ------------------------------------------------------------------------------------------


def test_agent_namespace_is_declared_and_not_injected() -> None:
    stack = fleet("east")
    stack.named("east-namespace").props["metadata"]["labels"] = {"istio-injection": "enabled"}
    [(where, message)] = check_stack("agent-namespace-no-istio-injection", stack.resources)
    assert where == "east-namespace" and "istio-injection 'enabled'" in message

    stack = fleet("east")
    stack.resources.remove(stack.named("east-namespace"))
    [(where, message)] = check_stack("agent-namespace-no-istio-injection", stack.resources)
    assert where == "east-agent" and "does not declare on the same cluster" in message

    patched = fleet("east")
    namespace = patched.named("east-namespace")
    namespace.resource_type = NAMESPACE_PATCH
    assert check_stack("agent-namespace-no-istio-injection", patched.resources) == []

    # A namespace of that name on another cluster is not the agent's.
    elsewhere = fleet("east", "west")
    elsewhere.resources.remove(elsewhere.named("east-namespace"))
    [(where, _)] = check_stack("agent-namespace-no-istio-injection", elsewhere.resources)
    assert where == "east-agent"


# -- 7. independent registrations --------------------------------------------------------------------------------


def test_registrations_stay_independent() -> None:
    stack = fleet("east", "west")
    west_release = stack.named("west-agent")
    west_release.dependencies.append(stack.named("east-root-ca"))
    [(where, message)] = check_stack("registrations-independent", stack.resources)
    assert where == "west-agent" and "Registration 'west' waits on registration 'east'" in message

    # Through a resource outside both registrations, and through another registration's provider.
    stack = fleet("east", "west")
    shared = stack.add(COMMAND, "shared", deps=(stack.named("east-agent"),))
    stack.named("west-kubernetes-cluster").dependencies.append(shared)
    assert [w for w, _ in check_stack("registrations-independent", stack.resources)] == ["west-kubernetes-cluster"]
    stack = fleet("east", "west")
    stack.named("west-namespace").provider = stack.providers["east-remote"]
    assert [w for w, _ in check_stack("registrations-independent", stack.resources)] == ["west-namespace"]


# -- 8. relay authority ------------------------------------------------------------------------------------------


def test_relay_authority_is_on_the_allow_list() -> None:
    assert check_resource("relay-authority-allowed", RELEASE, release_props("east")) == []
    unset = release_props("east")
    del unset["values"]["relay"]["authority"]  # the chart's default is the enterprise-networking authority
    assert check_resource("relay-authority-allowed", RELEASE, unset) == []
    other = release_props("east", authority="relay.example.com")
    [message] = check_resource("relay-authority-allowed", RELEASE, other)
    assert "'relay.example.com'; allowed: enterprise-networking.gloo-mesh" in message
    assert (
        check_resource("relay-authority-allowed", RELEASE, other, config={"allowedAuthorities": ["relay.example.com"]})
        == []
    )
    not_the_agent = {**other, "chart": "something-else"}
    assert check_resource("relay-authority-allowed", RELEASE, not_the_agent) == []


def test_the_default_relay_authority_is_the_generation_of_the_release() -> None:
    """Without allowedAuthorities each agent Release is held to its own generation's default (known by its chart),
    and the message says which list applied; unset, the chart's own default is the authority checked."""
    platform = {"chart": PLATFORM.chart, "namespace": "gloo-mesh", "values": {"glooAgent": {"relay": {}}}}
    assert check_resource("relay-authority-allowed", RELEASE, platform) == []
    with_1x_authority = {**platform, "values": {"glooAgent": {"relay": {"authority": GEN.default_authority}}}}
    [message] = check_resource("relay-authority-allowed", RELEASE, with_1x_authority)
    assert f"allowed: {PLATFORM.default_authority} (the {PLATFORM.label} default;" in message
    assert GEN.default_authority not in message.split("allowed:", 1)[1]
    # A configured list replaces every generation's default, also for a Release that leaves the authority unset.
    only_1x = {"allowedAuthorities": [GEN.default_authority]}
    [message] = check_resource("relay-authority-allowed", RELEASE, platform, config=only_1x)
    assert f"sets no glooAgent.relay.authority, so the {PLATFORM.chart} chart's default" in message
    assert message.endswith(f"allowed: {GEN.default_authority} (policy config allowedAuthorities).")


def test_the_example_policy_config_allows_each_generations_default_authority() -> None:
    """policy/config.example.json's allow-list replaces the defaults: it must keep every generation's, or a stack of
    the generation it leaves out fails with the example config."""
    config = json.loads(POLICY_EXAMPLE.read_text())["relay-authority-allowed"]
    assert {gen.default_authority for gen in GENERATIONS.values()} <= set(config["allowedAuthorities"])
    for gen in GENERATIONS.values():
        props = {"chart": gen.chart, "namespace": "gloo-mesh", "values": {}}
        assert check_resource("relay-authority-allowed", RELEASE, props, config=config) == [], gen.label


# -- 9. insecure mode --------------------------------------------------------------------------------------------


def test_insecure_mode_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    assert check_resource("insecure-relay-refused", RELEASE, release_props("east")) == []
    relay_flag = release_props("east", insecure=True)
    global_flag = {**release_props("east"), "values": {"relay": {"cluster": "east"}, "global": {"insecure": True}}}
    for insecure in (relay_flag, global_flag):
        [message] = check_resource("insecure-relay-refused", RELEASE, insecure)
        assert "registers without TLS" in message
    assert check_resource("insecure-relay-refused", RELEASE, relay_flag, config={"allowInsecure": True}) == []
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({STACK_ALLOW_INSECURE_KEY: "true", "proj:other": "x"}))
    assert check_resource("insecure-relay-refused", RELEASE, relay_flag) == []
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({STACK_ALLOW_INSECURE_KEY: "false"}))
    assert len(check_resource("insecure-relay-refused", RELEASE, relay_flag)) == 1


# -- 10. step order ----------------------------------------------------------------------------------------------


def _drop(resource: PolicyResource, *names: str) -> None:
    resource.dependencies = [d for d in resource.dependencies if d.name not in names]


def test_release_waits_for_both_secrets_and_the_cluster_for_the_release() -> None:
    stack = fleet("east")
    _drop(stack.named("east-agent"), "east-root-ca")
    [(where, message)] = check_stack("registration-step-order", stack.resources)
    assert where == "east-agent" and "root CA copy" in message and "'east-root-ca'" in message

    stack = fleet("east")
    _drop(stack.named("east-agent"), "east-bootstrap-token")
    [(_, message)] = check_stack("registration-step-order", stack.resources)
    assert "bootstrap token" in message
    stack.resources.remove(stack.named("east-bootstrap-token"))
    [(_, message)] = check_stack("registration-step-order", stack.resources)
    assert message == (
        "Release 'east-agent' does not wait for the bootstrap token (relay-identity-token-secret) in namespace "
        "'gloo-mesh' (candidates: none in the stack)."
    )

    stack = fleet("east")
    _drop(stack.named("east-kubernetes-cluster"), "east-agent")
    [(where, message)] = check_stack("registration-step-order", stack.resources)
    assert where == "east-kubernetes-cluster" and "does not wait for its agent Release" in message

    # Transitive waits count, and a token declared as a Secret resource counts as the token.
    stack = fleet("east")
    token = stack.named("east-bootstrap-token")
    token.resource_type, token.props = SECRET, {"metadata": {"name": GEN.token_secret, "namespace": "gloo-mesh"}}
    _drop(stack.named("east-agent"), "east-root-ca")
    stack.named("east-bootstrap-token").dependencies.append(stack.named("east-root-ca"))
    assert check_stack("registration-step-order", stack.resources) == []


def test_insecure_registrations_have_no_secrets_to_wait_for() -> None:
    stack = Stack()
    stack.registration("east", insecure=True)
    assert check_stack("registration-step-order", stack.resources) == []
    assert check_stack("agent-namespace-no-istio-injection", stack.resources) == []
