"""The Kubernetes RBAC a registration needs, as manifests: what ``rbac/`` in the repository holds, made from the
generations' facts (:mod:`gloo_mesh_registration.agent_generation`), so a renamed server, secret or CRD group changes
the roles with it.

Each rule says why it exists and which step needs it; the comments of the manifests are those reasons. The rules were
found by running the real ``pulumi`` CLI as a user outside ``system:masters`` against real kube-apiservers with audit
logging on (every request of a preview, up, no-change up, destroy and adoption, per generation), and each role is
exercised by ``tests/e2e/test_least_privilege.py``. ``docs/rbac.md`` explains the choices.

Three roles (each a ClusterRole; the bindings decide where it applies):

* **management** (:func:`management_rules`), bound in the management namespace: reads of the server Deployment and
  Service and of the two relay secrets (by name), and the KubernetesCluster objects. The Istio ingress NodePort mode
  adds :func:`relay_node_rules` (a node's InternalIP, the ``istio-ingressgateway`` Service).
* **workload** (:func:`agent_namespace_rules`, :func:`workload_cluster_rules`, :func:`namespace_rules`): the agent
  namespace's objects (the CA copy, the token, Helm's release secrets, the chart's namespaced objects), the chart's
  cluster-scoped objects, and the agent namespace itself.
* **preview** (:func:`preview_management_rules`, :func:`preview_workload_rules`): what ``pulumi preview`` alone
  needs.

What the agent chart's cluster-scoped objects demand (a ClusterRole and its binding): Kubernetes lets a user create a
ClusterRole, or a binding to one, only while holding every permission it grants, unless the user has ``escalate`` (for
the role) or ``bind`` (for the binding) on it (Kubernetes docs, "Using RBAC Authorization", "Privilege escalation
prevention and bootstrapping"). The workload role holds the chart's rules (:func:`chart_rbac`, read from the chart
rendered by ``helm template``) rather than ``escalate``/``bind``: docs/rbac.md says why.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .agent_generation import GENERATIONS, AgentGeneration, GenerationName

RBAC_API = "rbac.authorization.k8s.io/v1"
ROLE_PREFIX = "gloo-mesh-registration"
DEFAULT_GROUP = "gloo-mesh-registration"
"""The group the shipped manifests bind (put the identity that runs ``pulumi`` in it, or bind your own subject)."""
DEFAULT_PREVIEW_GROUP = "gloo-mesh-registration-preview"
ISTIO_NAMESPACE = "istio-system"
ISTIO_INGRESS_SERVICE = "istio-ingressgateway"
"""What ``relayDiscovery: istio-ingress-nodeport`` reads: discovery.py reads this Service by these names."""
RBAC_GROUP = "rbac.authorization.k8s.io"
CRD_GROUP = "apiextensions.k8s.io"

_MANAGED = ("create", "get", "patch", "delete")
"""What the kubernetes provider does to an object it manages: server-side apply (a ``patch`` that creates the object,
so ``create`` too; a preview sends it as a dry run, authorized like the real one), ``get`` to read it, ``delete``."""
_HELM = ("create", "get", "patch", "delete")
"""What Helm does to a chart's object: ``create`` on install, ``get`` and ``patch`` on upgrade (a three-way merge
patch), ``delete`` on uninstall."""


@dataclass(frozen=True)
class Rule:
    """One RBAC policy rule and why the registration needs it."""

    why: str
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()
    """``resourceNames``: empty for every name (a ``create`` cannot be restricted by name, Kubernetes docs)."""

    def manifest(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"apiGroups": list(self.api_groups), "resources": list(self.resources)}
        if self.names:
            rule["resourceNames"] = list(self.names)
        rule["verbs"] = list(self.verbs)
        return rule


@dataclass(frozen=True)
class Subject:
    """Who a binding grants a role to: a ``User``, a ``Group`` or a ``ServiceAccount`` (``namespace`` given)."""

    kind: str
    name: str
    namespace: str | None = None

    def manifest(self) -> dict[str, Any]:
        if self.kind == "ServiceAccount":
            return {"kind": self.kind, "name": self.name, "namespace": self.namespace}
        return {"kind": self.kind, "apiGroup": RBAC_GROUP, "name": self.name}


@dataclass(frozen=True)
class Grant:
    """A ClusterRole and its binding: a RoleBinding in ``namespace``, or a ClusterRoleBinding when it is None."""

    role: str
    why: str
    rules: tuple[Rule, ...]
    namespace: str | None
    subjects: tuple[Subject, ...]

    def objects(self) -> list[tuple[str, dict[str, Any]]]:
        """``(comment, object)`` for the ClusterRole and its binding."""
        role = {
            "apiVersion": RBAC_API,
            "kind": "ClusterRole",
            "metadata": {"name": self.role},
            "rules": [rule.manifest() for rule in self.rules],
        }
        metadata: dict[str, Any] = {"name": self.role}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        binding = {
            "apiVersion": RBAC_API,
            "kind": "RoleBinding" if self.namespace is not None else "ClusterRoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": self.role},
            "subjects": [subject.manifest() for subject in self.subjects],
        }
        where = f"in namespace {self.namespace} only" if self.namespace is not None else "cluster-wide"
        return [(self.why, role), (f"{self.role}, {where}.", binding)]


@dataclass(frozen=True)
class ChartRbac:
    """What the agent chart, as ``helm template`` renders it, demands beyond the registration's own needs: the names
    of its ClusterRoles and ClusterRoleBindings and the rules of its ClusterRoles (held, see the module docstring),
    the kinds of its namespaced objects, and the rules of its Roles, if any (:func:`chart_rbac`)."""

    cluster_roles: tuple[str, ...]
    cluster_role_bindings: tuple[str, ...]
    rules: tuple[dict[str, Any], ...]
    source: str
    """Where they come from, for the comment above them."""
    namespaced_kinds: tuple[tuple[str, str], ...] = ()
    """``(API group, resource)`` of each namespaced kind the chart installs."""
    namespaced_rules: tuple[Rule, ...] = ()
    """The rules of the chart's Roles (held in the agent namespace, as its ClusterRoles' are cluster-wide)."""


@dataclass(frozen=True)
class Manifest:
    """One file of ``rbac/``: a header and the grants it holds (and a namespace to create first, if any)."""

    file: str
    header: str
    grants: tuple[Grant, ...]
    namespace: str | None = None
    """The agent namespace, made first by whoever applies the file (``createNamespace: false``)."""

    def objects(self) -> list[tuple[str, dict[str, Any]]]:
        made: list[tuple[str, dict[str, Any]]] = []
        if self.namespace is not None:
            made.append(
                (
                    "The agent namespace, made by the cluster's admin (createNamespace: false): the RoleBinding below "
                    "lives in it, so it must exist first.",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
                )
            )
        for grant in self.grants:
            made += grant.objects()
        return made


RBAC_DOCS = "in the gloo-mesh-registration repository, docs/rbac.md"


def manifest_path(role: str, gen: AgentGeneration) -> str:
    """Where ``rbac/`` holds ``role`` (``management``, ``workload``, ``preview-management``, ...) of ``gen``, for a
    message's fix."""
    return f"rbac/{role}-{short_label(gen)}.yaml"


def agent_switch(gen: AgentGeneration) -> tuple[str, ...]:
    """The ``helm template`` flags that turn the agent on, where the chart has it off by default (2.x:
    ``glooAgent.enabled``, a value only the registration sets): without them the chart renders no agent RBAC."""
    switches = sorted(".".join(path) for path in gen.reserved_value_paths() if path[-1] == "enabled")
    return tuple(flag for path in switches for flag in ("--set", f"{path}=true"))


def helm_template_command(gen: AgentGeneration, namespace: str) -> str:
    """How a user renders the agent chart of ``gen`` for the workload role's chart part (docs/rbac.md)."""
    switch = " ".join(agent_switch(gen))
    return (
        f"helm template {gen.release_name} {gen.chart} --repo {gen.chart_repo} --version <agent version> "
        f"-n {namespace}{' ' + switch if switch else ''} | python -m gloo_mesh_registration.rbac workload "
        f"--generation {short_label(gen)} --namespace {namespace} --chart-manifest -"
    )


def generation(label: str) -> AgentGeneration:
    """The generation named ``1x``/``2x`` or by its full name."""
    short = {"1x": GenerationName.GLOO_MESH_ENTERPRISE_1, "2x": GenerationName.GLOO_PLATFORM_2}
    return GENERATIONS[short.get(label) or GenerationName(label)]


def short_label(gen: AgentGeneration) -> str:
    return "1x" if gen.name is GenerationName.GLOO_MESH_ENTERPRISE_1 else "2x"


def _cluster_resource(gen: AgentGeneration) -> tuple[str, str]:
    group = gen.cluster_api_version.split("/", 1)[0]
    return group, f"{gen.cluster_kind.lower()}s"


def management_rules(gen: AgentGeneration, *, telemetry: bool = True) -> tuple[Rule, ...]:
    """What a registration of ``gen`` reads and writes in the management namespace (bound there)."""
    servers = tuple(sorted({g.server_deployment for g in GENERATIONS.values()}))
    services = (gen.server_service,) + ((gen.telemetry_service,) if telemetry and gen.telemetry_service else ())
    group, clusters = _cluster_resource(gen)
    return (
        Rule(
            f"Step 1, the agent version: the image tag of the server Deployment {gen.server_deployment} (a "
            "kubernetes provider read, every preview and up). Before it, unless the stack sets agentGeneration, the "
            "generation is discovered by looking for each generation's server by name (kubectl get), so both names.",
            ("apps",),
            ("deployments",),
            ("get",),
            servers,
        ),
        Rule(
            "Step 2, the relay address (relayDiscovery: loadbalancer, the default): the LoadBalancer ingress and "
            f"grpc port of the Service {gen.server_service}"
            + (f"; with telemetry, the gateway Service {gen.telemetry_service}." if len(services) > 1 else ".")
            + " Not needed when the stack sets relayServerAddress (and telemetryGatewayAddress).",
            ("",),
            ("services",),
            ("get",),
            services,
        ),
        Rule(
            f"Steps 4 and 5: {gen.root_ca_key} of {gen.root_ca_secret} and {gen.token_key} of {gen.token_secret}, "
            "read by kubectl in every preview and up (read-relay-secrets). RBAC cannot narrow a read to keys: get "
            f"returns the whole secret, the CA's private key in {gen.root_ca_secret} included; the program prints "
            f"and keeps {gen.root_ca_key} only.",
            ("",),
            ("secrets",),
            ("get",),
            (gen.root_ca_secret, gen.token_secret),
        ),
        Rule(
            f"Step 7, the {gen.cluster_kind} ({gen.cluster_api_version}): server-side apply creates and updates it "
            "(patch and create; a preview sends the same request as a dry run), get reads it (the preview's look for "
            "one left behind, adoption's import, refresh), delete removes it on destroy, and list finds when it is "
            "gone (without list, pulumi destroy keeps waiting: stopped after 15 minutes in a test; the watch the "
            "provider also tries is refused and it carries on). Not restricted by name: its names are your cluster "
            "names, and Kubernetes cannot restrict a create by name.",
            (group,),
            (clusters,),
            (*_MANAGED, "list"),
        ),
    )


def relay_node_rules() -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """``relayDiscovery: istio-ingress-nodeport``: the relay node (cluster-wide) and the Istio ingress Service (bound in
    istio-system)."""
    node = Rule(
        "Step 2 with relayDiscovery: istio-ingress-nodeport: the InternalIP of relayNodeName (a kubernetes provider "
        "read). Nodes are cluster-scoped; restrict resourceNames to your relayNodeName if it is fixed.",
        ("",),
        ("nodes",),
        ("get",),
    )
    ingress = Rule(
        "Step 2 with relayDiscovery: istio-ingress-nodeport: the nodePort of the https port of "
        f"{ISTIO_INGRESS_SERVICE}.",
        ("",),
        ("services",),
        ("get",),
        (ISTIO_INGRESS_SERVICE,),
    )
    return (node,), (ingress,)


# -- the workload cluster ------------------------------------------------------------------------------------------

_CHART_KINDS = (("", "configmaps"), ("", "serviceaccounts"), ("", "services"), ("apps", "deployments"))
"""The namespaced kinds the agent charts install (the agent's ConfigMaps, ServiceAccount, Service and Deployment, the
generation's ``agent_deployment``), beside any other kind a rendered chart holds (:class:`ChartRbac`)."""


def agent_namespace_rules(gen: AgentGeneration, chart: ChartRbac) -> tuple[Rule, ...]:
    """What a registration does in the agent namespace (bound there with a RoleBinding, or cluster-wide when the
    program creates the namespace: a RoleBinding cannot exist before its namespace)."""
    kinds = sorted(set(_CHART_KINDS) | set(chart.namespaced_kinds))
    by_group = {group: tuple(r for g, r in kinds if g == group) for group, _ in kinds}
    chart_objects = tuple(
        Rule(
            f"Step 6, the {gen.chart} chart's namespaced objects ({', '.join(r for _, r in kinds)}): Helm creates "
            "them on install, reads and patches them on upgrade (adoption upgrades the release in place), deletes "
            "them on uninstall."
            if index == 0
            else f"(the chart's objects, continued: API group {group or 'core'})",
            (group,),
            resources,
            _HELM,
        )
        for index, (group, resources) in enumerate(by_group.items())
    )
    return (
        Rule(
            f"Step 4, the CA copy {gen.root_ca_secret} (server-side apply; a preview dry-runs it); steps 5, 8 and 9, "
            f"the bootstrap token {gen.token_secret} (kubectl apply, get, delete) and the agent's "
            f"{gen.client_cert_secret} (get, watched for, deleted when stale and on destroy); Helm's release storage "
            "(sh.helm.release.v1.<release>.v<revision>: listed by label, created, updated, deleted), which the "
            "preview's look for a release left behind lists too. list returns every secret of the namespace with "
            "its data, so resourceNames would protect nothing here: not restricted.",
            ("",),
            ("secrets",),
            ("create", "get", "list", "watch", "update", "patch", "delete"),
        ),
        *chart_objects,
        Rule(
            f"Step 6: Helm waits for the release (helm.v3.Release unless skipAwait): the Deployment "
            f"{gen.agent_deployment} is ready when its newest ReplicaSet is, which Helm finds by listing them. (The "
            "lab's stand-in chart has no Deployment, so no test exercises this rule.)",
            ("apps",),
            ("replicasets",),
            ("list",),
        ),
        *chart.namespaced_rules,
    )


def workload_cluster_rules(gen: AgentGeneration, chart: ChartRbac) -> tuple[Rule, ...]:
    """The chart's cluster-scoped objects: its ClusterRoles and ClusterRoleBindings, the permissions they grant (held,
    see the module docstring), and (2.x) the CRDs of the CRDs chart."""
    names = tuple(dict.fromkeys((*chart.cluster_roles, *chart.cluster_role_bindings)))
    rules: list[Rule] = [
        Rule(
            f"Step 6, the {gen.chart} chart's ClusterRole and ClusterRoleBinding ({', '.join(names)}): Helm "
            "creates, reads, patches and deletes them. A create cannot be restricted by name; the others are. "
            "Kubernetes lets this identity create that ClusterRole, and a binding to it, only while it holds every "
            "permission the role grants (no escalate or bind here: docs/rbac.md), hence the rules below.",
            (RBAC_GROUP,),
            ("clusterroles", "clusterrolebindings"),
            ("create",),
        ),
        Rule(
            "(the same objects, by name)",
            (RBAC_GROUP,),
            ("clusterroles", "clusterrolebindings"),
            ("get", "patch", "delete"),
            names,
        ),
    ]
    rules += [
        Rule(
            f"From here on, the rules of the chart's ClusterRole {', '.join(chart.cluster_roles)} as the chart has "
            f"them ({chart.source}): held, so that this identity may create that role and bind it."
            if index == 0
            else "(the chart's ClusterRole, continued)",
            tuple(rule.get("apiGroups", ())),
            tuple(rule.get("resources", ())),
            tuple(rule.get("verbs", ())),
            tuple(rule.get("resourceNames", ())),
        )
        for index, rule in enumerate(chart.rules)
    ]
    if gen.crds_chart is not None:
        rules.append(
            Rule(
                f"Step 6, the {gen.crds_chart} release: Helm creates its CRDs and patches them on upgrade (the "
                "release is retained on destroy: never deleted); the preview lists CRDs to find those a release in "
                "another namespace owns. Names are not restricted: they change with the chart's version.",
                (CRD_GROUP,),
                ("customresourcedefinitions",),
                ("create", "get", "list", "patch"),
            )
        )
    else:
        rules.append(
            Rule(
                f"Step 6: the {gen.chart} chart carries its CRDs in its crds/ folder, which Helm creates on the first "
                "install (one that exists is left as it is) and never updates or deletes. (The lab's stand-in chart "
                "has none, so no test exercises this rule.)",
                (CRD_GROUP,),
                ("customresourcedefinitions",),
                ("create",),
            )
        )
    return tuple(rules)


def namespace_rules(namespace: str, *, creates_namespace: bool) -> tuple[Rule, ...]:
    """The agent namespace itself (cluster-scoped): labelled only, or created and deleted too."""
    if not creates_namespace:
        return (
            Rule(
                f"Step 3 with createNamespace: false: the namespace {namespace} gets the label istio-injection: "
                "disabled (server-side apply, get); the preview checks that it exists.",
                ("",),
                ("namespaces",),
                ("get", "patch"),
                (namespace,),
            ),
        )
    return (
        Rule(
            "Step 3, the agent namespace: server-side apply creates it (a create cannot be restricted by name).",
            ("",),
            ("namespaces",),
            ("create",),
        ),
        Rule(
            f"Step 3: {namespace} is labelled, read (the preview's look for one left behind, adoption's import; "
            "pulumi destroy reads it until it is gone) and deleted by pulumi destroy. (The list and watch of "
            "namespaces the provider also tries then are refused, and it carries on.)",
            ("",),
            ("namespaces",),
            ("get", "patch", "delete"),
            (namespace,),
        ),
    )


# -- pulumi preview alone ------------------------------------------------------------------------------------------


def preview_management_rules(gen: AgentGeneration, *, telemetry: bool = True) -> tuple[Rule, ...]:
    """What ``pulumi preview`` reads on the management cluster: the management role without its writes. A preview's
    dry-run of the KubernetesCluster is refused then, which the kubernetes provider only logs."""
    reads = management_rules(gen, telemetry=telemetry)[:3]
    group, clusters = _cluster_resource(gen)
    return (
        *reads,
        Rule(
            f"The preview's look for a {gen.cluster_kind} of the cluster's name left behind, or another stack's.",
            (group,),
            (clusters,),
            ("get",),
        ),
    )


def preview_workload_rules(gen: AgentGeneration, namespace: str) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """What ``pulumi preview`` reads on the workload cluster: (cluster-wide, in the agent namespace)."""
    cluster = [
        Rule(
            f"The preview's look for the namespace {namespace} (left behind, or expected with createNamespace: false).",
            ("",),
            ("namespaces",),
            ("get",),
            (namespace,),
        )
    ]
    if gen.crds_chart is not None:
        cluster.append(
            Rule(
                f"The preview's look for CRDs of {gen.crds_chart} that a release in another namespace owns.",
                (CRD_GROUP,),
                ("customresourcedefinitions",),
                ("list",),
            )
        )
    in_namespace = (
        Rule(
            f"The preview's look for a CA copy {gen.root_ca_secret} left behind or another stack's (get), and for "
            "Helm releases left behind (Helm's release secrets, listed by label: list returns their data too). "
            "Only once the namespace exists: the look skips a namespace that does not.",
            ("",),
            ("secrets",),
            ("get", "list"),
        ),
    )
    return tuple(cluster), in_namespace


# -- a rendered chart ------------------------------------------------------------------------------------------------


def _resource(kind: str) -> str:
    """The resource (plural) of ``kind``, as Kubernetes names its built-in kinds."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x")):
        return lower + "es"
    return lower + "s"


def chart_rbac(documents: Iterable[Mapping[str, Any] | None], source: str) -> ChartRbac:
    """What a chart rendered by ``helm template`` (its documents, parsed) demands: see :class:`ChartRbac`. A
    cluster-scoped kind other than ClusterRole, ClusterRoleBinding and CustomResourceDefinition is refused (a rule for
    it is not known here)."""
    roles: list[str] = []
    bindings: list[str] = []
    rules: list[dict[str, Any]] = []
    kinds: set[tuple[str, str]] = set()
    role_rules: list[Rule] = []
    for doc in documents:
        if not doc:
            continue
        kind, name = str(doc.get("kind", "")), str((doc.get("metadata") or {}).get("name", ""))
        group = str(doc.get("apiVersion", "v1")).rpartition("/")[0]
        if kind == "ClusterRole":
            roles.append(name)
            rules += list(doc.get("rules") or [])
        elif kind == "ClusterRoleBinding":
            bindings.append(name)
        elif kind == "CustomResourceDefinition":
            continue  # the CRDs rule covers them
        elif kind in ("Namespace", "PersistentVolume", "StorageClass", "PriorityClass") or kind.endswith(
            ("WebhookConfiguration", "APIService")
        ):
            raise ValueError(f"the chart holds a cluster-scoped {kind} {name!r}: add a rule for it by hand")
        else:
            kinds.add((group, _resource(kind)))
            role_rules += [
                Rule(
                    f"Held because the chart's Role {name} grants it ({source}), so that this identity may create it.",
                    tuple(rule.get("apiGroups", ())),
                    tuple(rule.get("resources", ())),
                    tuple(rule.get("verbs", ())),
                    tuple(rule.get("resourceNames", ())),
                )
                for rule in (doc.get("rules") or [] if kind == "Role" else [])
            ]
    return ChartRbac(tuple(roles), tuple(bindings), tuple(rules), source, tuple(sorted(kinds)), tuple(role_rules))


# -- the files ----------------------------------------------------------------------------------------------------


def management_manifest(gen: AgentGeneration, namespace: str, subjects: Sequence[Subject]) -> Manifest:
    label = short_label(gen)
    grant = Grant(
        f"{ROLE_PREFIX}-management-{label}",
        f"What a registration with a {gen.label} management plane ({gen.server_deployment}) reads and writes in "
        "the management namespace.",
        management_rules(gen),
        namespace,
        tuple(subjects),
    )
    header = (
        f"The management role, {gen.label}: apply on the management cluster. It is bound in namespace {namespace}, "
        "the management namespace (the stack's management.namespace); change it there if yours differs. With "
        "relayDiscovery: istio-ingress-nodeport, apply management-istio-ingress-nodeport.yaml too."
    )
    return Manifest(f"management-{label}.yaml", header, (grant,))


def relay_node_manifest(subjects: Sequence[Subject]) -> Manifest:
    node, ingress = relay_node_rules()
    grants = (
        Grant(
            f"{ROLE_PREFIX}-relay-node",
            "The relay node's address (relayDiscovery: istio-ingress-nodeport).",
            node,
            None,
            tuple(subjects),
        ),
        Grant(
            f"{ROLE_PREFIX}-istio-ingress",
            "The Istio ingress gateway's node port (relayDiscovery: istio-ingress-nodeport).",
            ingress,
            ISTIO_NAMESPACE,
            tuple(subjects),
        ),
    )
    header = (
        "Only with relayDiscovery: istio-ingress-nodeport (the kind guide's setup): apply on the management cluster "
        "beside the management role. Not needed with the default loadbalancer discovery or a relayServerAddress."
    )
    return Manifest("management-istio-ingress-nodeport.yaml", header, grants)


def workload_manifest(
    gen: AgentGeneration, namespace: str, chart: ChartRbac, subjects: Sequence[Subject], *, creates_namespace: bool
) -> Manifest:
    label = short_label(gen)
    scope = None if creates_namespace else namespace
    grants = (
        Grant(
            f"{ROLE_PREFIX}-workload-{label}-agent-namespace",
            f"What a {gen.label} registration does in its agent namespace: the agent's identity, Helm's release "
            "storage, the chart's namespaced objects.",
            agent_namespace_rules(gen, chart),
            scope,
            tuple(subjects),
        ),
        Grant(
            f"{ROLE_PREFIX}-workload-{label}-cluster-{namespace}",
            f"The {gen.chart} chart's cluster-scoped objects, for a release in namespace {namespace} (their names "
            "carry it), and the permissions its ClusterRole grants.",
            workload_cluster_rules(gen, chart),
            None,
            tuple(subjects),
        ),
        Grant(
            f"{ROLE_PREFIX}-{'creates-' if creates_namespace else ''}namespace-{namespace}",
            f"The agent namespace {namespace} itself.",
            namespace_rules(namespace, creates_namespace=creates_namespace),
            None,
            tuple(subjects),
        ),
    )
    return Manifest(
        f"workload-{label}{'-creates-namespace' if creates_namespace else ''}.yaml",
        _workload_header(gen, namespace, chart, creates_namespace=creates_namespace),
        grants,
        namespace=None if creates_namespace else namespace,
    )


def _workload_header(gen: AgentGeneration, namespace: str, chart: ChartRbac, *, creates_namespace: bool) -> str:
    if creates_namespace:
        variant = (
            "For createNamespace: true (the default): the program creates and deletes the agent namespace, so no "
            "RoleBinding can wait in it, and the agent-namespace role is bound cluster-wide: it then reaches the "
            "secrets of every namespace. Prefer workload-" + short_label(gen) + ".yaml and createNamespace: false."
        )
    else:
        variant = (
            f"For createNamespace: false (least privilege): the cluster's admin creates the agent namespace "
            f"{namespace} (below) and the program only labels it; the agent-namespace role is bound in it alone."
        )
    return (
        f"The workload role, {gen.label}: apply on each registered cluster. {variant} The chart's part (its "
        f"ClusterRole's rules and names) comes from {chart.source}; for your chart version render it from the chart "
        f"itself: {helm_template_command(gen, namespace)} (docs/rbac.md)."
    )


def preview_manifests(
    gen: AgentGeneration, mgmt_namespace: str, namespace: str, subjects: Sequence[Subject]
) -> tuple[Manifest, Manifest]:
    label = short_label(gen)
    management = Manifest(
        f"preview-management-{label}.yaml",
        f"The preview role, {gen.label}, management cluster: what pulumi preview alone needs (for PR previews). "
        f"Bound in {mgmt_namespace}. It still reads the relay secrets whole: the preview checks them and shows the "
        "CA copy's change (docs/rbac.md).",
        (
            Grant(
                f"{ROLE_PREFIX}-preview-management-{label}",
                "What pulumi preview reads on the management cluster (no writes).",
                preview_management_rules(gen),
                mgmt_namespace,
                tuple(subjects),
            ),
        ),
    )
    cluster, in_namespace = preview_workload_rules(gen, namespace)
    workload = Manifest(
        f"preview-workload-{label}.yaml",
        f"The preview role, {gen.label}, workload cluster: what pulumi preview alone needs (for PR previews). The "
        f"RoleBinding needs the agent namespace {namespace} to exist; before it does, the preview does not look in it.",
        (
            Grant(
                f"{ROLE_PREFIX}-preview-workload-{label}-{namespace}",
                "What pulumi preview reads cluster-wide on a workload cluster.",
                cluster,
                None,
                tuple(subjects),
            ),
            Grant(
                f"{ROLE_PREFIX}-preview-workload-agent-namespace",
                "What pulumi preview reads in the agent namespace.",
                in_namespace,
                namespace,
                tuple(subjects),
            ),
        ),
    )
    return management, workload


def default_manifests(chart_for: Callable[[AgentGeneration, str], ChartRbac]) -> list[Manifest]:
    """The files of ``rbac/``: namespace ``gloo-mesh`` on both clusters (both generations' default), the groups
    :data:`DEFAULT_GROUP` and :data:`DEFAULT_PREVIEW_GROUP`, and each generation's chart as ``chart_for`` describes
    it for a release in that namespace."""
    subjects = (Subject("Group", DEFAULT_GROUP),)
    preview = (Subject("Group", DEFAULT_PREVIEW_GROUP),)
    made = [relay_node_manifest(subjects)]
    for gen in GENERATIONS.values():
        namespace = gen.default_namespace
        chart = chart_for(gen, namespace)
        made += [
            management_manifest(gen, namespace, subjects),
            workload_manifest(gen, namespace, chart, subjects, creates_namespace=False),
            workload_manifest(gen, namespace, chart, subjects, creates_namespace=True),
            *preview_manifests(gen, namespace, namespace, preview),
        ]
    return sorted(made, key=lambda manifest: manifest.file)


# -- YAML with the reasons as comments --------------------------------------------------------------------------------


def _comment(text: str, indent: str = "") -> str:
    """``text`` as YAML comment lines of at most 120 characters."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(indent) + 2 + len(line) + 1 + len(word) > 120:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "".join(f"{indent}# {text_line}\n" for text_line in lines)


_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/:-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _value(value: Any) -> str:
    """A string or a list of strings as YAML flow: plain where YAML reads it back as that string, else quoted (JSON
    is YAML)."""
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)


def _item(mapping: Mapping[str, Any]) -> str:
    """A list item of flat ``mapping`` (block style, one key a line)."""
    (key, value), *rest = mapping.items()
    return f"  - {key}: {_value(value)}\n" + "".join(f"    {k}: {_value(v)}\n" for k, v in rest)


def _object(comment: str, obj: Mapping[str, Any], rule_reasons: Sequence[str]) -> str:
    text = "---\n" + _comment(comment)
    for key, value in obj.items():
        if key == "rules":
            text += "rules:\n" + "".join(
                _comment(reason, "  ") + _item(rule) for reason, rule in zip(rule_reasons, value, strict=True)
            )
        elif key == "subjects":
            text += "subjects:\n" + "".join(_item(subject) for subject in value)
        elif isinstance(value, Mapping):
            text += f"{key}:\n" + "".join(f"  {k}: {_value(v)}\n" for k, v in value.items())
        else:
            text += f"{key}: {_value(value)}\n"
    return text


def render(manifest: Manifest) -> str:
    """``manifest`` as YAML whose comments say why each object and rule exists."""
    reasons = {grant.role: [rule.why for rule in grant.rules] for grant in manifest.grants}
    text = _comment(manifest.header)
    text += _comment(
        "Made by gloo_mesh_registration.rbac from the generations' facts (scripts/rbac_manifests.py writes this "
        "folder; tests/test_rbac.py checks it is current)."
    )
    for comment, obj in manifest.objects():
        rules = reasons.get(obj["metadata"]["name"], []) if obj["kind"] == "ClusterRole" else []
        text += _object(comment, obj, rules)
    return text


# -- the command line ---------------------------------------------------------------------------------------------


def _subjects(options: argparse.Namespace, default_group: str) -> tuple[Subject, ...]:
    subjects = [Subject("User", name) for name in options.user] + [Subject("Group", name) for name in options.group]
    for account in options.service_account:
        namespace, _, name = account.partition("/")
        if not name:
            raise SystemExit(f"--service-account {account!r}: give it as <namespace>/<name>")
        subjects.append(Subject("ServiceAccount", name, namespace))
    return tuple(subjects) or (Subject("Group", default_group),)


def _read_chart(path: str) -> ChartRbac:
    import yaml  # pulumi's own dependency; only the command line parses YAML

    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    where = "the chart rendered by helm template" + ("" if path == "-" else f" ({path})")
    return chart_rbac(yaml.safe_load_all(text), where)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gloo_mesh_registration.rbac ROLE ...``: one role's manifests on stdout, for your namespaces,
    subjects and chart (``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m gloo_mesh_registration.rbac", description=main.__doc__, allow_abbrev=False
    )
    parser.add_argument(
        "role",
        choices=("management", "workload", "preview-management", "preview-workload", "istio-ingress-nodeport"),
    )
    parser.add_argument("--generation", default="1x", help="1x, 2x or a full agentGeneration name (default 1x)")
    parser.add_argument("--namespace", help="the management namespace (management roles) or the agent namespace")
    parser.add_argument("--creates-namespace", action="store_true", help="workload: createNamespace is true")
    parser.add_argument("--chart-manifest", help="workload: the agent chart rendered by helm template (- for stdin)")
    parser.add_argument("--user", action="append", default=[], help="bind this user (repeatable)")
    parser.add_argument("--group", action="append", default=[], help="bind this group (repeatable)")
    parser.add_argument("--service-account", action="append", default=[], help="bind <namespace>/<name>")
    options = parser.parse_args(argv)
    gen = generation(options.generation)
    namespace = options.namespace or gen.default_namespace
    preview = options.role.startswith("preview")
    subjects = _subjects(options, DEFAULT_PREVIEW_GROUP if preview else DEFAULT_GROUP)
    if options.role == "management":
        manifest = management_manifest(gen, namespace, subjects)
    elif options.role == "istio-ingress-nodeport":
        manifest = relay_node_manifest(subjects)
    elif options.role == "workload":
        if options.chart_manifest is None:
            parser.error("workload needs --chart-manifest: the agent chart rendered by helm template (docs/rbac.md)")
        chart = _read_chart(options.chart_manifest)
        manifest = workload_manifest(gen, namespace, chart, subjects, creates_namespace=options.creates_namespace)
    else:
        management, workload = preview_manifests(gen, namespace, namespace, subjects)
        manifest = management if options.role == "preview-management" else workload
    sys.stdout.write(render(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
