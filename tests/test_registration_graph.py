"""What the engine would receive for a registration: providers, inputs, secretness and step order."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from builders import registration_args, run_registrations
from pulumi.runtime import rpc

from gloo_mesh_registration import (
    DiscoveryError,
    RegistrationConfigError,
    RemoteClusterRegistration,
    RemoteClusterRegistrationArgs,
)
from gloo_mesh_registration.agent_generation import GENERATIONS, GenerationName
from gloo_mesh_registration.facts import image_tag
from gloo_mesh_registration.lifecycle import (
    CHECK_KUBECTL,
    ENSURE_CERTIFICATE,
    FIND_EXISTING,
    FORGET_IDENTITY,
    KEEP_TOKEN,
    PLACE_TOKEN,
    READ_RELAY_SECRETS,
    KubectlError,
)
from gloo_mesh_registration.preflight import ConflictError
from lab.engine_double import (
    BOOTSTRAP_TOKEN,
    CA_CERT,
    CA_PRIVATE_KEY,
    CLUSTER_1X,
    COMMAND,
    COMPONENT,
    DEPLOYMENT,
    KEEPS_TOKEN,
    KUBECONFIG_CONTENTS,
    KUBECTL_CHECKED_BY,
    KUBERNETES_PROVIDER,
    NAMESPACE,
    NAMESPACE_PATCH,
    NODE,
    RELEASE,
    REMOVES_TOKEN,
    SECRET,
    SECRET_VALUES,
    SERVICE,
    CommandFailedError,
    DuplicateURNError,
    FakeClusters,
    Invocation,
    Recorded,
    RecordingMonitor,
    b64,
    plain,
    run_program,
    walk,
)


def args(**overrides: Any) -> RemoteClusterRegistrationArgs:
    """The guide's kind setup (stacks/Pulumi.dev.yaml's names), which the tests below compare with."""
    return registration_args("remote-cluster", "kind-mgmt-cluster", "kind-remote-cluster", **overrides)


def register(*registrations: RemoteClusterRegistrationArgs, fake: FakeClusters | None = None) -> RecordingMonitor:
    """Each registration under its cluster's name, as the stack program names them."""
    return run_registrations(*((r["cluster_name"], r) for r in registrations), fake=fake)


@pytest.fixture
def recorded() -> RecordingMonitor:
    return register(args())


def test_two_providers_and_every_kubernetes_resource_uses_an_explicit_one(recorded: RecordingMonitor) -> None:
    providers = {r.urn: r for r in recorded.registered(KUBERNETES_PROVIDER)}
    assert {plain(p.inputs).get("context") for p in providers.values()} == {"kind-mgmt-cluster", "kind-remote-cluster"}
    mgmt = next(u for u, p in providers.items() if plain(p.inputs).get("context") == "kind-mgmt-cluster")
    remote = next(u for u, p in providers.items() if plain(p.inputs).get("context") == "kind-remote-cluster")
    kubernetes = [r for r in recorded.records if r.type.startswith("kubernetes:")]
    assert kubernetes, "no kubernetes resource recorded"
    for r in kubernetes:
        assert r.provider_urn in providers, f"{r.type} {r.name} would use a default provider ({r.provider!r})"
    on_mgmt = {r.type for r in kubernetes if r.provider_urn == mgmt}
    on_remote = {r.type for r in kubernetes if r.provider_urn == remote}
    assert on_mgmt == {CLUSTER_1X, DEPLOYMENT, SERVICE}
    assert on_remote == {NAMESPACE, SECRET, RELEASE}
    assert all(r.op == "read" for r in kubernetes if r.provider_urn == mgmt and r.type != CLUSTER_1X)


def test_declared_providers_update_secrets_in_place(recorded: RecordingMonitor) -> None:
    """Without enableSecretMutable the kubernetes provider replaces a Secret whose data changes: a rotated root CA
    would delete the copy (delete-before-replace) before writing it again (tests/e2e/test_drift_and_rotation.py)."""
    providers = recorded.registered(KUBERNETES_PROVIDER)
    assert len(providers) == 2
    for provider in providers:
        assert plain(provider.inputs).get("enableSecretMutable") in (True, "true"), provider.name


def test_every_child_is_parented_to_the_component(recorded: RecordingMonitor) -> None:
    component = recorded.one(COMPONENT)
    children = [r for r in recorded.records if r is not component]
    assert children and all(r.parent == component.urn for r in children)


def test_root_ca_copy_holds_ca_crt_only_and_is_secret(recorded: RecordingMonitor) -> None:
    copy = recorded.one(SECRET, "-root-ca")
    data = copy.inputs["data"]
    assert rpc.is_rpc_secret(data), "the CA copy's data must be a secret input"
    assert plain(data) == {"ca.crt": b64(CA_CERT)}
    assert plain(copy.inputs)["metadata"]["name"] == "relay-root-tls-secret"
    assert plain(copy.inputs)["metadata"]["namespace"] == "gloo-mesh"
    assert CA_PRIVATE_KEY not in json.dumps(plain(copy.inputs)) and b64(CA_PRIVATE_KEY) not in json.dumps(
        plain(copy.inputs)
    )


def test_no_management_secret_is_read_as_a_resource(recorded: RecordingMonitor) -> None:
    """A read step's outputs are checkpointed whole (pulumi/pulumi pkg/resource/deploy/step.go, ReadStep.Apply): a
    ``Secret.get`` of relay-root-tls-secret would put the CA's private key into the state (issue 9, defect 1).
    ca.crt and the token come from the kubectl invoke instead, whose result the engine does not store."""
    assert recorded.reads(SECRET) == []
    (relay_read,) = recorded.invoked(READ_RELAY_SECRETS)
    arguments = plain(relay_read.args)
    assert arguments["environment"]["GM_RELAY_SECRETS"] == (
        "relay-root-tls-secret=ca.crt relay-identity-token-secret=token"
    )
    assert arguments["environment"]["GM_NAMESPACE"] == "gloo-mesh"
    assert arguments["environment"]["GM_KUBE_CONTEXT"] == "kind-mgmt-cluster"
    assert arguments["logging"] == "none"
    assert arguments["interpreter"][:2] == ["/bin/sh", "-c"]


def test_bootstrap_token_goes_to_the_remote_on_stdin_as_a_secret(recorded: RecordingMonitor) -> None:
    place = recorded.one(COMMAND, "bootstrap-token")
    assert rpc.is_rpc_secret(place.inputs["stdin"])
    manifest = json.loads(plain(place.inputs)["stdin"])
    assert (manifest["apiVersion"], manifest["kind"], manifest["type"]) == ("v1", "Secret", "Opaque")
    assert manifest["metadata"] == {
        "name": "relay-identity-token-secret",
        "namespace": "gloo-mesh",
        "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gloo-mesh-registration"},
    }
    assert base64.b64decode(manifest["data"]["token"]).decode() == BOOTSTRAP_TOKEN
    assert set(place.additional_secret_outputs) >= {"stdout", "stderr"}
    assert plain(place.inputs)["addPreviousOutputInEnv"] is False
    # Invoke arguments travel without secret markers (the SDK unwraps them and marks the result secret instead:
    # pulumi sdk/python/lib/pulumi/runtime/invoke.py, _invoke); nothing of an invoke is stored in the state.
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    assert wait.args["stdin"] == plain(place.inputs)["stdin"]
    # The token is never a long-lived Secret resource: a refresh must not bring it back.
    assert not [r for r in recorded.registered(SECRET) if "identity-token" in json.dumps(plain(r.inputs))]


def test_release_inputs(recorded: RecordingMonitor) -> None:
    release = plain(recorded.one(RELEASE).inputs)
    assert release["name"] == "enterprise-agent"
    assert release["chart"] == "enterprise-agent"
    assert release["version"] == "1.1.6"
    assert release["namespace"] == "gloo-mesh"
    assert release["repositoryOpts"] == {"repo": "https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent"}
    # The component owns the namespace (created, or patched when it exists): Helm must not create one it would own.
    assert release["createNamespace"] is False
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
    cluster = plain(recorded.one(CLUSTER_1X).inputs)
    assert cluster["apiVersion"] == "multicluster.solo.io/v1alpha1"
    assert cluster["kind"] == "KubernetesCluster"
    assert cluster["metadata"]["name"] == "remote-cluster"
    assert cluster["metadata"]["namespace"] == "gloo-mesh"
    assert cluster["spec"] == {"clusterDomain": "cluster.local"}


def test_namespace_is_labelled_against_sidecar_injection(recorded: RecordingMonitor) -> None:
    namespace = plain(recorded.one(NAMESPACE).inputs)
    assert namespace["metadata"] == {"name": "gloo-mesh", "labels": {"istio-injection": "disabled"}}


def test_objects_of_a_fixed_name_are_deleted_before_their_replacement(recorded: RecordingMonitor) -> None:
    """The CA copy and the KubernetesCluster carry fixed names (the agent's chart and the server look them up by
    name), so a replacement (a renamed namespace, a new cluster domain) created before the old one is deleted would
    fail with "already exists": the engine must delete first (``deleteBeforeReplace``)."""
    assert recorded.one(SECRET, "-root-ca").delete_before_replace
    assert recorded.one(CLUSTER_1X).delete_before_replace
    # What the engine may keep while it creates the new one: the release keeps its history, the namespace its agent.
    assert not recorded.one(RELEASE).delete_before_replace
    assert not recorded.one(NAMESPACE).delete_before_replace


def _waits_on(recorded: RecordingMonitor, later: Recorded, earlier: Recorded) -> bool:
    return earlier.urn in recorded.ancestors_closure(later.urn)


def test_step_order_from_recorded_dependencies(recorded: RecordingMonitor) -> None:
    namespace = recorded.one(NAMESPACE)
    root_ca = recorded.one(SECRET, "-root-ca")
    token = recorded.one(COMMAND, "bootstrap-token")
    release = recorded.one(RELEASE)
    cluster = recorded.one(CLUSTER_1X)
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    version_read = recorded.one(DEPLOYMENT, op="read")
    address_read = recorded.one(SERVICE, op="read")
    ordered = [
        (root_ca, namespace),
        (token, namespace),
        (release, namespace),
        (release, root_ca),
        (release, token),
        (release, version_read),
        (release, address_read),
        (cluster, release),
    ]
    for later, earlier in ordered:
        assert _waits_on(recorded, later, earlier), f"{later.name} does not wait on {earlier.name}"
    for later, earlier in ordered:
        assert not _waits_on(recorded, earlier, later), f"cycle: {earlier.name} waits on {later.name}"
    # The certificate step is an invoke: sent only once the release and the KubernetesCluster are registered.
    assert {release.urn, cluster.urn} <= set(wait.after)


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
    token = plain(recorded.one(COMMAND, "bootstrap-token").inputs)
    assert token["delete"] == FORGET_IDENTITY
    forget = token["interpreter"][2].split(f"  {FORGET_IDENTITY})", 1)[1].split(";;", 1)[0]
    assert 'k delete secret "$GM_TOKEN_SECRET" "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE"' in forget
    # Nothing managed is a CRD or lives in the management cluster but the KubernetesCluster.
    assert not [r for r in recorded.registered() if "CustomResourceDefinition" in r.type]
    assert {r.type for r in recorded.reads()} <= {SECRET, DEPLOYMENT, SERVICE}


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
    remote_provider = next(r for r in recorded.registered(KUBERNETES_PROVIDER) if r.name.endswith("-remote"))
    assert rpc.is_rpc_secret(remote_provider.inputs["kubeconfig"])
    assert rpc.is_rpc_secret(recorded.one(COMMAND, "bootstrap-token").inputs["environment"])


def test_commands_never_carry_secrets_in_their_scripts(recorded: RecordingMonitor) -> None:
    steps = [plain(c.inputs) for c in recorded.registered(COMMAND)] + [plain(i.args) for i in recorded.invocations]
    assert {i.command for i in recorded.invocations} == {
        CHECK_KUBECTL,
        READ_RELAY_SECRETS,
        ENSURE_CERTIFICATE,
        FIND_EXISTING,
    }
    assert len(steps) == 5
    for step in steps:
        script = json.dumps([step.get(key) for key in ("interpreter", "command", "create", "update", "delete")])
        for secret in SECRET_VALUES:
            assert secret not in script and b64(secret) not in script


def test_two_clusters_in_one_stack_share_nothing_but_the_management_cluster() -> None:
    fleet = register(args(cluster_name="east", remote_context="east"), args(cluster_name="west", remote_context="west"))
    by_cluster: dict[str, set[str]] = {"east": set(), "west": set()}
    components = {r.name: r.urn for r in fleet.registered(COMPONENT)}
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


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_a_run_checks_kubectl_once_and_tells_every_step_which_process_checked(preview: bool) -> None:
    """The kubectl check is a kubectl run: once per program run, not once per step. Every step (the Commands and
    each invoke) is told the PID the check printed, so the ones the same command provider starts skip it."""

    def program() -> None:
        RemoteClusterRegistration("east", args(cluster_name="east", remote_context="east"))
        RemoteClusterRegistration("west", args(cluster_name="west", remote_context="west"))

    fleet = run_program(program, preview=preview)
    assert [i.command for i in fleet.invocations].count(CHECK_KUBECTL) == 1
    steps = [i for i in fleet.invocations if i.command != CHECK_KUBECTL]
    environments = [plain(i.args)["environment"] for i in steps]
    if not preview:
        environments += [plain(c.inputs)["environment"] for c in fleet.registered(COMMAND)]
    assert len(environments) >= (4 if preview else 6)
    assert all(environment.get("GM_KUBECTL_CHECKED_BY") == KUBECTL_CHECKED_BY for environment in environments)


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_a_kubectl_that_cannot_run_the_steps_fails_the_run_with_the_check_message_before_any_cluster_resource(
    preview: bool,
) -> None:
    """The run's kubectl check fails: its message, which names the fix, is the run's error (a RunError: no traceback),
    and no resource of the cluster is declared (the management Provider and its reads may be)."""
    fake = FakeClusters()
    fake.kubectl_fails = "error: kubectl 1.31 or newer is required (found: 1 28); install a newer kubectl"
    with pytest.raises(KubectlError) as raised:
        run_program(lambda: RemoteClusterRegistration("remote-cluster", args()), fake, preview=preview)
    assert isinstance(raised.value, pulumi.RunError)
    assert str(raised.value) == fake.kubectl_fails
    assert [i.args.get("command") for i in fake.invokes] == [CHECK_KUBECTL]


def test_two_registrations_with_the_same_cluster_name_are_an_error() -> None:
    def program() -> None:
        RemoteClusterRegistration("first", args(cluster_name="twin"))
        RemoteClusterRegistration("second", args(cluster_name="twin", remote_context="other"))

    with pytest.raises(
        RegistrationConfigError,
        match=r"^cluster_name: 'twin' is already registered with the same management plane by 'first' in this "
        r"program; two agents under one name claim each other's relay identity\. "
        r"Fix: give every registered cluster a unique cluster_name$",
    ):
        run_program(program)


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
    patch = recorded.one(NAMESPACE_PATCH)
    assert plain(patch.inputs)["metadata"]["name"] == "gloo-mesh"
    assert plain(patch.inputs)["metadata"]["labels"] == {"istio-injection": "disabled"}
    # Another field manager may own the label already (kubectl label, meshctl): the patch takes it over
    # (pulumi-kubernetes' server-side apply annotation, spelled exactly so).
    assert plain(patch.inputs)["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    assert patch.retain_on_delete, "pulumi destroy must leave a namespace the user already had"
    created = register(args()).one(NAMESPACE)
    assert not created.retain_on_delete, "a namespace the registration created is deleted with it"
    assert _waits_on(recorded, recorded.one(RELEASE), patch)


def test_toggling_create_namespace_is_an_update_of_the_same_object_not_a_delete() -> None:
    """Issue 9, defect 2: Namespace and NamespacePatch share the logical name, and the type is part of the URN; each
    aliases the other's URN so the engine carries the state over instead of deleting the old Namespace (and the agent
    in it) or creating one that already exists. Shown for real in tests/e2e/test_namespace_toggle.py."""
    patch = register(args(create_remote_namespace=False)).one(NAMESPACE_PATCH)
    created = register(args()).one(NAMESPACE)
    assert patch.name == created.name == "remote-cluster-namespace"
    # An empty parentUrn is the resource's own parent (pulumi/pulumi pkg/resource/deploy/source_eval.go).
    assert patch.aliases == ({"spec": {"type": NAMESPACE, "parentUrn": ""}},)
    assert created.aliases == ({"spec": {"type": NAMESPACE_PATCH, "parentUrn": ""}},)


def test_given_providers_are_used_and_none_declared() -> None:
    def program() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        remote = k8s.Provider("platform-east", context="ctx-east")
        RemoteClusterRegistration(
            "east", registration_args("east", "ctx-mgmt", "ctx-east", mgmt_provider=mgmt, remote_provider=remote)
        )

    recorded = run_program(program)
    providers = {r.urn: r.name for r in recorded.registered(KUBERNETES_PROVIDER)}
    assert sorted(providers.values()) == ["platform-east", "platform-mgmt"]
    assert providers[recorded.one(RELEASE).provider_urn] == "platform-east"
    assert providers[recorded.one(CLUSTER_1X).provider_urn] == "platform-mgmt"


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


def test_the_component_registers_its_outputs_under_their_attribute_names(recorded: RecordingMonitor) -> None:
    """What the engine stores as the component's outputs (``pulumi stack export``), one per documented output."""
    (component,) = recorded.registered(COMPONENT)
    outputs = plain(recorded.registered_outputs[component.urn])
    assert outputs == {
        "cluster_name": "remote-cluster",
        "relay_server_address": "203.0.113.10:9900",
        "agent_version": "1.1.6",
        "remote_namespace": "gloo-mesh",
        "release_status": "deployed",
        "client_certificate_issued": True,
    }


# -- discovery ---------------------------------------------------------------------------------------------


def _with(mutate: Callable[[FakeClusters], object]) -> FakeClusters:
    fake = FakeClusters()
    mutate(fake)
    return fake


def _server_image(image: str) -> Callable[[FakeClusters], None]:
    def mutate(fake: FakeClusters) -> None:
        deployment = fake.objects[(DEPLOYMENT, "gloo-mesh/enterprise-networking")]
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return mutate


def _load_balancer(status: dict[str, Any]) -> Callable[[FakeClusters], None]:
    """The server Service's ``status.loadBalancer``, as the cloud has filled it in (or not yet)."""

    def mutate(fake: FakeClusters) -> None:
        fake.objects[(SERVICE, "gloo-mesh/enterprise-networking")]["status"] = {"loadBalancer": status}

    return mutate


def test_version_is_the_server_image_tag_with_v_stripped() -> None:
    recorded = register(
        args(), fake=_with(_server_image("registry.local:5000/gloo-mesh/enterprise-networking:v1.2.0-beta1"))
    )
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.2.0-beta1"


def test_given_version_skips_discovery() -> None:
    recorded = register(args(agent_version="v1.1.9"))
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.1.9"
    assert not recorded.reads(DEPLOYMENT)


def test_digest_pinned_server_image_is_a_clear_error() -> None:
    image = "gcr.io/gloo-mesh/enterprise-networking@sha256:" + "a" * 64
    with pytest.raises(DiscoveryError) as raised:
        register(args(), fake=_with(_server_image(image)))
    assert str(raised.value) == (
        f"Deployment gloo-mesh/enterprise-networking (context 'kind-mgmt-cluster') runs image '{image}', which has no "
        "tag (digest-pinned), so the agent version cannot be read from it. Fix: set agent_version to the "
        "enterprise-networking version."
    )


def test_a_server_deployment_without_containers_is_a_clear_error() -> None:
    def without_containers(fake: FakeClusters) -> None:
        fake.objects[(DEPLOYMENT, "gloo-mesh/enterprise-networking")]["spec"]["template"]["spec"]["containers"] = []

    with pytest.raises(DiscoveryError) as raised:
        register(args(), fake=_with(without_containers))
    assert str(raised.value) == (
        "Deployment gloo-mesh/enterprise-networking (context 'kind-mgmt-cluster') has no networking container image. "
        "Fix: set agent_version."
    )


def test_missing_server_deployment_fails() -> None:
    fake = _with(lambda f: f.objects.pop((DEPLOYMENT, "gloo-mesh/enterprise-networking")))
    with pytest.raises(
        RegistrationConfigError,
        match=r"^agent_generation: nothing was given, and the management cluster \(context 'kind-mgmt-cluster'\) runs "
        r"neither of enterprise-networking .* or gloo-mesh-mgmt-server .* in namespace 'gloo-mesh'.*Fix: set "
        r"agent_generation",
    ):
        register(args(), fake=fake)
    # Named, the generation is not looked for; the version read then fails on the missing Deployment.
    with pytest.raises(Exception, match="gloo-mesh/enterprise-networking"):
        register(args(agent_generation="gloo-mesh-enterprise-1"), fake=fake)


def test_pending_load_balancer_is_a_clear_error() -> None:
    with pytest.raises(DiscoveryError, match=r"no LoadBalancer ingress address yet.*set relay_server_address"):
        register(args(agent_version="1.1.6"), fake=_with(_load_balancer({})))


def test_a_server_service_without_any_status_is_a_clear_error() -> None:
    fake = _with(lambda f: f.objects[(SERVICE, "gloo-mesh/enterprise-networking")].pop("status"))
    with pytest.raises(DiscoveryError, match=r"no LoadBalancer ingress address yet"):
        register(args(agent_version="1.1.6"), fake=fake)


def test_load_balancer_hostname_is_used_on_eks() -> None:
    hostname = _load_balancer({"ingress": [{"hostname": "a1b2.elb.eu-west-1.amazonaws.com"}]})
    recorded = register(args(), fake=_with(hostname))
    values = plain(recorded.one(RELEASE).inputs)["values"]
    assert values["relay"]["serverAddress"] == "a1b2.elb.eu-west-1.amazonaws.com:9900"


def test_istio_ingress_nodeport_discovery_as_in_the_guide() -> None:
    recorded = register(args(relay_discovery="istio-ingress-nodeport", relay_node_name="mgmt-cluster-control-plane"))
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "172.18.0.2:32443"
    assert recorded.one(NODE, op="read").resource_id == "mgmt-cluster-control-plane"


def test_a_server_image_tag_that_is_not_a_version_is_a_clear_error() -> None:
    fake = _with(_server_image("mirror.local/gloo-mesh/enterprise-networking:stable"))
    with pytest.raises(DiscoveryError, match=r"whose tag 'stable' is not a version .*Fix: set agent_version"):
        register(args(), fake=fake)


def test_a_value_that_would_conflict_only_with_the_discovered_version_is_refused_before_anything_is_declared() -> None:
    """Insecure 1.0.x agents read ``relay.insecure`` (``global.insecure`` came in 1.1.0-beta20), so with the version
    still to be discovered a ``global.insecure`` may agree with one version's values and collide with the server's
    1.0.9. Found by mutation testing: the check used one placeholder version, so this conflict surfaced only once the
    version was read, after the namespace had been declared. Every range of versions is checked now."""
    fake = _with(_server_image("gcr.io/gloo-mesh/enterprise-networking:1.0.9"))
    monitor = RecordingMonitor(fake)
    bad = args(insecure=True, agent_values={"global": {"insecure": True}})
    with pytest.raises(RegistrationConfigError) as raised:
        run_program(lambda: RemoteClusterRegistration("remote-cluster", bad), monitor=monitor)
    assert str(raised.value) == (
        "agent_values.global.insecure: a value sets what the registration sets for some agent versions and not for "
        "others, and the version is still to be discovered. Fix: remove it from agent_values (the registration sets "
        "what the version needs), or set agent_version"
    )
    assert monitor.records == [], [(r.type, r.name) for r in monitor.records]
    # A version given (or discovered) after the cut-over: the same value agrees with the registration's own.
    agreed = register(args(insecure=True, agent_version="1.1.6", agent_values={"global": {"insecure": True}}))
    assert plain(agreed.one(RELEASE).inputs)["values"]["global"] == {"insecure": True}


def test_a_value_at_a_discovered_address_is_refused_whatever_it_is() -> None:
    """The relay address is still to be discovered at validation: no user value can be known to agree with it."""

    class Address(StrEnum):  # a program's own string type: compared from its side first
        DISCOVERED = "<discovered>"

    for value in ("<discovered>", "203.0.113.10:9900", Address.DISCOVERED):
        with pytest.raises(RegistrationConfigError) as raised:
            register(args(agent_values={"relay": {"serverAddress": value}}))
        assert str(raised.value).startswith(
            "agent_values.relay.serverAddress: a value would override the registration's value ('<discovered>')"
        ), value


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("gcr.io/gloo-mesh/enterprise-networking:1.1.6", "1.1.6"),
        ("registry.local:5000/gloo-mesh/enterprise-networking:1.1.6", "1.1.6"),
        ("registry.local:5000/gloo-mesh/enterprise-networking", None),
        ("enterprise-networking:1.1.6@sha256:" + "0" * 64, "1.1.6"),
        ("gcr.io/gloo-mesh/enterprise-networking@sha256:" + "0" * 64, None),
        ("enterprise-networking:", None),
    ],
)
def test_the_tag_of_an_image_reference_is_never_a_registry_port(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_the_server_container_is_found_by_name_among_sidecars() -> None:
    def with_sidecar(fake: FakeClusters) -> None:
        deployment = fake.objects[(DEPLOYMENT, "gloo-mesh/enterprise-networking")]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        containers.insert(0, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20.3"})

    assert plain(register(args(), fake=_with(with_sidecar)).one(RELEASE).inputs)["version"] == "1.1.6"


def _ports(service: str, ports: list[dict[str, Any]]) -> Callable[[FakeClusters], None]:
    def mutate(fake: FakeClusters) -> None:
        fake.objects[(SERVICE, service)]["spec"]["ports"] = ports

    return mutate


def test_a_server_service_without_a_grpc_port_is_a_clear_error() -> None:
    fake = _with(_ports("gloo-mesh/enterprise-networking", [{"name": "http", "port": 8090}]))
    with pytest.raises(
        DiscoveryError,
        match=r"Service gloo-mesh/enterprise-networking \(context 'kind-mgmt-cluster'\) has no port named 'grpc'.*"
        r"Fix: set relay_server_address",
    ):
        register(args(agent_version="1.1.6"), fake=fake)


def test_an_ipv6_load_balancer_address_is_bracketed() -> None:
    recorded = register(args(), fake=_with(_load_balancer({"ingress": [{"ip": "2001:db8::10"}]})))
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "[2001:db8::10]:9900"


NODEPORT = {"relay_discovery": "istio-ingress-nodeport", "relay_node_name": "mgmt-cluster-control-plane"}


def test_an_ingress_gateway_without_an_https_node_port_is_a_clear_error() -> None:
    # A port named https without a nodePort (a LoadBalancer gateway that allocates none) is as good as none.
    fake = _with(_ports("istio-system/istio-ingressgateway", [{"name": "https", "port": 443}]))
    with pytest.raises(DiscoveryError, match=r"istio-ingressgateway .* has no nodePort of the port named 'https'"):
        register(args(agent_version="1.1.6", **NODEPORT), fake=fake)


def test_a_relay_node_without_an_internal_ip_is_a_clear_error() -> None:
    def external_only(fake: FakeClusters) -> None:
        fake.objects[(NODE, "mgmt-cluster-control-plane")]["status"]["addresses"] = [
            {"type": "ExternalIP", "address": "198.51.100.7"}
        ]

    with pytest.raises(DiscoveryError, match=r"Node mgmt-cluster-control-plane .* reports no InternalIP address"):
        register(args(agent_version="1.1.6", **NODEPORT), fake=_with(external_only))


def test_an_ipv6_internal_ip_of_the_relay_node_is_bracketed() -> None:
    def ipv6(fake: FakeClusters) -> None:
        fake.objects[(NODE, "mgmt-cluster-control-plane")]["status"]["addresses"] = [
            {"type": "ExternalIP", "address": "198.51.100.7"},
            {"type": "InternalIP", "address": "fd00:10::2"},
        ]

    recorded = register(args(**NODEPORT), fake=_with(ipv6))
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "[fd00:10::2]:32443"


def test_discovery_runs_in_preview() -> None:
    def program() -> None:
        RemoteClusterRegistration("remote-cluster", args())

    recorded = run_program(program, preview=True)
    assert plain(recorded.one(RELEASE).inputs)["values"]["relay"]["serverAddress"] == "203.0.113.10:9900"
    assert plain(recorded.one(RELEASE).inputs)["version"] == "1.1.6"


# -- relay secrets read ------------------------------------------------------------------------------------------


def test_missing_management_secret_fails_naming_secret_namespace_and_context() -> None:
    fake = _with(lambda f: f.objects.pop((SECRET, "gloo-mesh/relay-root-tls-secret")))
    with pytest.raises(DiscoveryError) as raised:
        register(args(), fake=fake)
    assert str(raised.value) == (
        "secret 'relay-root-tls-secret' in namespace 'gloo-mesh' of the management cluster (context "
        "'kind-mgmt-cluster') does not exist. Fix: install Gloo Mesh Enterprise on the management cluster (it creates "
        "the relay secrets), or point mgmt_context/mgmt_namespace at it."
    )


def test_empty_bootstrap_token_fails_the_preview() -> None:
    fake = _with(lambda f: f.secret_data("gloo-mesh/relay-identity-token-secret").update(token=""))
    with pytest.raises(DiscoveryError, match="no non-empty key 'token'"):
        register(args(), fake=fake)


def _secrets_moved_to(namespace: str, fake: FakeClusters) -> None:
    for key in [k for k in fake.objects if k[0] == SECRET]:
        secret = fake.objects.pop(key)
        fake.objects[(SECRET, f"{namespace}/{key[1].split('/')[1]}")] = secret


def test_relay_secrets_are_read_from_the_management_namespace_and_context_given() -> None:
    """The double answers only for the management context and namespace holding the secrets: a read aimed at another
    namespace, or at the remote cluster's context, finds no secret."""
    fake = FakeClusters(mgmt_context="kind-mgmt-cluster")
    _secrets_moved_to("gloo-mesh-mgmt", fake)
    given = {
        "agent_version": "1.1.6",
        "relay_server_address": "relay.example.com:443",
        "agent_generation": "gloo-mesh-enterprise-1",
    }
    recorded = register(args(mgmt_namespace="gloo-mesh-mgmt", remote_namespace="agents", **given), fake=fake)
    assert plain(recorded.one(SECRET, "-root-ca").inputs)["data"] == {"ca.crt": b64(CA_CERT)}
    with pytest.raises(DiscoveryError, match=r"'relay-root-tls-secret' in namespace 'gloo-mesh' .* does not exist"):
        register(args(remote_namespace="gloo-mesh-mgmt", **given), fake=fake)
    with pytest.raises(DiscoveryError, match=r"namespace 'gloo-mesh-mgmt' .*context 'kind-remote-cluster'.* does not"):
        register(args(mgmt_namespace="gloo-mesh-mgmt", mgmt_context="kind-remote-cluster", **given), fake=fake)


def test_relay_secrets_read_runs_kubectl_without_secrets_in_its_command() -> None:
    recorded = register(args(mgmt_kubeconfig=KUBECONFIG_CONTENTS))
    (relay_read,) = recorded.invoked(READ_RELAY_SECRETS)
    assert "kubeconfig-bearer" not in json.dumps(relay_read.args["interpreter"])
    assert relay_read.args["environment"]["GM_KUBECONFIG_CONTENTS"] == KUBECONFIG_CONTENTS
    assert "GM_KUBECONFIG_FILE" not in relay_read.args["environment"]


def test_a_management_cluster_given_only_as_a_provider_is_refused_before_anything_is_declared() -> None:
    """ca.crt and the token are read by kubectl, which cannot use a Provider object; a Secret.get instead would
    store the whole management secret, the CA's private key included, in the state."""
    fake = FakeClusters()

    def program() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        RemoteClusterRegistration("east", {"cluster_name": "east", "mgmt_provider": mgmt, "remote_context": "east"})

    with pytest.raises(RegistrationConfigError, match=r"^mgmt_provider: a Provider object .*mgmt_context") as raised:
        run_program(program, fake)
    assert "private key" in str(raised.value)
    assert not fake.invokes


def test_an_insecure_registration_needs_no_kubectl_access_to_the_management_cluster() -> None:
    def program() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        RemoteClusterRegistration(
            "east",
            {
                "cluster_name": "east",
                "mgmt_provider": mgmt,
                "remote_context": "east",
                "insecure": True,
                "agent_generation": GenerationName.GLOO_MESH_ENTERPRISE_1,
            },
        )

    recorded = run_program(program)
    assert recorded.registered(RELEASE) and not recorded.fake.invokes
    # Without the generation, nothing could find it: a clear error, before anything is declared.
    unnamed = RecordingMonitor(FakeClusters())

    def without_generation() -> None:
        mgmt = k8s.Provider("platform-mgmt", context="ctx-mgmt")
        RemoteClusterRegistration(
            "east", {"cluster_name": "east", "mgmt_provider": mgmt, "remote_context": "east", "insecure": True}
        )

    with pytest.raises(RegistrationConfigError) as raised:
        run_program(without_generation, monitor=unnamed)
    assert str(raised.value) == (
        "agent_generation: nothing was given, and the management cluster is reachable only through a Provider or a "
        "kubeconfig that is an Output, so kubectl cannot look for the server before resources are declared. "
        "Fix: set agent_generation to one of gloo-mesh-enterprise-1, gloo-platform-2"
    )
    assert [r.type for r in unnamed.records] == [KUBERNETES_PROVIDER]


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
    assert not recorded.reads(DEPLOYMENT) and not recorded.reads(SERVICE)


def test_an_output_address_is_checked_when_it_resolves() -> None:
    def program() -> None:
        RemoteClusterRegistration("remote-cluster", args(relay_server_address=pulumi.Output.from_input("no-port")))

    with pytest.raises(Exception, match="relay_server_address: 'no-port' has no valid port"):
        run_program(program)


def test_an_output_version_is_checked_when_it_resolves() -> None:
    def program() -> None:
        RemoteClusterRegistration("remote-cluster", args(agent_version=pulumi.Output.from_input("latest")))

    with pytest.raises(Exception, match="agent_version: 'latest' is not a valid agent version"):
        run_program(program)


def test_a_kubeconfig_path_stays_a_plain_path_and_none_is_passed_when_only_a_context_is_given(tmp_path: Path) -> None:
    """Only kubeconfig contents are secret: a path marked secret would hide every step's output for nothing."""
    path = tmp_path / "remote.kubeconfig"
    path.write_text(KUBECONFIG_CONTENTS)
    recorded = register(args(remote_kubeconfig=str(path)))
    providers = {r.name.rsplit("-", 1)[1]: r.inputs for r in recorded.registered(KUBERNETES_PROVIDER)}
    assert providers["remote"]["kubeconfig"] == str(path)
    assert "kubeconfig" not in providers["mgmt"]
    token = recorded.one(COMMAND, "bootstrap-token")
    assert not rpc.is_rpc_secret(token.inputs["environment"])
    assert token.inputs["environment"]["GM_KUBECONFIG_FILE"] == str(path)
    assert "GM_KUBECONFIG_CONTENTS" not in token.inputs["environment"]
    (relay_read,) = recorded.invoked(READ_RELAY_SECRETS)
    assert not [name for name in relay_read.args["environment"] if name.startswith("GM_KUBECONFIG")]


def _fleet_through_one_management_provider(count: int) -> RecordingMonitor:
    def program() -> None:
        mgmt = k8s.Provider("management", context="kind-mgmt-cluster")
        for i in range(count):
            RemoteClusterRegistration(f"c{i}", args(cluster_name=f"c{i}", remote_context=f"c{i}", mgmt_provider=mgmt))

    return run_program(program)


def test_a_shared_management_provider_reads_each_management_object_once() -> None:
    recorded = _fleet_through_one_management_provider(3)
    reads = sorted((r.type, r.resource_id) for r in recorded.reads())
    assert reads == [
        (DEPLOYMENT, "gloo-mesh/enterprise-networking"),
        (SERVICE, "gloo-mesh/enterprise-networking"),
    ]
    assert len(recorded.invoked(READ_RELAY_SECRETS)) == 1
    assert len(recorded.invoked(ENSURE_CERTIFICATE)) == 3
    mgmt = recorded.one(KUBERNETES_PROVIDER, "management")
    assert all(r.parent == mgmt.urn for r in recorded.reads()), "shared reads belong to no single registration"
    assert sorted(r.name for r in recorded.reads()) == [
        "management-relay-service-gloo-mesh.enterprise-networking",
        "management-server-deployment-gloo-mesh.enterprise-networking",
    ]
    # Every cluster still gets its own copy of each value.
    releases = [plain(r.inputs) for r in recorded.registered(RELEASE)]
    assert [
        r["values"]["relay"]["cluster"] for r in sorted(releases, key=lambda r: r["values"]["relay"]["cluster"])
    ] == ["c0", "c1", "c2"]
    assert {r["version"] for r in releases} == {"1.1.6"}
    assert {r["values"]["relay"]["serverAddress"] for r in releases} == {"203.0.113.10:9900"}


def test_shared_reads_keep_the_clusters_independent() -> None:
    recorded = _fleet_through_one_management_provider(2)
    components = {r.urn for r in recorded.registered(COMPONENT)}
    owner = {r.urn: r.parent for r in recorded.records if r.parent in components}
    for urn, parent in owner.items():
        others = {u for u, p in owner.items() if p != parent}
        assert not (recorded.ancestors_closure(urn) & others)
    release_urns = [r.urn for r in recorded.registered(RELEASE)]
    shared = {r.urn for r in recorded.reads()}
    for urn in release_urns:
        assert recorded.ancestors_closure(urn) & shared, "each release waits on the shared discovery reads"


def _with_a_second_management_plane_in(namespace: str) -> FakeClusters:
    """The management objects of namespace gloo-mesh, also in ``namespace`` (a second plane on the same cluster)."""
    fake = FakeClusters()
    for (type_, ref), obj in list(fake.objects.items()):
        if ref.startswith("gloo-mesh/"):
            fake.objects[(type_, f"{namespace}/{ref.split('/', 1)[1]}")] = obj
    return fake


class _Platform(pulumi.ComponentResource):
    """A user's own component that declares a management Provider named ``mgmt`` and registers clusters with it."""

    def __init__(self, type_: str, name: str, clusters: list[str], namespace: str = "gloo-mesh") -> None:
        super().__init__(type_, name)
        mgmt = k8s.Provider("mgmt", context="kind-mgmt-cluster", opts=pulumi.ResourceOptions(parent=self))
        for cluster in clusters:
            RemoteClusterRegistration(
                cluster,
                args(cluster_name=cluster, remote_context=cluster, mgmt_provider=mgmt, mgmt_namespace=namespace),
                opts=pulumi.ResourceOptions(parent=self),
            )


def test_shared_reads_of_two_providers_with_one_name_under_two_parents_have_distinct_urns() -> None:
    """Found in review (issue 9, defect 3): shared reads were named after the Provider's logical name alone and were
    children of the stack, so two Providers named ``mgmt`` in two components declared one URN twice, which the
    engine rejects (the double now does too)."""

    def program() -> None:
        _Platform("acme:index:East", "east", ["e1", "e2"])
        _Platform("acme:index:West", "west", ["w1"])

    recorded = run_program(program)
    reads = recorded.reads()
    assert len({r.urn for r in reads}) == len(reads) == 4  # Deployment and Service per Provider, once each
    assert len(recorded.registered(RELEASE)) == 3


def test_shared_reads_of_two_management_namespaces_through_one_provider_are_distinct() -> None:
    fake = _with_a_second_management_plane_in("gloo-mesh-b")

    def program() -> None:
        mgmt = k8s.Provider("management", context="kind-mgmt-cluster")
        for cluster, namespace in (("a", "gloo-mesh"), ("b", "gloo-mesh-b"), ("c", "gloo-mesh")):
            RemoteClusterRegistration(
                cluster,
                args(cluster_name=cluster, remote_context=cluster, mgmt_provider=mgmt, mgmt_namespace=namespace),
            )

    recorded = run_program(program, fake)
    assert sorted(r.resource_id for r in recorded.reads()) == [
        "gloo-mesh-b/enterprise-networking",
        "gloo-mesh-b/enterprise-networking",
        "gloo-mesh/enterprise-networking",
        "gloo-mesh/enterprise-networking",
    ]
    assert len({r.urn for r in recorded.reads()}) == 4
    assert len(recorded.invoked(READ_RELAY_SECRETS)) == 2  # one relay secrets read per namespace


def test_the_double_rejects_a_duplicate_urn_as_the_engine_does() -> None:
    def program() -> None:
        k8s.Provider("twice", context="a")
        k8s.Provider("twice", context="b")

    with pytest.raises(DuplicateURNError, match=r"Duplicate resource URN '.*::pulumi:providers:kubernetes::twice'"):
        run_program(program)


def test_a_missing_secret_with_shared_reads_still_names_secret_namespace_and_context() -> None:
    def program() -> None:
        mgmt = k8s.Provider("management", context="kind-mgmt-cluster")
        for name in ("a", "b"):
            RemoteClusterRegistration(name, args(cluster_name=name, remote_context=name, mgmt_provider=mgmt))

    fake = _with(lambda f: f.objects.pop((SECRET, "gloo-mesh/relay-identity-token-secret")))
    with pytest.raises(
        DiscoveryError,
        match=r"secret 'relay-identity-token-secret' in namespace 'gloo-mesh' .*context 'kind-mgmt-cluster'",
    ):
        run_program(program, fake)


def test_certificate_step_streams_progress_and_knows_the_relay_address_for_its_timeout_message(
    recorded: RecordingMonitor,
) -> None:
    (wait,) = recorded.invoked(ENSURE_CERTIFICATE)
    arguments = plain(wait.args)
    assert arguments["logging"] == "stderr", "progress lines go to the progress display; stdout is not streamed"
    assert arguments["environment"]["GM_RELAY_ADDRESS"] == "203.0.113.10:9900"
    assert arguments["environment"]["GM_RELAY_AUTHORITY"] == "enterprise-networking.gloo-mesh"
    assert arguments["environment"]["GM_KUBE_CONTEXT"] == "kind-remote-cluster"
    assert "GM_TIMEOUT=300" in arguments["interpreter"][2]
    assert arguments["addPreviousOutputInEnv"] is False


@pytest.mark.parametrize("seconds", [1, 3600])
def test_the_wait_runs_for_the_timeout_given_at_both_ends_of_its_range(seconds: int) -> None:
    (wait,) = register(args(client_cert_timeout_seconds=seconds)).invoked(ENSURE_CERTIFICATE)
    assert f"\nGM_TIMEOUT={seconds}\n" in plain(wait.args)["interpreter"][2]


@pytest.mark.parametrize("seconds", [0, 3601, True])
def test_a_timeout_outside_its_range_declares_nothing(seconds: int) -> None:
    monitor = RecordingMonitor(FakeClusters())
    with pytest.raises(RegistrationConfigError, match=r"client_cert_timeout_seconds: .* from 1 to 3600"):
        run_program(
            lambda: RemoteClusterRegistration("remote-cluster", args(client_cert_timeout_seconds=seconds)),
            monitor=monitor,
        )
    assert monitor.records == []


def test_a_1x_registration_removes_the_token_unless_told_to_keep_it() -> None:
    (removing,) = register(args()).invoked(ENSURE_CERTIFICATE)
    assert KEEPS_TOKEN not in plain(removing.args)["interpreter"][2]
    assert REMOVES_TOKEN in plain(removing.args)["interpreter"][2]
    (keeping,) = register(args(remove_bootstrap_token=False)).invoked(ENSURE_CERTIFICATE)
    assert KEEPS_TOKEN in plain(keeping.args)["interpreter"][2]
    assert REMOVES_TOKEN not in plain(keeping.args)["interpreter"][2]


def test_without_the_wait_the_token_is_placed_and_nothing_waits() -> None:
    issued: list[bool] = []
    recorded = run_program(
        lambda: RemoteClusterRegistration(
            "remote-cluster", args(wait_for_client_cert=False)
        ).client_certificate_issued.apply(issued.append)
    )
    assert recorded.invoked(ENSURE_CERTIFICATE) == []
    assert issued == [False]
    assert plain(recorded.one(COMMAND, "bootstrap-token").inputs)["create"] == PLACE_TOKEN


def test_a_chart_repository_given_is_where_the_agent_comes_from() -> None:
    release = plain(register(args(chart_repo="https://charts.example.com/gloo")).one(RELEASE).inputs)
    assert release["repositoryOpts"] == {"repo": "https://charts.example.com/gloo"}


@pytest.mark.parametrize(
    ("version", "values"),
    [
        ("1.0.9", {"relay": {"insecure": True}}),
        ("1.1.0-beta17", {"relay": {"insecure": True}}),
        ("1.1.0-beta19", {"relay": {"insecure": True}}),
        ("1.1.0-beta20", {"global": {"insecure": True}}),
        ("1.1.6", {"global": {"insecure": True}}),
    ],
)
def test_the_insecure_flag_moves_at_1_1_0_beta20(version: str, values: dict[str, Any]) -> None:
    """Agents before 1.1.0-beta20 read ``relay.insecure``; from that release on, ``global.insecure`` only.

    Source: solo-io/gloo-mesh ``docs/content/reference/helm/gloo_mesh_enterprise/latest/enterprise_agent.md``, whose
    git history has ``global.insecure`` first in the reference generated for v1.1.0-beta20 (commit
    908a260572e28234d2169bfc58507e253f7af6ed), not in those for v1.1.0-beta18 (acfe79712cf2) or v1.1.0-beta19
    (16daf13b8207); the insecure registration guide (``docs/content/setup/cluster_registration/
    enterprise_insecure_cluster_registration.md``, commit 8cc2b3ff9d1e) says "v1.1.0-beta20 or above is required".
    ``v1.1.0-beta17``, the boundary this replaced, is an open-source meshctl tag."""
    release = plain(register(args(insecure=True, agent_version=version)).one(RELEASE).inputs)["values"]
    assert {key: {k: v for k, v in release[key].items() if k == "insecure"} for key in values} == values
    other = "global" if "relay" in values else "relay"
    assert "insecure" not in release.get(other, {})


@pytest.mark.parametrize("generation", sorted(GENERATIONS))
def test_each_listed_version_stands_for_a_range_with_values_of_its_own(generation: GenerationName) -> None:
    """``value_versions()`` is what validation checks a user's values against while the version is unknown: one
    version per range, each range's values (insecure, where they differ) unlike the others'."""
    gen = GENERATIONS[generation]
    rendered = [
        json.dumps(
            gen.registration_values(
                cluster_name="c", server_address="a:1", authority="x", namespace="n", insecure=True, agent_version=v
            ),
            sort_keys=True,
        )
        for v in gen.value_versions()
    ]
    assert len(set(rendered)) == len(rendered) >= 1


def test_certificate_step_runs_on_up_only_and_reports_the_registration_complete() -> None:
    def program() -> pulumi.Output[Any]:
        return RemoteClusterRegistration("remote-cluster", args()).client_certificate_issued

    preview = run_program(program, preview=True)
    assert preview.invoked(ENSURE_CERTIFICATE) == [], "a preview must not put the token in place or wait"
    issued: list[bool] = []
    up = run_program(
        lambda: RemoteClusterRegistration("remote-cluster", args()).client_certificate_issued.apply(issued.append)
    )
    assert len(up.invoked(ENSURE_CERTIFICATE)) == 1 and issued == [True]


def test_a_failed_certificate_step_fails_the_update() -> None:
    fake = FakeClusters()
    fake.agent_fails = "error: cluster remote-cluster: the agent got no client certificate"
    with pytest.raises(CommandFailedError, match="the agent got no client certificate"):
        register(args(), fake=fake)


def test_the_token_step_ignores_how_the_cluster_is_reached_and_a_rotated_token() -> None:
    """Issue 9, defect 5: pulumi-command runs an update on any input change; a kubeconfig path on another CI runner,
    refreshed credentials or a rotated token must leave a registered cluster alone (no-change `pulumi up`)."""
    token = register(args()).one(COMMAND, "bootstrap-token")
    assert set(token.ignore_changes) == {"environment", "stdin"}
    assert plain(token.inputs)["interpreter"][:2] == ["/bin/sh", "-c"]
    assert (plain(token.inputs)["create"], plain(token.inputs)["update"]) == (PLACE_TOKEN, KEEP_TOKEN)


# -- preflight: a preview fails where `pulumi up` would ------------------------------------------------------


def preflight_lookups(recorded: RecordingMonitor) -> list[Invocation]:
    """The find-existing runs of the preflight check (not the generation discovery, which looks for Deployments)."""
    return [i for i in recorded.invoked(FIND_EXISTING) if "deployments/" not in i.args["environment"]["GM_OBJECTS"]]


def test_the_previews_looks_at_the_clusters_print_nothing() -> None:
    """The find-existing runs (generation discovery and the look for leftovers) are parsed, not shown: their output
    stays out of the Pulumi log."""
    recorded = preview(FakeClusters(), agent_generation=None)
    looks = recorded.invoked(FIND_EXISTING)
    assert preflight_lookups(recorded) and len(looks) > len(preflight_lookups(recorded)), "discovery and preflight"
    assert {plain(look.args)["logging"] for look in looks} == {"none"}


def preview(fake: FakeClusters, **overrides: Any) -> RecordingMonitor:
    def program() -> pulumi.Output[Any]:
        return RemoteClusterRegistration("remote-cluster", args(**overrides)).client_certificate_issued

    return run_program(program, fake, preview=True)


@pytest.mark.parametrize(
    ("leftover", "named"),
    [
        (
            "namespace/gloo-mesh",
            "namespace 'gloo-mesh' exists already and this stack does not manage it. Fix: set createNamespace: false",
        ),
        (
            "secret/gloo-mesh/relay-root-tls-secret",
            "secret 'relay-root-tls-secret' exists already in namespace 'gloo-mesh', left by an earlier registration",
        ),
        (
            "helm-release/gloo-mesh/enterprise-agent",
            "Helm release 'enterprise-agent' exists already in namespace 'gloo-mesh'",
        ),
        (
            "kubernetesclusters.multicluster.solo.io/gloo-mesh/remote-cluster",
            "KubernetesCluster 'remote-cluster' exists already in namespace 'gloo-mesh' of the management cluster",
        ),
    ],
)
def test_a_preview_fails_on_a_leftover_object_it_would_create(leftover: str, named: str) -> None:
    """Issue 9, defect 6: pulumi-kubernetes lets AlreadyExists pass in preview; `pulumi up` would fail half way."""
    fake = FakeClusters()
    fake.existing.add(leftover)
    with pytest.raises(ConflictError) as raised:
        preview(fake)
    assert named in str(raised.value)
    if leftover.startswith("helm-release/"):
        assert str(raised.value) == (
            "cluster remote-cluster (context 'kind-remote-cluster'): Helm release 'enterprise-agent' exists already in "
            "namespace 'gloo-mesh', left by an earlier registration (meshctl, the guide's Helm steps, another stack, "
            "or a `pulumi up` of this stack that was terminated). Fix: take it over in place with adopt: true for one "
            "pulumi up (docs/adopting.md), or deregister that registration first."
        )
    fix = (
        "Fix: set createNamespace: false (create_remote_namespace=False) to use it as it is, or delete it."
        if leftover.startswith("namespace/")
        else "Fix: take it over in place with adopt: true for one pulumi up (docs/adopting.md), "
        "or deregister that registration first."
    )
    assert str(raised.value).endswith(fix)
    cluster = "management" if leftover.startswith("kubernetesclusters") else "remote"
    assert f"context 'kind-{'mgmt' if cluster == 'management' else cluster}-cluster'" in str(raised.value)


@pytest.mark.parametrize(
    ("ref", "named"),
    [
        (
            "kubernetesclusters.multicluster.solo.io/gloo-mesh/remote-cluster",
            "KubernetesCluster 'remote-cluster' exists already in namespace 'gloo-mesh' of the management cluster, "
            "registered by another stack: ",
        ),
        (
            "secret/gloo-mesh/relay-root-tls-secret",
            "secret 'relay-root-tls-secret' exists already in namespace 'gloo-mesh', created by another stack that "
            "registers this cluster into the same namespace: ",
        ),
    ],
)
def test_a_preview_names_the_other_stack_whose_object_it_would_create(ref: str, named: str) -> None:
    """Issue 24: one cluster name in two stacks of one management plane. The look prints the other stack's owner label
    after the object; the message names it, and its fix is not `adopt` (that would take the object from a stack that
    manages it)."""
    fake = FakeClusters()
    fake.existing.add(ref)
    fake.details[f"{ref}@owned"] = ["gloo-mesh-registration/stack=gloo-mesh-relay-registration.other"]
    with pytest.raises(ConflictError) as raised:
        preview(fake)
    message = str(raised.value)
    assert (
        named + "one cluster name can be registered by one stack only. Fix: remove the cluster from one of the two "
        in message
    )
    assert message.endswith(
        "It carries the other stack's label gloo-mesh-registration/stack=gloo-mesh-relay-registration.other."
    )
    assert "adopt" not in message
    # Another key after the object (the look's other details) is not a stack's mark: the leftover's message.
    fake.details[f"{ref}@owned"] = ["something=else"]
    with pytest.raises(ConflictError, match="adopt: true") as raised:
        preview(fake)
    assert str(raised.value).endswith("deregister that registration first. Found: something=else.")


def _stack_label(project: str, stack: str) -> str:
    recorded = run_program(lambda: RemoteClusterRegistration("remote-cluster", args()), project=project, stack=stack)
    labels: dict[str, str] = plain(recorded.one(SECRET, "-root-ca").inputs)["metadata"]["labels"]
    return labels["gloo-mesh-registration/stack"]


def test_the_stack_label_is_project_dot_stack_up_to_the_63_characters_of_a_label_value() -> None:
    """Kubernetes label values are at most 63 characters, alphanumeric at both ends: ``<project>.<stack>`` while it is
    one, else a hash of it, distinct per stack and the same on every run."""
    assert _stack_label("p" * 30, "s" * 32) == "p" * 30 + "." + "s" * 32  # 63 characters
    hashed = {_stack_label("p" * 30, "s" * 33), _stack_label("p" * 30, "s" * 34), _stack_label("proj", "dev_")}
    assert len(hashed) == 3
    for label in hashed:
        assert re.fullmatch(r"sha256-[0-9a-f]+", label) and len(label) <= 63, label
    assert _stack_label("p" * 30, "s" * 33) in hashed, "the same stack, the same label"


def test_a_preview_names_every_leftover_at_once() -> None:
    fake = FakeClusters()
    fake.existing |= {"namespace/gloo-mesh", "helm-release/gloo-mesh/enterprise-agent"}
    with pytest.raises(ConflictError) as raised:
        preview(fake)
    assert "or delete it. Helm release 'enterprise-agent' exists already in namespace 'gloo-mesh'" in str(raised.value)


def test_a_cluster_that_cannot_be_asked_leaves_the_preview_to_its_provider_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One cluster down must not fail the preview of every other cluster of the stack: its provider's own preview
    reports it. Here the namespace that createNamespace: false expects is not looked for, so it cannot fail."""
    fake = FakeClusters()
    fake.unreachable["kind-remote-cluster"] = "dial tcp 127.0.0.1:6443: connect: connection refused"
    with caplog.at_level(logging.WARNING):
        recorded = preview(fake, create_remote_namespace=False)
    asked = {plain(i.args)["environment"]["GM_KUBE_CONTEXT"] for i in preflight_lookups(recorded)}
    assert asked == {"kind-remote-cluster", "kind-mgmt-cluster"}
    (warning,) = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert warning == (
        "cluster remote-cluster (context 'kind-remote-cluster') is not reachable (dial tcp 127.0.0.1:6443: connect: "
        "connection refused); objects left there by an earlier registration cannot be looked for, so `pulumi up` may "
        "fail where this preview did not"
    )


def test_a_preview_of_what_the_stack_manages_already_looks_for_nothing() -> None:
    fake = FakeClusters()
    fake.existing |= {"namespace/gloo-mesh", "secret/gloo-mesh/relay-root-tls-secret"}
    fake.managed |= {f"remote-cluster-{part}" for part in ("namespace", "root-ca", "agent", "kubernetes-cluster")}
    recorded = preview(fake)
    assert preflight_lookups(recorded) == []


def test_a_preview_looks_only_for_what_it_creates_and_in_the_right_cluster() -> None:
    fake = FakeClusters()
    fake.managed |= {"remote-cluster-namespace", "remote-cluster-kubernetes-cluster"}
    recorded = preview(
        fake,
        remote_namespace="agents",
        agent_version="1.1.6",
        relay_server_address="relay.example.com:443",
    )
    (looked,) = preflight_lookups(recorded)
    environment = plain(looked.args)["environment"]
    # The CA copy carries the stack's label: one that has it is this stack's own (being replaced), not a leftover.
    assert environment["GM_OBJECTS"] == (
        "secret/agents/relay-root-tls-secret@owned helm-release/agents/enterprise-agent"
    )
    assert environment["GM_OWNER_LABEL"] == "gloo-mesh-registration/stack=gloo-mesh-relay-registration.test"
    root_ca = plain(recorded.one(SECRET, "-root-ca").inputs)
    assert root_ca["metadata"]["labels"]["gloo-mesh-registration/stack"] == "gloo-mesh-relay-registration.test"
    assert environment["GM_KUBE_CONTEXT"] == "kind-remote-cluster"


def test_create_namespace_false_expects_the_namespace_to_exist() -> None:
    fake = FakeClusters()
    with pytest.raises(ConflictError, match="namespace 'gloo-mesh' does not exist, and createNamespace is false"):
        preview(fake, create_remote_namespace=False)
    fake.existing.add("namespace/gloo-mesh")
    preview(fake, create_remote_namespace=False)


def test_pulumi_up_does_not_look_for_leftovers() -> None:
    fake = FakeClusters()
    fake.existing.add("namespace/gloo-mesh")
    assert preflight_lookups(register(args(), fake=fake)) == []


# -- adopting a cluster registered before ---------------------------------------------------------------------------


def test_adopting_imports_every_object_of_an_earlier_registration_and_leaves_its_identity() -> None:
    """adopt: the namespace, the CA copy, the release and the KubernetesCluster are imported (then updated in place by
    the engine); the token step leaves the agent's identity as it is; the preview looks for nothing it imports."""
    recorded = register(args(adopt=True))
    imported = {r.type: r.resource_id for r in recorded.registered() if r.custom and r.op == "register"}
    assert imported[NAMESPACE] == "gloo-mesh"
    assert imported[SECRET] == "gloo-mesh/relay-root-tls-secret"
    assert imported[RELEASE] == "gloo-mesh/enterprise-agent"
    assert imported[CLUSTER_1X] == "gloo-mesh/remote-cluster"
    assert imported[COMMAND] == "", "the token step is new: nothing to import"
    assert plain(recorded.one(COMMAND, "bootstrap-token").inputs)["environment"]["GM_ADOPT"] == "yes"
    plain_run = register(args())
    assert {r.resource_id for r in plain_run.registered() if r.custom and not r.type.startswith("pulumi:")} == {""}
    assert "GM_ADOPT" not in plain(plain_run.one(COMMAND, "bootstrap-token").inputs)["environment"]


def test_a_preview_of_an_adoption_finds_the_objects_it_takes_over_fine() -> None:
    fake = FakeClusters()
    fake.existing |= {
        "namespace/gloo-mesh",
        "secret/gloo-mesh/relay-root-tls-secret",
        "helm-release/gloo-mesh/enterprise-agent",
        "kubernetesclusters.multicluster.solo.io/gloo-mesh/remote-cluster",
    }
    with pytest.raises(ConflictError):
        preview(fake)
    adopted = preview(fake, adopt=True)
    assert preflight_lookups(adopted) == []


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_a_command_provider_given_to_the_component_runs_every_shell_step(preview: bool) -> None:
    """A program that pins its command provider (a version, or ``pulumi:disable-default-providers: ["*"]``) passes
    it in ``providers``; every shell step, Commands and invokes alike, must use it, never the default provider.

    Found by mutation testing: the preview's look for leftovers was an invoke without a parent, so it went to the
    default command provider (and would fail where default providers are disabled).

    One step cannot: discovering the agent generation runs before the component exists (resources are declared by
    generation), so it has no parent to inherit from, and the run's kubectl check with it, which it is the first to
    need; with ``agent_generation`` given neither runs there (README)."""
    import pulumi_command

    def steps(registration: RemoteClusterRegistrationArgs) -> list[tuple[str, str]]:
        def program() -> None:
            pinned = pulumi_command.Provider("pinned-command")
            opts = pulumi.ResourceOptions(providers={"command": pinned})
            RemoteClusterRegistration("remote-cluster", registration, opts=opts)

        recorded = run_program(program, preview=preview)
        ran = [(i.command, i.provider) for i in recorded.invocations]
        return ran + [(r.name, r.provider) for r in recorded.records if r.type.startswith("command:")]

    pinned = "::pulumi:providers:command::pinned-command::"
    named = steps(args(agent_generation="gloo-mesh-enterprise-1"))
    expected = {READ_RELAY_SECRETS, FIND_EXISTING} if preview else {READ_RELAY_SECRETS, ENSURE_CERTIFICATE}
    assert expected <= {name for name, _ in named}
    assert [name for name, provider in named if pinned not in provider] == []
    discovered = steps(args())
    assert [name for name, provider in discovered if pinned not in provider] == [CHECK_KUBECTL, FIND_EXISTING]
