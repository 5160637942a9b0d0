"""A Gloo Platform 2.x registration, as the engine would receive it: the same steps under 2.x names.

The management plane of the double is a 2.x one (``gloo-mesh-mgmt-server`` at 2.5.8, its LoadBalancer, the telemetry
gateway); the generation is discovered from it unless a test names it.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from builders import registration_args
from test_registration_graph import destroy_order

from gloo_mesh_registration import DiscoveryError, RegistrationConfigError, RemoteClusterRegistration
from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE, FIND_EXISTING
from lab.engine_double import (
    CA_CERT,
    CLUSTER_2X,
    DEPLOYMENT,
    KEEPS_TOKEN,
    NAMESPACE,
    RELEASE,
    REMOVES_TOKEN,
    SECRET,
    FakeClusters,
    RecordingMonitor,
    b64,
    plain,
    run_program,
)


def register(fake: FakeClusters | None = None, *, preview: bool = False, **overrides: Any) -> RecordingMonitor:
    args = registration_args("workload-1", "mgmt-platform", "workload-1", **overrides)

    def program() -> pulumi.Output[Any]:
        return RemoteClusterRegistration("workload-1", args).client_certificate_issued

    return run_program(program, fake or FakeClusters(platform=True), preview=preview)


@pytest.fixture
def recorded() -> RecordingMonitor:
    return register()


def _releases(recorded: RecordingMonitor) -> dict[str, Any]:
    return {plain(r.inputs)["chart"]: r for r in recorded.registered(RELEASE)}


def test_the_generation_is_discovered_from_the_management_server(recorded: RecordingMonitor) -> None:
    (looked,) = recorded.invoked(FIND_EXISTING)
    assert plain(looked.args)["environment"]["GM_OBJECTS"] == (
        "deployments/gloo-mesh/enterprise-networking deployments/gloo-mesh/gloo-mesh-mgmt-server"
    )
    assert sorted(_releases(recorded)) == ["gloo-platform", "gloo-platform-crds"]
    assert plain(recorded.one(CLUSTER_2X).inputs)["spec"] == {"clusterDomain": "cluster.local"}


def test_named_the_generation_is_not_looked_for() -> None:
    named = register(agent_generation="gloo-platform-2")
    assert named.invoked(FIND_EXISTING) == []
    assert sorted(_releases(named)) == ["gloo-platform", "gloo-platform-crds"]


def test_both_servers_on_one_management_cluster_is_a_clear_error() -> None:
    fake = FakeClusters(platform=True)
    fake.objects.update(FakeClusters().objects)  # the 1.x server too
    monitor = RecordingMonitor(fake)
    with pytest.raises(RegistrationConfigError, match=r"runs both of enterprise-networking .* set agent_generation"):
        run_program(
            lambda: RemoteClusterRegistration("w", registration_args("w", "m", "w")),
            monitor=monitor,
        )
    assert monitor.records == []


def test_the_agent_values_use_the_2x_paths(recorded: RecordingMonitor) -> None:
    agent = plain(_releases(recorded)["gloo-platform"].inputs)
    assert (agent["name"], agent["version"], agent["namespace"]) == ("gloo-platform", "2.5.8", "gloo-mesh")
    assert agent["repositoryOpts"] == {"repo": "https://storage.googleapis.com/gloo-platform/helm-charts"}
    assert agent["values"] == {
        "common": {"cluster": "workload-1"},
        "glooAgent": {
            "enabled": True,
            "relay": {
                "serverAddress": "203.0.113.20:9900",
                "authority": "gloo-mesh-mgmt-server.gloo-mesh",
                "rootTlsSecret": {"name": "relay-root-tls-secret", "namespace": "gloo-mesh"},
                "clientTlsSecret": {"name": "relay-client-tls-secret", "namespace": "gloo-mesh"},
                "tokenSecret": {"name": "relay-identity-token-secret", "namespace": "gloo-mesh", "key": "token"},
            },
        },
    }
    assert plain(recorded.one(SECRET, "-root-ca").inputs)["data"] == {"ca.crt": b64(CA_CERT)}


def test_the_crds_come_first_at_the_same_version_and_are_never_deleted(recorded: RecordingMonitor) -> None:
    releases = _releases(recorded)
    crds, agent = releases["gloo-platform-crds"], releases["gloo-platform"]
    assert plain(crds.inputs)["version"] == plain(agent.inputs)["version"] == "2.5.8"
    # Fixed Helm release names (without one the provider would make one up): the preflight, adoption and the
    # guide's `helm` commands find them by these names.
    assert (plain(crds.inputs)["name"], plain(agent.inputs)["name"]) == ("gloo-platform-crds", "gloo-platform")
    assert crds.urn in recorded.ancestors_closure(agent.urn)
    namespace = recorded.one(NAMESPACE)
    assert namespace.urn in recorded.ancestors_closure(crds.urn)
    # Deleting the CRDs release would delete every Gloo custom resource of the workload cluster: it is forgotten.
    assert crds.retain_on_delete and not agent.retain_on_delete
    assert plain(crds.inputs)["repositoryOpts"] == plain(agent.inputs)["repositoryOpts"]
    assert plain(crds.inputs)["createNamespace"] is plain(agent.inputs)["createNamespace"] is False
    order = destroy_order(recorded)
    assert order.index("workload-1-kubernetes-cluster") < order.index("workload-1-agent")


def test_the_token_is_kept_by_default_and_removed_when_asked() -> None:
    kept = register()
    (wait,) = kept.invoked(ENSURE_CERTIFICATE)
    assert KEEPS_TOKEN in plain(wait.args)["interpreter"][2]
    removed = register(remove_bootstrap_token=True)
    (wait,) = removed.invoked(ENSURE_CERTIFICATE)
    assert KEEPS_TOKEN not in plain(wait.args)["interpreter"][2]
    assert REMOVES_TOKEN in plain(wait.args)["interpreter"][2]


def test_telemetry_exports_to_the_discovered_or_given_gateway() -> None:
    discovered = plain(_releases(register(telemetry=True))["gloo-platform"].inputs)["values"]
    assert discovered["telemetryCollector"] == {
        "enabled": True,
        "config": {"exporters": {"otlp": {"endpoint": "203.0.113.21:4317"}}},
    }
    given = register(telemetry_gateway_address="otel.example.com:4317")
    assert plain(_releases(given)["gloo-platform"].inputs)["values"]["telemetryCollector"]["config"] == {
        "exporters": {"otlp": {"endpoint": "otel.example.com:4317"}}
    }
    assert not [r for r in given.reads() if r.name.endswith("telemetry-service")]
    # An Output of another resource is checked once it resolves, as a string would be.
    from_output = register(telemetry_gateway_address=pulumi.Output.from_input("otel.example.com:4317"))
    assert plain(_releases(from_output)["gloo-platform"].inputs)["values"]["telemetryCollector"]["config"] == {
        "exporters": {"otlp": {"endpoint": "otel.example.com:4317"}}
    }


def test_insecure_2x_sets_the_agents_flag_and_copies_nothing() -> None:
    insecure = register(insecure=True)
    values = plain(_releases(insecure)["gloo-platform"].inputs)["values"]
    assert values["glooAgent"]["insecure"] is True
    assert "rootTlsSecret" not in values["glooAgent"]["relay"]
    assert not insecure.registered(SECRET) and not insecure.invoked(ENSURE_CERTIFICATE)


def test_a_preview_looks_for_a_leftover_crds_release_too() -> None:
    fake = FakeClusters(platform=True)
    fake.existing.add("helm-release/gloo-mesh/gloo-platform-crds")
    with pytest.raises(Exception, match="Helm release 'gloo-platform-crds' exists already in namespace 'gloo-mesh'"):
        register(fake, preview=True)


def test_a_preview_fails_on_the_crds_that_a_release_in_another_namespace_owns() -> None:
    """A destroyed registration into another namespace retains its CRDs, owned by Helm there: Helm would refuse them
    in `pulumi up` after the namespace, CA copy and token exist, so the preview fails first, naming them."""
    fake = FakeClusters(platform=True)
    fake.existing.add("helm-crds/gloo-mesh/gloo-platform-crds")
    fake.details["helm-crds/gloo-mesh/gloo-platform-crds"] = ["old-agents/workspaces.admin.gloo.solo.io"]
    with pytest.raises(Exception) as failed:
        register(fake, preview=True)
    message = str(failed.value)
    assert "the CRDs of chart 'gloo-platform-crds' exist already" in message
    assert "Found: old-agents/workspaces.admin.gloo.solo.io." in message
    assert "meta.helm.sh/release-namespace=gloo-mesh --overwrite" in message


def test_a_preview_looks_for_conflicting_crds_only_when_it_installs_the_crds_release() -> None:
    platform = register(FakeClusters(platform=True), preview=True)
    looked = " ".join(i.args["environment"]["GM_OBJECTS"] for i in platform.invoked(FIND_EXISTING))
    assert "helm-crds/gloo-mesh/gloo-platform-crds" in looked.split()
    enterprise = register(FakeClusters(), preview=True, agent_generation="gloo-mesh-enterprise-1")
    objects = " ".join(i.args["environment"]["GM_OBJECTS"] for i in enterprise.invoked(FIND_EXISTING))
    assert "helm-crds/" not in objects


def test_a_chart_repository_given_serves_the_crds_too() -> None:
    releases = _releases(register(chart_repo="https://charts.example.com/gloo-platform"))
    for chart in ("gloo-platform-crds", "gloo-platform"):
        assert plain(releases[chart].inputs)["repositoryOpts"] == {"repo": "https://charts.example.com/gloo-platform"}


def test_a_discovered_telemetry_gateway_is_one_read_named_for_what_it_reads() -> None:
    """The telemetry gateway's Service is read once, under a name that says what it is (the URN keeps it: a renamed
    read would be a new resource in every stack)."""
    reads = sorted(r.name for r in register(telemetry=True).reads())
    assert reads == ["workload-1-relay-service", "workload-1-server-deployment", "workload-1-telemetry-service"]


def test_adopting_a_2x_cluster_imports_both_releases() -> None:
    """adopt: the CRDs release is taken over as the agent's is (``<namespace>/<release>``); without it, neither is."""
    imported = {plain(r.inputs)["chart"]: r.resource_id for r in register(adopt=True).registered(RELEASE)}
    assert imported == {
        "gloo-platform-crds": "gloo-mesh/gloo-platform-crds",
        "gloo-platform": "gloo-mesh/gloo-platform",
    }
    assert {r.resource_id for r in register().registered(RELEASE)} == {""}


# -- a 2.x management plane below 2.3 ---------------------------------------------------------------------------
# solo-io/workshops (01c2f6ee37f6) gloo-mesh/old-versions/gloo-mesh-2-2/default/README.md: 2.2.6 installs the agent
# with `helm upgrade --install gloo-mesh-agent gloo-mesh-agent/gloo-mesh-agent --set cluster=... --set
# relay.serverAddress=...`; gloo-mesh-2-3/default/README.md (2.3.18) is the first with gloo-platform-crds and
# gloo-platform. The charts this registration installs do not exist below 2.3.

BELOW_2_3 = (
    "is older than 2.3, the first Gloo Platform 2.x version this registration can install: Gloo Mesh 2.0 to 2.2 ship "
    "the agent as one chart, gloo-mesh-agent (repository https://storage.googleapis.com/gloo-mesh-enterprise/"
    "gloo-mesh-agent), with top-level `cluster` and `relay.*` values; the gloo-platform-crds and gloo-platform charts "
    "this registration installs start at 2.3. Fix: upgrade the management plane to 2.3 or later, or register this "
    "cluster with the charts of its own version outside this stack"
)


def _server_at(tag: str) -> FakeClusters:
    fake = FakeClusters(platform=True)
    deployment = fake.objects[(DEPLOYMENT, "gloo-mesh/gloo-mesh-mgmt-server")]
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = f"gcr.io/gloo-mesh/gloo-mesh-mgmt-server:{tag}"
    return fake


@pytest.mark.parametrize("version", ["2.2.6", "v2.2.99", "2.0.0", "1.1.6"])
def test_a_given_version_below_2_3_is_refused_before_anything_is_declared(version: str) -> None:
    monitor = RecordingMonitor(FakeClusters(platform=True))
    args = registration_args("workload-1", "mgmt-platform", "workload-1", agent_version=version)
    with pytest.raises(RegistrationConfigError) as refused:
        run_program(lambda: RemoteClusterRegistration("workload-1", args), monitor=monitor)
    assert str(refused.value) == f"agent_version: {version.removeprefix('v')!r} {BELOW_2_3}"
    assert monitor.records == [], [(r.type, r.name) for r in monitor.records]


@pytest.mark.parametrize("version", ["2.3.0", "2.3.0-beta1", "v2.3.18", "3.0.0"])
def test_a_given_version_from_2_3_on_is_installed(version: str) -> None:
    agent = plain(_releases(register(agent_version=version))["gloo-platform"].inputs)
    assert agent["version"] == version.removeprefix("v")


def test_a_discovered_server_below_2_3_is_refused_where_a_discovered_version_is_checked() -> None:
    """As a discovered tag that is no version: once the server Deployment is read, which a preview does too."""
    for preview in (True, False):
        with pytest.raises(DiscoveryError) as refused:
            register(_server_at("2.2.6"), preview=preview)
        assert str(refused.value) == (
            "agent_version: '2.2.6', the server version discovered from Deployment gloo-mesh/gloo-mesh-mgmt-server "
            "(context 'mgmt-platform') (image 'gcr.io/gloo-mesh/gloo-mesh-mgmt-server:2.2.6'), " + BELOW_2_3
        )
    assert plain(_releases(register(_server_at("v2.3.0")))["gloo-platform"].inputs)["version"] == "2.3.0"


@pytest.mark.parametrize("insecure", [False, True], ids=["secure", "insecure"])
def test_a_discovered_server_below_2_3_leaves_nothing_on_the_registered_cluster(insecure: bool) -> None:
    """`pulumi up --skip-preview` against a 2.2 server: the namespace waits for the checked version (as it waits for
    the relay secrets), so the refusal comes before anything is created on the registered cluster, in insecure mode
    (no relay secrets to wait for) too."""
    monitor = RecordingMonitor(_server_at("2.2.6"))
    args = registration_args("workload-1", "mgmt-platform", "workload-1", insecure=insecure)
    with pytest.raises(DiscoveryError):
        run_program(lambda: RemoteClusterRegistration("workload-1", args), monitor=monitor)
    created = [(r.type, r.name) for r in monitor.registered() if r.type.startswith("kubernetes:")]
    assert created == [], created


def test_a_version_below_2_3_from_another_resource_is_refused_once_it_resolves() -> None:
    # The SDK reports it as the failure of the input that waited for it.
    with pytest.raises(ValueError, match=r"has risen: agent_version: '2\.2\.6' is older than 2\.3"):
        register(agent_version=pulumi.Output.from_input("v2.2.6"))


def test_a_1x_registration_has_no_such_floor() -> None:
    release = plain(
        register(FakeClusters(), agent_generation="gloo-mesh-enterprise-1", agent_version="1.0.9")
        .registered(RELEASE)[0]
        .inputs
    )
    assert (release["chart"], release["version"]) == ("enterprise-agent", "1.0.9")


# -- the agent release's name -----------------------------------------------------------------------------------
# Real installations name the 2.x agent release `gloo-platform` (solo-io/workshops gloo-mesh/enterprise/2-9/default/
# README.md), `gloo-platform-agent` (enterprise/2-9/mgmt-as-workload/default/README.md) or `gloo-agent`.


def test_the_agent_release_takes_the_name_given_everywhere_it_is_named() -> None:
    recorded = register(FakeClusters(platform=True), preview=True, agent_release_name="gloo-platform-agent")
    agent = _releases(recorded)["gloo-platform"]
    assert plain(agent.inputs)["name"] == "gloo-platform-agent"
    assert plain(_releases(recorded)["gloo-platform-crds"].inputs)["name"] == "gloo-platform-crds"
    looked = " ".join(i.args["environment"]["GM_OBJECTS"] for i in recorded.invoked(FIND_EXISTING)).split()
    assert (
        "helm-release/gloo-mesh/gloo-platform-agent" in looked and "helm-release/gloo-mesh/gloo-platform" not in looked
    )
    adopted = register(adopt=True, agent_release_name="gloo-platform-agent")
    assert {plain(r.inputs)["name"]: r.resource_id for r in adopted.registered(RELEASE)} == {
        "gloo-platform-crds": "gloo-mesh/gloo-platform-crds",
        "gloo-platform-agent": "gloo-mesh/gloo-platform-agent",
    }


@pytest.mark.parametrize("found", ["gloo-platform-agent", "gloo-agent"])
def test_adopting_a_release_under_another_name_says_which_name_to_set_before_anything_is_declared(found: str) -> None:
    fake = FakeClusters(platform=True)
    fake.existing.add(f"helm-release/gloo-mesh/{found}")
    monitor = RecordingMonitor(fake)
    args = registration_args("workload-1", "mgmt-platform", "workload-1", adopt=True)
    with pytest.raises(RegistrationConfigError) as refused:
        run_program(lambda: RemoteClusterRegistration("workload-1", args), monitor=monitor)
    assert str(refused.value) == (
        "agent_release_name: 'gloo-platform' names no Helm release in namespace 'gloo-mesh' of the registered cluster "
        f"(context 'workload-1'), so there is no agent to adopt under it; the agent release there is {found!r}. Fix: "
        f"set agent_release_name to {found!r} and keep it set after the adoption (a release under another name would "
        "be a new release)"
    )
    assert monitor.records == [], [(r.type, r.name) for r in monitor.records]
    looked = [plain(i.args)["environment"]["GM_OBJECTS"] for i in monitor.invoked(FIND_EXISTING)]
    assert looked[-1] == (
        "helm-release/gloo-mesh/gloo-platform helm-release/gloo-mesh/gloo-platform-agent "
        "helm-release/gloo-mesh/gloo-agent"
    )
    # Named, the same cluster is adopted.
    adopted = register(fake, adopt=True, agent_release_name=found)
    assert plain(_releases(adopted)["gloo-platform"].inputs)["name"] == found


def test_adoption_looks_for_release_names_only_when_adopting_and_lets_the_import_speak_otherwise() -> None:
    fake = FakeClusters(platform=True)
    fake.existing.add("helm-release/gloo-mesh/gloo-platform")
    fake.existing.add("helm-release/gloo-mesh/gloo-agent")
    # The named release is there (another one too): adopted under its name.
    assert plain(_releases(register(fake, adopt=True))["gloo-platform"].inputs)["name"] == "gloo-platform"
    # None of the names there, or the cluster not answering: the import reports what it cannot find.
    assert _releases(register(FakeClusters(platform=True), adopt=True))["gloo-platform"].resource_id == (
        "gloo-mesh/gloo-platform"
    )
    unreachable = FakeClusters(platform=True)
    unreachable.existing.add("helm-release/gloo-mesh/gloo-agent")
    unreachable.unreachable["workload-1"] = "connection refused"
    assert _releases(register(unreachable, adopt=True))["gloo-platform"].resource_id == "gloo-mesh/gloo-platform"
    # Not adopting: no look before declaring (only the generation's).
    plain_run = register(fake)
    assert [plain(i.args)["environment"]["GM_OBJECTS"] for i in plain_run.invoked(FIND_EXISTING)] == [
        "deployments/gloo-mesh/enterprise-networking deployments/gloo-mesh/gloo-mesh-mgmt-server"
    ]


BAD_NAME = (
    "is not a Helm release name (at most 53 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or "
    "digit). Fix: give the agent release's name, e.g. 'gloo-platform' (the default)"
)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Gloo_Agent", BAD_NAME),
        ("a" * 54, BAD_NAME),
        ("", BAD_NAME),
        (
            "gloo-platform-crds",
            "is the name of the CRDs release this registration installs beside the agent. Fix: give the agent "
            "release's own name, e.g. 'gloo-platform' (the default)",
        ),
    ],
)
def test_a_bad_agent_release_name_is_refused_before_anything_is_declared(name: str, message: str) -> None:
    monitor = RecordingMonitor(FakeClusters(platform=True))
    args = registration_args("workload-1", "mgmt-platform", "workload-1", agent_release_name=name)
    with pytest.raises(RegistrationConfigError) as refused:
        run_program(lambda: RemoteClusterRegistration("workload-1", args), monitor=monitor)
    assert str(refused.value) == f"agent_release_name: {name!r} {message}"
    assert monitor.records == []
    assert plain(_releases(register(agent_release_name="a" * 53))["gloo-platform"].inputs)["name"] == "a" * 53


# -- values for the CRDs release ----------------------------------------------------------------------------------
# GitOps setups pass values to gloo-platform-crds too: solo-io/workshops gloo-mesh/enterprise/2-7/airgap/default/
# README.md (01c2f6ee37f6) installs it with `--set featureGates.ExternalWorkloads=true`.


def test_crd_values_go_to_the_crds_release_only() -> None:
    given = {"featureGates": {"ExternalWorkloads": True}}
    releases = _releases(register(crd_values=given))
    assert plain(releases["gloo-platform-crds"].inputs)["values"] == given
    assert "featureGates" not in plain(releases["gloo-platform"].inputs)["values"]


def test_without_crd_values_the_crds_release_has_no_values_input(recorded: RecordingMonitor) -> None:
    """A stack from before ``crd_values`` keeps the CRDs release's inputs as they were: an upgrade shows no diff."""
    assert "values" not in plain(_releases(recorded)["gloo-platform-crds"].inputs)
    assert "values" not in plain(_releases(register(crd_values={}))["gloo-platform-crds"].inputs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"agent_generation": "gloo-mesh-enterprise-1", "crd_values": {"featureGates": {"ExternalWorkloads": True}}},
            "crd_values: set has no release to go to: Gloo Mesh Enterprise 1.x installs no CRDs chart (its agent chart "
            "holds the CRDs). Fix: remove it (put agent chart values in agent_values), or register with a Gloo "
            "Platform 2.x management plane (agent_generation)",
        ),
        (
            {"crd_values": ["featureGates.ExternalWorkloads=true"]},
            "crd_values: list is not a mapping. Fix: give a mapping of Helm values",
        ),
    ],
)
def test_bad_crd_values_are_refused_before_anything_is_declared(overrides: dict[str, Any], message: str) -> None:
    fake = FakeClusters(platform=overrides.get("agent_generation") is None)
    monitor = RecordingMonitor(fake)
    args = registration_args("workload-1", "mgmt-platform", "workload-1", **overrides)
    with pytest.raises(RegistrationConfigError) as refused:
        run_program(lambda: RemoteClusterRegistration("workload-1", args), monitor=monitor)
    assert str(refused.value) == message
    assert monitor.records == []
