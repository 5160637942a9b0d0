"""``rbac/``: the manifests parse, are valid Kubernetes objects, are what ``gloo_mesh_registration.rbac`` makes from the
generations' facts (so a server, secret or CRD renamed in ``agent_generation.py`` fails here until ``rbac/`` is made
again), name nothing but those facts, and grant no escalation. ``tests/e2e/test_least_privilege.py`` shows they are
enough, with the real CLI against real API servers."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from test_rendered_objects import KUBERNETES_VERSION

from gloo_mesh_registration import rbac
from gloo_mesh_registration.agent_generation import GENERATIONS, AgentGeneration, GenerationName
from lab.gloo import agent_cluster_role_name, agent_rbac_template, stand_in_chart_rbac
from scripts.rbac_manifests import FOLDER, files, stale

ESCALATING_VERBS = {"escalate", "bind", "impersonate", "*"}


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((FOLDER / name).read_text()) if doc]


def every_document() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(FOLDER.glob("*.yaml")):
        for doc in documents(path.name):
            yield path.name, doc


def rules_of(name: str, role: str) -> list[dict[str, Any]]:
    (found,) = [doc for doc in documents(name) if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == role]
    return list(found["rules"])


def names_for(rules: list[dict[str, Any]], resource: str) -> set[str]:
    return {name for rule in rules if resource in rule["resources"] for name in rule.get("resourceNames", [])}


def test_the_folder_is_what_the_component_makes() -> None:
    assert stale() == [], "run python scripts/rbac_manifests.py"
    assert sorted(path.name for path in FOLDER.glob("*.yaml")) == sorted(files())


def test_every_object_is_a_valid_kubernetes_object() -> None:
    kinds = set()
    for name, doc in every_document():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        kinds.add(doc["kind"])
        assert doc["kind"] != "ClusterRole" or doc["rules"], f"{name}: {doc['metadata']['name']} grants nothing"
    assert kinds == {"ClusterRole", "ClusterRoleBinding", "RoleBinding", "Namespace"}


def test_validation_can_fail() -> None:
    _, role = next(every_document())
    broken = {**role, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": "get"}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_binding_names_a_role_of_its_file_and_the_default_groups() -> None:
    for name in files():
        docs = documents(name)
        roles = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "ClusterRole"}
        for binding in (doc for doc in docs if doc["kind"].endswith("Binding")):
            assert binding["roleRef"]["name"] in roles, (name, binding["metadata"]["name"])
            group = rbac.DEFAULT_PREVIEW_GROUP if name.startswith("preview") else rbac.DEFAULT_GROUP
            assert binding["subjects"] == [{"kind": "Group", "apiGroup": rbac.RBAC_GROUP, "name": group}]


def test_no_role_grants_a_way_around_rbac() -> None:
    """No escalate, bind or impersonate and no wildcard (docs/rbac.md: the workload role holds the chart's rules)."""
    for name, doc in every_document():
        for rule in doc.get("rules", []):
            assert not ESCALATING_VERBS & set(rule["verbs"]), (name, rule)
            assert "*" not in rule["resources"] and "*" not in rule["apiGroups"], (name, rule)


def test_the_preview_roles_only_read() -> None:
    for name in (n for n in files() if n.startswith("preview")):
        for doc in documents(name):
            for rule in doc.get("rules", []):
                assert set(rule["verbs"]) <= {"get", "list"}, (name, rule)


@pytest.mark.parametrize("gen", list(GENERATIONS.values()), ids=lambda gen: gen.name)
def test_the_management_role_names_the_generations_objects(gen: AgentGeneration) -> None:
    label = rbac.short_label(gen)
    rules = rules_of(f"management-{label}.yaml", f"gloo-mesh-registration-management-{label}")
    # Generation discovery looks for every generation's server.
    assert names_for(rules, "deployments") == {g.server_deployment for g in GENERATIONS.values()}
    assert names_for(rules, "services") == {gen.server_service} | ({gen.telemetry_service} - {None})
    assert names_for(rules, "secrets") == {gen.root_ca_secret, gen.token_secret}
    group, _, _ = gen.cluster_api_version.partition("/")
    (clusters,) = [rule for rule in rules if rule["resources"] == [gen.cluster_resource.split(".", 1)[0]]]
    assert clusters["apiGroups"] == [group] and "resourceNames" not in clusters
    assert {"create", "patch", "get", "delete", "list"} <= set(clusters["verbs"])


@pytest.mark.parametrize("gen", list(GENERATIONS.values()), ids=lambda gen: gen.name)
def test_the_workload_role_names_the_charts_objects_and_the_agent_namespace(gen: AgentGeneration) -> None:
    label, namespace = rbac.short_label(gen), gen.default_namespace
    cluster = rules_of(f"workload-{label}.yaml", f"gloo-mesh-registration-workload-{label}-cluster-{namespace}")
    chart_role = agent_cluster_role_name(gen.agent_deployment, namespace)
    assert names_for(cluster, "clusterroles") == {chart_role}
    crds = [rule for rule in cluster if rule["resources"] == ["customresourcedefinitions"]]
    assert [set(rule["verbs"]) for rule in crds] == (
        [{"create"}] if gen.crds_chart is None else [{"create", "get", "list", "patch"}]
    )
    namespace_rules = rules_of(f"workload-{label}.yaml", f"gloo-mesh-registration-namespace-{namespace}")
    assert names_for(namespace_rules, "namespaces") == {namespace}
    (made,) = [doc for doc in documents(f"workload-{label}.yaml") if doc["kind"] == "Namespace"]
    assert made["metadata"]["name"] == namespace


def test_every_name_in_the_folder_is_a_fact_of_the_generations() -> None:
    facts = {rbac.ISTIO_INGRESS_SERVICE}
    for gen in GENERATIONS.values():
        facts |= {
            gen.server_deployment,
            gen.server_service,
            gen.root_ca_secret,
            gen.token_secret,
            gen.default_namespace,
        }
        facts |= {gen.telemetry_service} if gen.telemetry_service else set()
        facts.add(agent_cluster_role_name(gen.agent_deployment, gen.default_namespace))
    named = {
        name for _, doc in every_document() for rule in doc.get("rules", []) for name in rule.get("resourceNames", [])
    }
    assert named <= facts, named - facts


def test_a_renamed_secret_makes_the_folder_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = GENERATIONS[GenerationName.GLOO_MESH_ENTERPRISE_1]
    monkeypatch.setitem(GENERATIONS, gen.name, dataclasses.replace(gen, root_ca_secret="relay-root-ca"))
    assert "management-1x.yaml" in stale()


def test_a_rendered_chart_is_read_as_the_stand_in_describes_it() -> None:
    """What a user feeds the command line: the chart as helm template renders it (here the stand-in's template with
    the release namespace filled in, plus a namespaced object of a kind the role does not name by default)."""
    gen = GENERATIONS[GenerationName.GLOO_PLATFORM_2]
    rendered = agent_rbac_template(gen.agent_deployment).replace("{{ .Release.Namespace }}", "agents")
    rendered += "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: agent\n"
    chart = rbac.chart_rbac(yaml.safe_load_all(rendered), "a test")
    expected = stand_in_chart_rbac(gen, "agents")
    assert (chart.cluster_roles, chart.cluster_role_bindings, chart.rules) == (
        expected.cluster_roles,
        expected.cluster_role_bindings,
        expected.rules,
    )
    assert chart.namespaced_kinds == (("policy", "poddisruptionbudgets"),)
    with pytest.raises(ValueError, match="cluster-scoped MutatingWebhookConfiguration 'hook'"):
        rbac.chart_rbac([{"kind": "MutatingWebhookConfiguration", "metadata": {"name": "hook"}}], "a test")


def test_the_command_line_makes_a_role_for_your_namespace_and_subject(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        rbac.main(["management", "--generation", "2x", "--namespace", "gloo-ops", "--user", "ci-bot"])
    docs = [doc for doc in yaml.safe_load_all(out.getvalue()) if doc]
    (binding,) = [doc for doc in docs if doc["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == "gloo-ops"
    assert binding["subjects"] == [{"kind": "User", "apiGroup": rbac.RBAC_GROUP, "name": "ci-bot"}]
    chart = tmp_path / "chart.yaml"
    chart.write_text(agent_rbac_template("enterprise-agent").replace("{{ .Release.Namespace }}", "agents"))
    out = io.StringIO()
    with redirect_stdout(out):
        rbac.main(["workload", "--namespace", "agents", "--chart-manifest", str(chart), "--service-account", "ci/bot"])
    docs = [doc for doc in yaml.safe_load_all(out.getvalue()) if doc]
    assert {doc["metadata"]["name"] for doc in docs if doc["kind"] == "ClusterRole"} >= {
        "gloo-mesh-registration-workload-1x-cluster-agents"
    }
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agents"}}
    with pytest.raises(SystemExit), redirect_stdout(io.StringIO()):
        rbac.main(["workload"])


def test_the_chart_is_rendered_with_its_agent_on() -> None:
    """The gloo-platform chart's agent is off by default (and with it its RBAC): the command the workload role's header
    gives, and the lab, turn it on, by the value only the registration sets."""
    assert rbac.agent_switch(GENERATIONS[GenerationName.GLOO_PLATFORM_2]) == ("--set", "glooAgent.enabled=true")
    assert rbac.agent_switch(GENERATIONS[GenerationName.GLOO_MESH_ENTERPRISE_1]) == ()
    assert "--set glooAgent.enabled=true | python -m" in (FOLDER / "workload-2x.yaml").read_text().replace("\n# ", " ")
