"""``__main__.py`` run on the mock runtime with each file in ``stacks/``, and stack config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from gloo_mesh_registration import RegistrationConfigError
from gloo_mesh_registration.agent_generation import GENERATIONS, GenerationName
from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE
from gloo_mesh_registration.stack_config import read_stack_config
from lab.engine_double import (
    COMPONENT,
    DEPLOYMENT,
    KEEPS_TOKEN,
    KUBECONFIG_CONTENTS,
    KUBERNETES_PROVIDER,
    RELEASE,
    ROOT,
    STACK_FILES,
    FakeClusters,
    RecordingMonitor,
    plain,
    run_main,
    run_program,
    stack_run,
)

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]


def test_there_is_a_dev_stack_and_a_fleet_example() -> None:
    names = [f.name for f in STACK_FILES]
    assert "Pulumi.dev.yaml" in names and len(names) >= 2


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=[f.name for f in STACK_FILES])
def test_every_stack_registers_each_of_its_clusters(stack_file: Path) -> None:
    config = yaml.safe_load(stack_file.read_text())["config"]
    clusters = config[f"{PROJECT}:clusters"]
    recorded = stack_run(stack_file)
    gen = GENERATIONS[GenerationName(config[f"{PROJECT}:management"].get("agentGeneration", "gloo-mesh-enterprise-1"))]
    components = recorded.registered(COMPONENT)
    assert sorted(c.name for c in components) == sorted(c["name"] for c in clusters)
    kc_names = sorted(plain(r.inputs)["metadata"]["name"] for r in recorded.registered(gen.cluster_type))
    assert kc_names == sorted(c["name"] for c in clusters)
    releases = [plain(r.inputs) for r in recorded.registered(RELEASE)]
    agents = [r for r in releases if r["chart"] == gen.chart]
    assert {_at(r["values"], gen.cluster_value_path) for r in agents} == {c["name"] for c in clusters}
    assert len(releases) == len(clusters) * (2 if gen.crds_chart else 1)
    # One shared management provider; one remote provider per cluster; no kubernetes resource without one.
    providers = {r.urn: r for r in recorded.registered(KUBERNETES_PROVIDER)}
    assert sorted(p.name for p in providers.values()) == sorted(
        ["management"] + [f"{c['name']}-remote" for c in clusters]
    )
    for r in recorded.records:
        if r.type.startswith("kubernetes:"):
            assert r.provider_urn in providers, f"{r.name} has no explicit provider"


def _at(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def test_platform_example_is_a_gloo_platform_2_fleet_with_telemetry() -> None:
    recorded = stack_run(ROOT / "stacks" / "Pulumi.platform-example.yaml")
    agents = {
        plain(r.inputs)["values"]["common"]["cluster"]: plain(r.inputs)
        for r in recorded.registered(RELEASE)
        if plain(r.inputs)["chart"] == "gloo-platform"
    }
    assert sorted(agents) == ["workload-1", "workload-2"]
    for agent in agents.values():
        assert agent["version"] == "2.5.8"
        assert agent["values"]["glooAgent"]["relay"]["serverAddress"] == "203.0.113.20:9900"
        assert agent["values"]["telemetryCollector"]["config"]["exporters"]["otlp"]["endpoint"] == "203.0.113.21:4317"
    removes = {
        plain(i.args)["environment"]["GM_KUBE_CONTEXT"]: KEEPS_TOKEN not in plain(i.args)["interpreter"][2]
        for i in recorded.invoked(ENSURE_CERTIFICATE)
    }
    assert removes == {"workload-1": False, "workload-2": True}  # only workload-2 removes it once registered


def test_dev_stack_is_the_guides_kind_setup() -> None:
    recorded = stack_run(ROOT / "stacks" / "Pulumi.dev.yaml")
    providers = {plain(p.inputs).get("context") for p in recorded.registered(KUBERNETES_PROVIDER)}
    assert providers == {"kind-mgmt-cluster", "kind-remote-cluster"}
    release = plain(recorded.one(RELEASE).inputs)
    assert release["values"]["relay"]["serverAddress"] == "172.18.0.2:32443"
    assert release["values"]["relay"]["cluster"] == "remote-cluster"


def test_fleet_example_cluster_overrides() -> None:
    recorded = stack_run(ROOT / "stacks" / "Pulumi.fleet-example.yaml")
    releases = {plain(r.inputs)["values"]["relay"]["cluster"]: plain(r.inputs) for r in recorded.registered(RELEASE)}
    assert releases["us-east-1-a"]["values"]["relay"]["serverAddress"] == "relay.us-east-1.example.internal:9900"
    assert releases["eu-west-1-a"]["values"]["relay"]["serverAddress"] == "203.0.113.10:9900"
    assert releases["eu-west-1-b"]["values"]["enterpriseAgent"]["resources"]["requests"]["cpu"] == "100m"
    waits = {
        plain(i.args)["environment"]["GM_KUBE_CONTEXT"]: plain(i.args)["interpreter"][2]
        for i in recorded.invoked(ENSURE_CERTIFICATE)
    }
    assert "GM_TIMEOUT=600" in waits["us-east-1-a"] and "GM_TIMEOUT=300" in waits["eu-west-1-a"]


def _agent_versions(recorded: RecordingMonitor, chart: str, cluster_path: tuple[str, ...]) -> dict[str, str]:
    """The chart version of each ``chart`` Release, by the cluster its values name."""
    releases = [plain(r.inputs) for r in recorded.registered(RELEASE)]
    return {_at(r["values"], cluster_path): r["version"] for r in releases if r["chart"] == chart}


def _fleet_with(pins: dict[str, str], **management: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fleet example's clusters, each named in ``pins`` with its own ``agentVersion``; the management keys given
    replace the example's."""
    stack_file = ROOT / "stacks" / "Pulumi.fleet-example.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    clusters = [
        {**entry, "agentVersion": pins[entry["name"]]} if entry["name"] in pins else entry
        for entry in config[f"{PROJECT}:clusters"]
    ]
    return {**config[f"{PROJECT}:management"], **management}, clusters


def test_a_cluster_agent_version_overrides_the_management_one_for_that_cluster_only() -> None:
    """A staged upgrade: the server discovered at 1.1.6 (the double's), one cluster held at 1.1.5 by its own entry;
    the others follow the server. Then a management version for the stack and one cluster held below it: nothing is
    left to discover, so the server Deployment is not read."""
    stack_file = ROOT / "stacks" / "Pulumi.fleet-example.yaml"
    management, clusters = _fleet_with({"eu-west-1-b": "v1.1.5"})
    override = {f"{PROJECT}:management": management, f"{PROJECT}:clusters": clusters}
    recorded = run_main(stack_file, config_override=override)
    assert _agent_versions(recorded, "enterprise-agent", ("relay", "cluster")) == {
        "eu-west-1-a": "1.1.6",
        "eu-west-1-b": "1.1.5",
        "us-east-1-a": "1.1.6",
    }
    assert len(recorded.reads(DEPLOYMENT)) == 1  # the followers' version: one shared read of the server

    management, clusters = _fleet_with({"us-east-1-a": "1.1.6"}, agentVersion="1.1.7")
    override = {f"{PROJECT}:management": management, f"{PROJECT}:clusters": clusters}
    recorded = run_main(stack_file, config_override=override)
    assert _agent_versions(recorded, "enterprise-agent", ("relay", "cluster")) == {
        "eu-west-1-a": "1.1.7",
        "eu-west-1-b": "1.1.7",
        "us-east-1-a": "1.1.6",
    }
    assert recorded.reads(DEPLOYMENT) == []


def test_the_crds_release_follows_a_cluster_agent_version() -> None:
    """Gloo Platform 2.x: both charts of a held cluster are at its own version, the other cluster's at the server's
    (2.5.8, discovered)."""
    stack_file = ROOT / "stacks" / "Pulumi.platform-example.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    clusters = config[f"{PROJECT}:clusters"]
    held = [{**clusters[0], "agentVersion": "2.5.7"}, *clusters[1:]]
    recorded = run_main(stack_file, config_override={f"{PROJECT}:clusters": held})
    expected = {"workload-1": "2.5.7", "workload-2": "2.5.8"}
    assert _agent_versions(recorded, "gloo-platform", ("common", "cluster")) == expected
    crds = {
        r.name.removesuffix("-agent-crds"): plain(r.inputs)["version"]
        for r in recorded.registered(RELEASE)
        if plain(r.inputs)["chart"] == "gloo-platform-crds"
    }
    assert crds == expected


def test_the_staged_upgrade_pages_stack_file_holds_all_but_the_canary() -> None:
    """docs/staged-upgrade.md: its stack file is one this program reads, with the canary following the
    server (the double's, 1.1.6) and the others held at their own version."""
    page = (ROOT / "docs" / "staged-upgrade.md").read_text()
    snippet = next(block for block in page.split("```yaml\n")[1:] if block.startswith("config:"))
    config = yaml.safe_load(snippet.split("```", 1)[0])["config"]
    read: list[Any] = []
    run_program(lambda: read.append(read_stack_config(PROJECT, {k: json.dumps(v) for k, v in config.items()})))
    versions = {settings.cluster_name: settings.agent_version for settings in read[0].clusters}
    assert versions == {"eu-west-1-a": None, "eu-west-1-b": "1.1.6", "eu-west-1-c": "1.1.6"}


def test_secret_kubeconfig_from_stack_config_stays_secret() -> None:
    override = {
        f"{PROJECT}:clusters": [
            {"name": "remote-cluster", "context": "kind-remote-cluster", "kubeconfig": KUBECONFIG_CONTENTS}
        ]
    }
    recorded = run_main(
        ROOT / "stacks" / "Pulumi.dev.yaml", config_override=override, secret_keys=[f"{PROJECT}:clusters"]
    )
    remote = recorded.one(KUBERNETES_PROVIDER, "remote-cluster-remote")
    assert rpc.is_rpc_secret(remote.inputs["kubeconfig"])


def config(**entries: Any) -> dict[str, Any]:
    base = {
        f"{PROJECT}:management": {"context": "mgmt"},
        f"{PROJECT}:clusters": [{"name": "a", "context": "a"}],
        "pulumi:disable-default-providers": ["kubernetes"],
    }
    base.update({f"{PROJECT}:{k}": v for k, v in entries.items()})
    return {k: json.dumps(v) for k, v in base.items()}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"clustrs": []}, r"gloo-mesh-registration:clustrs: \(stack config key\) is not a key of this project"),
        (
            {"management": {"context": "m", "relayAdress": "x:1"}},
            r"management.relayAdress: \(key\) is not a known key.*relayServerAddress",
        ),
        (
            {"clusters": [{"name": "a", "context": "a", "kubeconfg": "x"}]},
            r"clusters\[0\].kubeconfg: \(key\) is not a known key",
        ),
        (
            {"clusters": [{"name": "a", "context": "a"}, {"name": "a", "context": "b"}]},
            r"clusters\[1\].name: 'a' is also the name of gloo-mesh-registration:clusters\[0\]",
        ),
        ({"clusters": [{"name": "A_1", "context": "a"}]}, r"clusters\[0\].name: 'A_1' is not a valid cluster name"),
        (
            {"clusters": []},
            r"clusters: list is not a non-empty list\. Fix: list the clusters to register, each with at least `name` "
            r"and `context`$",
        ),
        ({"clusters": None}, r"clusters: nothing is not a non-empty list\. Fix: list the clusters"),
        (
            {"clusters": ["kind-remote"]},
            r"clusters\[0\]: str is not an object\. Fix: give an object with `name` and `context`$",
        ),
        (
            {"clusters": [{"name": "a", "context": "a", "clientCertTimeoutSeconds": -1}]},
            r"clusters\[0\].clientCertTimeoutSeconds: -1",
        ),
        (
            {"management": {"context": "m", "relayServerAddress": "nope"}},
            r"management.relayServerAddress: 'nope' has no valid port",
        ),
        ({"management": "kind-mgmt"}, r"management: str is not an object"),
        (
            {"management": {"context": "m", "agentGeneration": "gloo-platform-2", "agentVersion": "v2.2.6"}},
            r"management.agentVersion: '2.2.6' is older than 2.3, the first Gloo Platform 2.x version",
        ),
        # A cluster's own agentVersion (a staged upgrade's pin) is checked as the management one is, under its key.
        (
            {"clusters": [{"name": "a", "context": "a"}, {"name": "b", "context": "b", "agentVersion": "latest"}]},
            r"^gloo-mesh-registration:clusters\[1\]\.agentVersion: 'latest' is not a valid agent version\. Fix: give "
            r"the enterprise-networking version as semver",
        ),
        (
            {"clusters": [{"name": "a", "context": "a", "agentVersion": 116}]},
            r"^gloo-mesh-registration:clusters\[0\]\.agentVersion: 116 is not a string",
        ),
        (
            {
                "management": {"context": "m", "agentGeneration": "gloo-platform-2", "agentVersion": "2.5.8"},
                "clusters": [{"name": "a", "context": "a"}, {"name": "b", "context": "b", "agentVersion": "v2.2.6"}],
            },
            r"^gloo-mesh-registration:clusters\[1\]\.agentVersion: '2.2.6' is older than 2.3, the first Gloo "
            r"Platform 2.x version",
        ),
        (
            {"management": {"context": "m", "agentVersion": "1.1"}, "clusters": [{"name": "a", "context": "a"}]},
            r"^gloo-mesh-registration:management\.agentVersion: '1.1' is not a valid agent version",
        ),
        (
            {"clusters": [{"name": "a", "context": "a", "agentReleaseName": "Agent"}]},
            r"clusters\[0\].agentReleaseName: 'Agent' is not a Helm release name",
        ),
        (
            {
                "management": {"context": "m", "agentGeneration": "gloo-mesh-enterprise-1"},
                "clusters": [{"name": "a", "context": "a", "crdValues": {"featureGates": {"ExternalWorkloads": True}}}],
            },
            r"clusters\[0\].crdValues: set has no release to go to: Gloo Mesh Enterprise 1.x installs no CRDs chart.*"
            r"Fix: remove it \(put agent chart values in gloo-mesh-registration:clusters\[0\].agentValues\)",
        ),
    ],
)
def test_stack_config_errors_name_the_stack_file_key(entries: dict[str, Any], message: str) -> None:
    # Read inside a program, as __main__.py reads it: some entries get as far as discovering the generation, which
    # needs the run (before, those cases passed only after another test had left the SDK's runtime set up).
    with pytest.raises(RegistrationConfigError, match=message):
        run_program(lambda: read_stack_config(PROJECT, config(**entries)))


def test_the_management_namespace_of_a_stack_file_is_a_non_empty_string_or_none() -> None:
    """What the policy pack reads of a stack file: its ``management.namespace``, where the stack sets one."""
    from gloo_mesh_registration.facts import configured_management_namespace

    def management(value: Any) -> dict[str, Any]:
        return {f"{PROJECT}:management": json.dumps(value)}

    assert configured_management_namespace(PROJECT, management({"namespace": "gloo-mesh-mgmt"})) == "gloo-mesh-mgmt"
    assert configured_management_namespace(PROJECT, management({"namespace": ""})) is None
    assert configured_management_namespace(PROJECT, management({"context": "m"})) is None
    assert configured_management_namespace(PROJECT, {}) is None


def test_the_agent_versions_a_stack_file_sets() -> None:
    """What the policy pack reads of a stack file: the management agentVersion, each ``clusters`` entry's own by
    cluster name, and which clusters follow the server's version."""
    from gloo_mesh_registration.facts import ConfiguredAgentVersions, configured_agent_versions

    clusters = [
        {"name": "canary", "context": "c"},
        {"name": "eu-1", "context": "e", "agentVersion": "v1.1.6"},
        {"name": "eu-2", "context": "e2", "agentVersion": 116},
        "not-an-entry",
    ]
    config = {
        f"{PROJECT}:clusters": json.dumps(clusters),
        f"{PROJECT}:management": json.dumps({"agentVersion": "1.1.7"}),
    }
    assert configured_agent_versions(PROJECT, config) == ConfiguredAgentVersions("1.1.7", {"eu-1": "1.1.6"})
    # Without a management version, the clusters without one of their own follow the server (the registration reads
    # it); a value the program refuses follows nothing.
    config[f"{PROJECT}:management"] = json.dumps({"context": "m"})
    assert configured_agent_versions(PROJECT, config) == ConfiguredAgentVersions(
        None, {"eu-1": "1.1.6"}, frozenset({"canary"})
    )
    assert configured_agent_versions("another-project", config) == ConfiguredAgentVersions(None, {})
    assert configured_agent_versions(PROJECT, {}) == ConfiguredAgentVersions(None, {})


def test_bad_stack_config_declares_nothing() -> None:
    override = {f"{PROJECT}:clusters": [{"name": "ok", "context": "a"}, {"name": "Not_OK", "context": "b"}]}
    monitor = RecordingMonitor(FakeClusters())
    with pytest.raises(RegistrationConfigError, match=r"clusters\[1\].name: 'Not_OK'"):
        run_main(ROOT / "stacks" / "Pulumi.dev.yaml", config_override=override, monitor=monitor)
    assert monitor.records == [], "a resource was declared before the stack config was rejected"


def test_project_file() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["stackConfigDir"] == "stacks"
    assert project["backend"]["url"].startswith("file://")
    assert "kubernetes" in project["config"]["pulumi:disable-default-providers"]["value"]
    from gloo_mesh_registration.stack_config import TOP_LEVEL_KEYS

    declared = {key for key in project["config"] if ":" not in key}
    assert declared == set(TOP_LEVEL_KEYS), "every project config key the program reads is declared, and no other"


def test_adopting_a_release_under_another_name_fails_on_the_stack_file_key_before_anything_is_declared() -> None:
    """A 2.x agent installed as `gloo-platform-agent` (solo-io/workshops gloo-mesh/enterprise/2-9/mgmt-as-workload):
    adoption under the default name would import nothing; the stack file key to set is named."""
    fake = FakeClusters(platform=True)
    fake.existing.add("helm-release/gloo-mesh/gloo-platform-agent")
    entries = {"clusters": [{"name": "a", "context": "a", "adopt": True}]}
    monitor = RecordingMonitor(fake)
    with pytest.raises(RegistrationConfigError, match=r"^gloo-mesh-registration:clusters\[0\]\.agentReleaseName: "):
        run_program(lambda: read_stack_config(PROJECT, config(**entries)), monitor=monitor)
    assert monitor.records == []
    named = {"clusters": [{"name": "a", "context": "a", "adopt": True, "agentReleaseName": "gloo-platform-agent"}]}
    read: list[Any] = []
    run_program(lambda: read.append(read_stack_config(PROJECT, config(**named))), fake)
    assert read[0].clusters[0].agent_release_name == "gloo-platform-agent"


def test_a_stack_validates_each_cluster_once_and_the_component_takes_the_settings_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``__main__.py`` reads the stack (every cluster validated there, with its stack-file keys) and gives each
    cluster's settings to ``RemoteClusterRegistration.from_settings``: no second validation, so no second discovery
    or adoption look either; what the component declares is what the settings say."""
    from gloo_mesh_registration import registration, stack_config
    from gloo_mesh_registration.validation import validate_registration_args as validate

    validated: list[str] = []

    def counting(args: Any, *rest: Any, **kwargs: Any) -> Any:
        validated.append(args["cluster_name"])
        return validate(args, *rest, **kwargs)

    monkeypatch.setattr(stack_config, "validate_registration_args", counting)
    monkeypatch.setattr(registration, "validate_registration_args", counting)
    stack_file = ROOT / "stacks" / "Pulumi.fleet-example.yaml"
    recorded = run_main(stack_file)
    clusters = [c["name"] for c in yaml.safe_load(stack_file.read_text())["config"][f"{PROJECT}:clusters"]]
    assert validated == clusters
    assert sorted(c.name for c in recorded.registered(COMPONENT)) == sorted(clusters)
    # The shared management Provider reached the settings: one provider for the management cluster, reads shared.
    assert sorted(p.name for p in recorded.registered(KUBERNETES_PROVIDER)) == sorted(
        ["management"] + [f"{name}-remote" for name in clusters]
    )


def test_the_stack_file_keys_are_derived_from_the_argument_table() -> None:
    """One row per argument (args.ARGUMENTS) gives the stack-file keys: the maps are what the stack files use."""
    from gloo_mesh_registration.args import ARGUMENTS, RemoteClusterRegistrationArgs
    from gloo_mesh_registration.stack_config import CLUSTER_KEYS, MANAGEMENT_KEYS

    assert [a.name for a in ARGUMENTS] == list(RemoteClusterRegistrationArgs.__annotations__)
    assert MANAGEMENT_KEYS == {
        "context": "mgmt_context",
        "kubeconfig": "mgmt_kubeconfig",
        "namespace": "mgmt_namespace",
        "relayServerAddress": "relay_server_address",
        "relayDiscovery": "relay_discovery",
        "relayNodeName": "relay_node_name",
        "relayAuthority": "relay_authority",
        "agentVersion": "agent_version",
        "chartRepo": "chart_repo",
        "insecure": "insecure",
        "agentGeneration": "agent_generation",
        "telemetry": "telemetry",
        "telemetryGatewayAddress": "telemetry_gateway_address",
    }
    assert CLUSTER_KEYS == {
        "name": "cluster_name",
        "context": "remote_context",
        "kubeconfig": "remote_kubeconfig",
        "namespace": "remote_namespace",
        "createNamespace": "create_remote_namespace",
        "clusterDomain": "cluster_domain",
        "relayServerAddress": "relay_server_address",
        "agentVersion": "agent_version",
        "agentValues": "agent_values",
        "crdValues": "crd_values",
        "waitForClientCert": "wait_for_client_cert",
        "clientCertTimeoutSeconds": "client_cert_timeout_seconds",
        "removeBootstrapToken": "remove_bootstrap_token",
        "adopt": "adopt",
        "agentReleaseName": "agent_release_name",
    }
    assert {a.name for a in ARGUMENTS if a.secret} == {"mgmt_kubeconfig", "remote_kubeconfig"}
    assert {a.name for a in ARGUMENTS if not a.stack_objects} == {"mgmt_provider", "remote_provider"}


def test_validated_settings_never_show_kubeconfig_contents() -> None:
    """Settings are values a program may print or a test may show on failure: the kubeconfig (a secret argument) is
    left out of their text."""
    read: list[Any] = []
    entries = {"clusters": [{"name": "a", "context": "a", "kubeconfig": KUBECONFIG_CONTENTS}]}
    run_program(lambda: read.append(read_stack_config(PROJECT, config(**entries))))
    settings = read[0].clusters[0]
    assert settings.remote.kubeconfig == KUBECONFIG_CONTENTS
    assert KUBECONFIG_CONTENTS not in repr(settings) and "kubeconfig-bearer-9d1e" not in repr(settings)
