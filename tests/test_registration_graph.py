"""What the engine would receive for a registration: providers, inputs, secretness and step order."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from engine_double import (
    BOOTSTRAP_TOKEN,
    CA_CERT,
    CA_PRIVATE_KEY,
    KUBECONFIG_CONTENTS,
    SECRET_VALUES,
    FakeClusters,
    Recorded,
    RecordingMonitor,
    b64,
    plain,
    run_program,
    walk,
)
from pulumi.runtime import rpc

from components import DiscoveryError, RemoteClusterRegistration, RemoteClusterRegistrationArgs

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
CLUSTER = "kubernetes:multicluster.solo.io/v1alpha1:KubernetesCluster"
COMMAND = "command:local:Command"
PROVIDER = "pulumi:providers:kubernetes"


def args(**overrides: Any) -> RemoteClusterRegistrationArgs:
    base: dict[str, Any] = {
        "cluster_name": "remote-cluster",
        "mgmt_context": "kind-mgmt-cluster",
        "remote_context": "kind-remote-cluster",
    }
    base.update(overrides)
    return base  # type: ignore[return-value]


def register(*registrations: RemoteClusterRegistrationArgs, fake: FakeClusters | None = None) -> RecordingMonitor:
    def program() -> None:
        for registration in registrations:
            RemoteClusterRegistration(registration["cluster_name"], registration)

    return run_program(program, fake)


@pytest.fixture
def recorded() -> RecordingMonitor:
    return register(args())


def test_two_providers_and_every_kubernetes_resource_uses_an_explicit_one(recorded: RecordingMonitor) -> None:
    providers = {r.urn: r for r in recorded.registered(PROVIDER)}
    assert {plain(p.inputs).get("context") for p in providers.values()} == {"kind-mgmt-cluster", "kind-remote-cluster"}
    mgmt = next(u for u, p in providers.items() if plain(p.inputs).get("context") == "kind-mgmt-cluster")
    remote = next(u for u, p in providers.items() if plain(p.inputs).get("context") == "kind-remote-cluster")
    kubernetes = [r for r in recorded.records if r.type.startswith("kubernetes:")]
    assert kubernetes, "no kubernetes resource recorded"
    for r in kubernetes:
        assert r.provider_urn in providers, f"{r.type} {r.name} would use a default provider ({r.provider!r})"
    on_mgmt = {r.type for r in kubernetes if r.provider_urn == mgmt}
    on_remote = {r.type for r in kubernetes if r.provider_urn == remote}
    assert on_mgmt == {CLUSTER, SECRET, "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"}
    assert on_remote == {NAMESPACE, SECRET, RELEASE}
    assert all(r.op == "read" for r in kubernetes if r.provider_urn == mgmt and r.type != CLUSTER)


def test_every_child_is_parented_to_the_component(recorded: RecordingMonitor) -> None:
    component = recorded.one("gloo-mesh-relay:index:RemoteClusterRegistration")
    children = [r for r in recorded.records if r is not component]
    assert children and all(r.parent == component.urn for r in children)


def test_root_ca_copy_holds_ca_crt_only_and_is_secret(recorded: RecordingMonitor) -> None:
    source = recorded.one(SECRET, "relay-root-tls-secret", op="read")
    assert source.resource_id == "gloo-mesh/relay-root-tls-secret"
    copy = recorded.one(SECRET, "-root-ca")
    data = copy.inputs["data"]
    assert rpc.is_rpc_secret(data), "the CA copy's data must be a secret input"
    assert plain(data) == {"ca.crt": b64(CA_CERT)}
    assert plain(copy.inputs)["metadata"]["name"] == "relay-root-tls-secret"
    assert plain(copy.inputs)["metadata"]["namespace"] == "gloo-mesh"
    assert CA_PRIVATE_KEY not in json.dumps(plain(copy.inputs)) and b64(CA_PRIVATE_KEY) not in json.dumps(
        plain(copy.inputs)
    )


def test_secret_reads_mark_their_data_secret(recorded: RecordingMonitor) -> None:
    for read in recorded.reads(SECRET):
        assert set(read.additional_secret_outputs) >= {"data"}


def test_bootstrap_token_goes_to_the_remote_on_stdin_as_a_secret(recorded: RecordingMonitor) -> None:
    place = recorded.one(COMMAND, "bootstrap-token")
    assert rpc.is_rpc_secret(place.inputs["stdin"])
    manifest = json.loads(plain(place.inputs)["stdin"])
    assert manifest["metadata"] == {
        "name": "relay-identity-token-secret",
        "namespace": "gloo-mesh",
        "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gloo-mesh-registration"},
    }
    assert base64.b64decode(manifest["data"]["token"]).decode() == BOOTSTRAP_TOKEN
    assert set(place.additional_secret_outputs) >= {"stdout", "stderr"}
    assert plain(place.inputs)["addPreviousOutputInEnv"] is False
    wait = recorded.one(COMMAND, "client-certificate")
    assert rpc.is_rpc_secret(wait.inputs["stdin"]) and plain(wait.inputs)["stdin"] == plain(place.inputs)["stdin"]
    # The token is never a long-lived Secret resource: a refresh must not bring it back.
    assert not [r for r in recorded.registered(SECRET) if "identity-token" in json.dumps(plain(r.inputs))]


def test_release_inputs(recorded: RecordingMonitor) -> None:
    release = plain(recorded.one(RELEASE).inputs)
    assert release["name"] == "enterprise-agent"
    assert release["chart"] == "enterprise-agent"
    assert release["version"] == "1.1.6"
    assert release["namespace"] == "gloo-mesh"
    assert release["repositoryOpts"] == {"repo": "https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent"}
    assert release["values"] == {
        "relay": {
            "serverAddress": "203.0.113.10:9900",
            "cluster": "remote-cluster",
            "authority": "enterprise-networking.gloo-mesh",
            "rootTlsSecret": {"name": "relay-root-tls-secret", "namespace": "gloo-mesh"},
            "clientCertSecret": {"name": "relay-client-tls-secret", "namespace": "gloo-mesh"},
            "tokenSecret": {"name": "relay-identity-token-secret", "namespace": "gloo-mesh", "key": "token"},
        }
    }


def test_kubernetes_cluster_inputs(recorded: RecordingMonitor) -> None:
    cluster = plain(recorded.one(CLUSTER).inputs)
    assert cluster["apiVersion"] == "multicluster.solo.io/v1alpha1"
    assert cluster["kind"] == "KubernetesCluster"
    assert cluster["metadata"]["name"] == "remote-cluster"
    assert cluster["metadata"]["namespace"] == "gloo-mesh"
    assert cluster["spec"] == {"clusterDomain": "cluster.local"}


def test_namespace_is_labelled_against_sidecar_injection(recorded: RecordingMonitor) -> None:
    namespace = plain(recorded.one(NAMESPACE).inputs)
    assert namespace["metadata"] == {"name": "gloo-mesh", "labels": {"istio-injection": "disabled"}}


def _waits_on(recorded: RecordingMonitor, later: Recorded, earlier: Recorded) -> bool:
    return earlier.urn in recorded.ancestors_closure(later.urn)


def test_step_order_from_recorded_dependencies(recorded: RecordingMonitor) -> None:
    namespace = recorded.one(NAMESPACE)
    root_ca = recorded.one(SECRET, "-root-ca")
    token = recorded.one(COMMAND, "bootstrap-token")
    release = recorded.one(RELEASE)
    cluster = recorded.one(CLUSTER)
    wait = recorded.one(COMMAND, "client-certificate")
    version_read = recorded.one("kubernetes:apps/v1:Deployment", op="read")
    address_read = recorded.one("kubernetes:core/v1:Service", op="read")
    ordered = [
        (root_ca, namespace),
        (token, namespace),
        (release, namespace),
        (release, root_ca),
        (release, token),
        (release, version_read),
        (release, address_read),
        (cluster, release),
        (wait, cluster),
        (wait, release),
    ]
    for later, earlier in ordered:
        assert _waits_on(recorded, later, earlier), f"{later.name} does not wait on {earlier.name}"
    for later, earlier in ordered:
        assert not _waits_on(recorded, earlier, later), f"cycle: {earlier.name} waits on {later.name}"


def destroy_order(recorded: RecordingMonitor) -> list[str]:
    """Emulates the engine's delete order: a resource is deleted only after everything that depends on it
    (pulumi/pulumi ``pkg/resource/graph/dependency_graph.go``, DependingOn); reads are external and never
    deleted (pulumi docs, "Resource get functions")."""
    managed = {r.urn: r for r in recorded.registered() if r.custom and not r.type.startswith("pulumi:providers:")}
    remaining = dict(managed)
    order: list[str] = []
    while remaining:
        ready = [u for u in remaining if not any(u in recorded.ancestors_closure(o) for o in remaining if o != u)]
        assert ready, "dependency cycle"
        for urn in sorted(ready):
            order.append(remaining.pop(urn).name)
    return order


def test_destroy_deregisters_in_the_safe_order(recorded: RecordingMonitor) -> None:
    order = destroy_order(recorded)
    position = {name: i for i, name in enumerate(order)}
    assert position["remote-cluster-kubernetes-cluster"] < position["remote-cluster-agent"]
    assert position["remote-cluster-agent"] < position["remote-cluster-root-ca"]
    # The bootstrap-token step's delete removes the token and the agent's client certificate, after the release.
    assert position["remote-cluster-agent"] < position["remote-cluster-bootstrap-token"]
    assert position["remote-cluster-namespace"] == len(order) - 1
    delete_script = plain(recorded.one(COMMAND, "bootstrap-token").inputs)["delete"]
    assert 'k delete secret "$GM_TOKEN_SECRET" "$GM_CLIENT_CERT_SECRET"' in delete_script
    # Nothing managed is a CRD or lives in the management cluster but the KubernetesCluster.
    assert not [r for r in recorded.registered() if "CustomResourceDefinition" in r.type]
    assert {r.type for r in recorded.reads()} <= {SECRET, "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"}


def test_no_secret_value_outside_a_secret_input() -> None:
    recorded = register(args(remote_kubeconfig=KUBECONFIG_CONTENTS, remote_context="kind-remote-cluster"))
    needles = [v for s in SECRET_VALUES for v in (s, b64(s))]
    checked = 0
    for r in recorded.records:
        for path, leaf, in_secret in walk(r.inputs):
            checked += 1
            if in_secret or not isinstance(leaf, str):
                continue
            for needle in needles:
                assert needle not in leaf, f"{r.type} {r.name} input {path} holds a secret in plain text"
    assert checked > 50
    remote_provider = next(r for r in recorded.registered(PROVIDER) if r.name.endswith("-remote"))
    assert rpc.is_rpc_secret(remote_provider.inputs["kubeconfig"])
    wait = recorded.one(COMMAND, "client-certificate")
    assert rpc.is_rpc_secret(wait.inputs["environment"])


def test_commands_never_carry_secrets_in_their_scripts(recorded: RecordingMonitor) -> None:
    for command in recorded.registered(COMMAND):
        for key in ("create", "update", "delete"):
            script = plain(command.inputs).get(key) or ""
            for secret in SECRET_VALUES:
                assert secret not in script and b64(secret) not in script


def test_two_clusters_in_one_stack_share_nothing_but_the_management_cluster() -> None:
    fleet = register(args(cluster_name="east", remote_context="east"), args(cluster_name="west", remote_context="west"))
    by_cluster: dict[str, set[str]] = {"east": set(), "west": set()}
    components = {r.name: r.urn for r in fleet.registered("gloo-mesh-relay:index:RemoteClusterRegistration")}
    for r in fleet.records:
        for cluster, urn in components.items():
            if r.parent == urn:
                by_cluster[cluster].add(r.urn)
    assert by_cluster["east"] and by_cluster["west"]
    for r in fleet.records:
        for cluster, own in by_cluster.items():
            other = by_cluster["west" if cluster == "east" else "east"]
            if r.urn in own:
                assert not (fleet.ancestors_closure(r.urn) & other), f"{r.name} waits on the other cluster"
                assert r.provider_urn not in other


def test_two_registrations_with_the_same_cluster_name_are_an_error() -> None:
    with pytest.raises(Exception, match="already registered with the same management plane"):
        register(args(cluster_name="twin"), {**args(cluster_name="twin", remote_context="other")})


def test_insecure_mode_skips_secrets_wait_and_token() -> None:
    recorded = register(args(insecure=True, agent_version="1.1.6"))
    assert not recorded.registered(COMMAND)
    assert not recorded.reads(SECRET)
    assert not recorded.registered(SECRET)
    values = plain(recorded.one(RELEASE).inputs)["values"]
    assert values["global"] == {"insecure": True}
    assert "rootTlsSecret" not in values["relay"] and "tokenSecret" not in values["relay"]
    legacy = register(args(insecure=True, agent_version="1.0.9"))
    assert plain(legacy.one(RELEASE).inputs)["values"]["relay"]["insecure"] is True


def test_existing_namespace_is_labelled_and_never_deleted() -> None:
    recorded = register(args(create_remote_namespace=False))
    assert not recorded.registered(NAMESPACE)
    patch = recorded.one("kubernetes:core/v1:NamespacePatch")
    assert plain(patch.inputs)["metadata"]["labels"] == {"istio-injection": "disabled"}
    assert patch.retain_on_delete, "pulumi destroy must leave a namespace the user already had"
    created = register(args()).one(NAMESPACE)
    assert not created.retain_on_delete, "a namespace the registration created is deleted with it"
    assert _waits_on(recorded, recorded.one(RELEASE), patch)


def test_given_providers_are_used_and_none_declared() -> None:
    def program() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        remote = k8s.Provider("platform-east", context="ctx-east")
        RemoteClusterRegistration(
            "east",
            {"cluster_name": "east", "mgmt_provider": mgmt, "remote_provider": remote, "remote_context": "ctx-east"},
        )

    recorded = run_program(program)
    providers = {r.urn: r.name for r in recorded.registered(PROVIDER)}
    assert sorted(providers.values()) == ["platform-east", "platform-mgmt"]
    assert providers[recorded.one(RELEASE).provider_urn] == "platform-east"
    assert providers[recorded.one(CLUSTER).provider_urn] == "platform-mgmt"


def test_agent_values_merge_under_the_registration_values() -> None:
    recorded = register(
        args(agent_values={"enterpriseAgent": {"floatingUserId": True}, "relay": {"maxGrpcMessageSize": "8Mi"}})
    )
    values = plain(recorded.one(RELEASE).inputs)["values"]
    assert values["enterpriseAgent"] == {"floatingUserId": True}
    assert values["relay"]["maxGrpcMessageSize"] == "8Mi"
    assert values["relay"]["cluster"] == "remote-cluster"


def test_outputs_resolve(recorded: RecordingMonitor) -> None:
    outputs: dict[str, Any] = {}

    def program() -> None:
        r = RemoteClusterRegistration("remote-cluster", args())
        pulumi.Output.all(
            r.cluster_name, r.relay_server_address, r.agent_version, r.remote_namespace, r.release_status
        ).apply(lambda v: outputs.update(zip(["name", "address", "version", "namespace", "status"], v, strict=True)))

    run_program(program)
    assert outputs == {
        "name": "remote-cluster",
        "address": "203.0.113.10:9900",
        "version": "1.1.6",
        "namespace": "gloo-mesh",
        "status": "deployed",
    }


# -- discovery ---------------------------------------------------------------------------------------------


def _with(mutate: Callable[[FakeClusters], object]) -> FakeClusters:
    fake = FakeClusters()
    mutate(fake)
    return fake


def _server_image(image: str) -> Callable[[FakeClusters], None]:
    def mutate(fake: FakeClusters) -> None:
        deployment = fake.objects[("kubernetes:apps/v1:Deployment", "gloo-mesh/enterprise-networking")]
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return mutate


def test_version_is_the_server_image_tag_with_v_stripped() -> None:
    recorded = register(
        args(), fake=_with(_server_image("registry.local:5000/gloo-mesh/enterprise-networking:v1.2.0-beta1"))
    )
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.2.0-beta1"


def test_given_version_skips_discovery() -> None:
    recorded = register(args(agent_version="v1.1.9"))
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.1.9"
    assert not recorded.reads("kubernetes:apps/v1:Deployment")


def test_digest_pinned_server_image_is_a_clear_error() -> None:
    fake = _with(_server_image("gcr.io/gloo-mesh/enterprise-networking@sha256:" + "a" * 64))
    with pytest.raises(DiscoveryError, match=r"digest-pinned.*Fix: set agent_version"):
        register(args(), fake=fake)


def test_missing_server_deployment_fails() -> None:
    fake = _with(lambda f: f.objects.pop(("kubernetes:apps/v1:Deployment", "gloo-mesh/enterprise-networking")))
    with pytest.raises(Exception, match="gloo-mesh/enterprise-networking"):
        register(args(), fake=fake)


def test_pending_load_balancer_is_a_clear_error() -> None:
    def pending(fake: FakeClusters) -> None:
        fake.objects[("kubernetes:core/v1:Service", "gloo-mesh/enterprise-networking")]["status"] = {"loadBalancer": {}}

    with pytest.raises(DiscoveryError, match=r"no LoadBalancer ingress address yet.*set relay_server_address"):
        register(args(agent_version="1.1.6"), fake=_with(pending))


def test_load_balancer_hostname_is_used_on_eks() -> None:
    def hostname(fake: FakeClusters) -> None:
        fake.objects[("kubernetes:core/v1:Service", "gloo-mesh/enterprise-networking")]["status"] = {
            "loadBalancer": {"ingress": [{"hostname": "a1b2.elb.eu-west-1.amazonaws.com"}]}
        }

    recorded = register(args(), fake=_with(hostname))
    values = plain(recorded.one(RELEASE).inputs)["values"]
    assert values["relay"]["serverAddress"] == "a1b2.elb.eu-west-1.amazonaws.com:9900"


def test_istio_ingress_nodeport_discovery_as_in_the_guide() -> None:
    recorded = register(args(relay_discovery="istio-ingress-nodeport", relay_node_name="mgmt-cluster-control-plane"))
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "172.18.0.2:32443"
    assert recorded.one("kubernetes:core/v1:Node", op="read").resource_id == "mgmt-cluster-control-plane"


def test_discovery_runs_in_preview() -> None:
    def program() -> None:
        RemoteClusterRegistration("remote-cluster", args())

    recorded = run_program(program, preview=True)
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "203.0.113.10:9900"
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.1.6"


# -- management secrets check ------------------------------------------------------------------------------


def test_missing_management_secret_fails_naming_secret_namespace_and_context() -> None:
    fake = _with(lambda f: f.objects.pop((SECRET, "gloo-mesh/relay-root-tls-secret")))
    with pytest.raises(DiscoveryError) as raised:
        register(args(), fake=fake)
    message = str(raised.value)
    assert "'relay-root-tls-secret'" in message and "'gloo-mesh'" in message and "'kind-mgmt-cluster'" in message
    # The read waits for the check, so the engine's own "not found" never comes first.
    assert not [r for r in fake.invokes if r.token != "command:local:run"]


def test_empty_bootstrap_token_fails_the_preview() -> None:
    fake = _with(lambda f: f.secret_data("gloo-mesh/relay-identity-token-secret").update(token=""))
    with pytest.raises(DiscoveryError, match="no non-empty key 'token'"):
        register(args(), fake=fake)


def test_secrets_check_runs_kubectl_without_secrets_in_its_command() -> None:
    fake = FakeClusters()
    register(args(mgmt_kubeconfig=KUBECONFIG_CONTENTS), fake=fake)
    (check,) = [call for call in fake.invokes if call.token == "command:local:run"]
    assert "get secret relay-root-tls-secret -n gloo-mesh" in check.args["command"]
    assert "kubeconfig-bearer" not in check.args["command"]
    assert check.args["environment"]["GM_KUBECONFIG"] == KUBECONFIG_CONTENTS


def test_provider_only_management_cluster_still_gets_a_clear_error_for_a_missing_key() -> None:
    """Without kubectl access to the management cluster there is no secrets check; the copy step says it instead."""
    fake = _with(lambda f: f.secret_data("gloo-mesh/relay-root-tls-secret").pop("ca.crt"))

    def program() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        RemoteClusterRegistration("east", {"cluster_name": "east", "mgmt_provider": mgmt, "remote_context": "east"})

    with pytest.raises(DiscoveryError, match=r"secret 'relay-root-tls-secret' .* has no non-empty key 'ca.crt'"):
        run_program(program, fake)
    assert not [call for call in fake.invokes if call.token == "command:local:run"]


def test_version_and_address_may_be_outputs_of_other_resources() -> None:
    def program() -> None:
        RemoteClusterRegistration(
            "remote-cluster",
            args(
                agent_version=pulumi.Output.from_input("v1.1.7"),
                relay_server_address=pulumi.Output.from_input("relay.example.com:443"),
            ),
        )

    recorded = run_program(program)
    release = plain(recorded.one(RELEASE).inputs)
    assert release["version"] == "1.1.7"
    assert release["values"]["relay"]["serverAddress"] == "relay.example.com:443"
    assert not recorded.reads("kubernetes:apps/v1:Deployment") and not recorded.reads("kubernetes:core/v1:Service")


def test_an_output_address_is_checked_when_it_resolves() -> None:
    def program() -> None:
        RemoteClusterRegistration("remote-cluster", args(relay_server_address=pulumi.Output.from_input("no-port")))

    with pytest.raises(Exception, match="relay_server_address: 'no-port' has no valid port"):
        run_program(program)


def _fleet_through_one_management_provider(count: int) -> RecordingMonitor:
    def program() -> None:
        mgmt = k8s.Provider("management", context="kind-mgmt-cluster")
        for i in range(count):
            RemoteClusterRegistration(
                f"c{i}",
                {
                    "cluster_name": f"c{i}",
                    "mgmt_provider": mgmt,
                    "mgmt_context": "kind-mgmt-cluster",
                    "remote_context": f"c{i}",
                },
            )

    return run_program(program)


def test_a_shared_management_provider_reads_each_management_object_once() -> None:
    recorded = _fleet_through_one_management_provider(3)
    fake = recorded.fake
    reads = sorted((r.type, r.resource_id) for r in recorded.reads())
    assert reads == [
        ("kubernetes:apps/v1:Deployment", "gloo-mesh/enterprise-networking"),
        (SECRET, "gloo-mesh/relay-identity-token-secret"),
        (SECRET, "gloo-mesh/relay-root-tls-secret"),
        ("kubernetes:core/v1:Service", "gloo-mesh/enterprise-networking"),
    ]
    assert len([call for call in fake.invokes if call.token == "command:local:run"]) == 1
    stack_urn = next(r.parent for r in recorded.registered("gloo-mesh-relay:index:RemoteClusterRegistration"))
    assert all(r.parent == stack_urn for r in recorded.reads()), "shared reads belong to no single registration"
    # Every cluster still gets its own copy of each value.
    releases = [plain(r.inputs) for r in recorded.registered(RELEASE)]
    assert [
        r["values"]["relay"]["cluster"] for r in sorted(releases, key=lambda r: r["values"]["relay"]["cluster"])
    ] == ["c0", "c1", "c2"]
    assert {r["version"] for r in releases} == {"1.1.6"}
    assert {r["values"]["relay"]["serverAddress"] for r in releases} == {"203.0.113.10:9900"}


def test_shared_reads_keep_the_clusters_independent() -> None:
    recorded = _fleet_through_one_management_provider(2)
    components = {r.urn for r in recorded.registered("gloo-mesh-relay:index:RemoteClusterRegistration")}
    owner = {r.urn: r.parent for r in recorded.records if r.parent in components}
    for urn, parent in owner.items():
        others = {u for u, p in owner.items() if p != parent}
        assert not (recorded.ancestors_closure(urn) & others)
    release_urns = [r.urn for r in recorded.registered(RELEASE)]
    shared = {r.urn for r in recorded.reads()}
    for urn in release_urns:
        assert recorded.ancestors_closure(urn) & shared, "each release waits on the shared discovery reads"


def test_a_missing_secret_with_shared_reads_still_names_secret_namespace_and_context() -> None:
    def program() -> None:
        mgmt = k8s.Provider("management", context="kind-mgmt-cluster")
        for name in ("a", "b"):
            RemoteClusterRegistration(
                name,
                {
                    "cluster_name": name,
                    "mgmt_provider": mgmt,
                    "mgmt_context": "kind-mgmt-cluster",
                    "remote_context": name,
                },
            )

    fake = _with(lambda f: f.objects.pop((SECRET, "gloo-mesh/relay-identity-token-secret")))
    with pytest.raises(
        DiscoveryError,
        match=r"secret 'relay-identity-token-secret' in namespace 'gloo-mesh' .*context 'kind-mgmt-cluster'",
    ):
        run_program(program, fake)


def test_wait_step_streams_progress_and_knows_the_relay_address_for_its_timeout_message(
    recorded: RecordingMonitor,
) -> None:
    wait = plain(recorded.one(COMMAND, "client-certificate").inputs)
    assert wait["logging"] == "stderr", "progress lines go to the Pulumi output; stdout is not streamed"
    assert wait["environment"]["GM_RELAY_ADDRESS"] == "203.0.113.10:9900"
    assert wait["environment"]["GM_RELAY_AUTHORITY"] == "enterprise-networking.gloo-mesh"
    assert wait["environment"]["GM_KUBE_CONTEXT"] == "kind-remote-cluster"
    assert "GM_TIMEOUT=300" in wait["create"] and wait["update"] == wait["create"]
