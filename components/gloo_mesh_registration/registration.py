"""`RemoteClusterRegistration`: `meshctl cluster register enterprise`, made declarative.

The constructor reads as meshctl's steps, in order. What each step waits on is expressed through Pulumi
dependencies, so `pulumi preview` shows the order, `pulumi up` converges on a re-run instead of failing, and
`pulumi destroy` deregisters in the reverse order: the KubernetesCluster first, then the agent release, then
the copied secrets and the agent's identity, never a CRD and never a management secret.
"""

import hashlib
import re
import threading
from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import local

from .args import (
    ClusterAccess,
    RegistrationConfigError,
    RegistrationSettings,
    RemoteClusterRegistrationArgs,
    agent_values_error,
    validate_registration_args,
)
from .discovery import (
    ReadScope,
    discover_generation,
    find_agent_releases,
    read_relay_secrets,
    resolve_agent_version,
    resolve_relay_address,
    resolve_telemetry_address,
)
from .lifecycle import (
    ENSURE_CERTIFICATE,
    FORGET_IDENTITY,
    KEEP_TOKEN,
    PLACE_TOKEN,
    RemoteIdentity,
    client_certificate_step,
    kubectl_environment,
    secret_manifest,
    token_step,
)
from .preflight import PlannedObject, check_planned_objects
from .program_run import run_state
from .step_report import report_certificate_step
from .values import ValueConflictError

COMPONENT_TYPE = "gloo-mesh-relay:index:RemoteClusterRegistration"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH_TYPE = "kubernetes:core/v1:NamespacePatch"
MANAGED_BY_LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gloo-mesh-registration"}
STACK_LABEL = "gloo-mesh-registration/stack"
"""Marks what a stack created (the CA copy, the KubernetesCluster), so its preview tells a replacement of its own
object from a leftover of another registration."""


def stack_label_value() -> str:
    """``<project>.<stack>``, or a hash of it where that is no valid label value (longer than 63 characters)."""
    value = f"{pulumi.get_project()}.{pulumi.get_stack()}"
    if len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value):
        return value
    return "sha256-" + hashlib.sha256(value.encode()).hexdigest()[:48]


class _ClusterNameClaims:
    """Cluster names registered with one management plane in this program: a second agent under the same name
    would take over the first one's relay identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def claim(self, settings: RegistrationSettings, resource_name: str) -> None:
        """Record that `resource_name` registers `settings.cluster_name`; raise if another registration did."""
        mgmt = settings.mgmt
        plane = (
            (f"provider:{id(mgmt.provider)}",)
            if mgmt.provider is not None
            else (
                f"context:{mgmt.context}",
                f"kubeconfig:{mgmt.kubeconfig if isinstance(mgmt.kubeconfig, str) else id(mgmt.kubeconfig)}",
            )
        ) + (settings.mgmt_namespace,)
        key = (plane, settings.cluster_name)
        with self._lock:
            claims = run_state("cluster-name-claims")
            holder = claims.get(key)
            if holder is None:
                claims[key] = resource_name
        if holder is not None:
            raise RegistrationConfigError(
                "cluster_name",
                repr(settings.cluster_name),
                f"is already registered with the same management plane by {holder!r} in this program; two agents "
                "under one name claim each other's relay identity",
                "give every registered cluster a unique cluster_name",
            )


CLUSTER_NAME_CLAIMS = _ClusterNameClaims()


class RemoteClusterRegistration(pulumi.ComponentResource):
    """Registers one workload cluster with a Gloo Mesh Enterprise management plane over the relay."""

    cluster_name: pulumi.Output[str]
    """The name the cluster is registered under (`relay.cluster` and the KubernetesCluster name)."""
    relay_server_address: pulumi.Output[str]
    """The relay server address the agent dials (given or discovered)."""
    agent_version: pulumi.Output[str]
    """The agent chart version (given or discovered from the server)."""
    remote_namespace: pulumi.Output[str]
    """The namespace of the agent on the registered cluster."""
    release_status: pulumi.Output[str]
    """Helm status of the agent release, e.g. `deployed`."""
    client_certificate_issued: pulumi.Output[bool]
    """True once `pulumi up` saw the agent's client certificate; false when not waiting for it; unknown in preview."""

    def __init__(
        self, name: str, args: RemoteClusterRegistrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings = validate_registration_args(args, discover=discover_generation, find_releases=find_agent_releases)
        CLUSTER_NAME_CLAIMS.claim(settings, name)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._settings = settings
        gen = settings.generation
        self._identity = RemoteIdentity(settings.remote_namespace, gen.token_secret, gen.client_cert_secret)

        mgmt = self._cluster_provider(settings.mgmt, "mgmt")
        remote = self._cluster_provider(settings.remote, "remote")
        reads = ReadScope.of(name, settings, mgmt, self)
        # 1. Agent version: given, else the server Deployment's image tag.
        version = resolve_agent_version(reads, settings)
        # 2. Relay address: given, else the server's LoadBalancer or the Istio ingress NodePort.
        address = resolve_relay_address(reads, settings)
        # (2.x with telemetry) The telemetry gateway: given, else its LoadBalancer.
        telemetry_address = resolve_telemetry_address(reads, settings)
        # ca.crt and the token, read by kubectl (never the rest of those secrets, and nothing into the state).
        relay_secrets = None if settings.insecure else read_relay_secrets(reads, settings)
        # 3. Remote namespace, labelled so Istio never injects a sidecar into the agent. Not before the agent version
        # was checked and the relay secrets were read: a refused version (a 2.x server below 2.3, a tag that is no
        # version) or a missing or empty secret fails the run before anything is created (`up --skip-preview` too).
        known_good = version if relay_secrets is None else pulumi.Output.all(version, relay_secrets)
        namespace = self._remote_namespace(remote, known_good)
        prerequisites: list[pulumi.Resource] = []
        root_ca_copy: k8s.core.v1.Secret | None = None
        token: pulumi.Output[str] | None = None
        if relay_secrets is not None:
            # 4. Root CA: ca.crt only, so the CA's private key never leaves the management cluster.
            root_ca_copy = self._copy_root_ca(relay_secrets, remote, namespace)
            prerequisites.append(root_ca_copy)
            # 5. Bootstrap token: in place for the agent's first start; stale client certificate dropped.
            token = self._bootstrap_token_manifest(relay_secrets)
            prerequisites.append(self._place_bootstrap_token(namespace, token))
        # 6. The agent release, only once its namespace and secrets exist (2.x: its CRDs release first).
        crds = self._install_agent_crds(remote, namespace, version)
        if crds is not None:
            prerequisites.append(crds)
        release = self._install_agent(remote, namespace, version, address, telemetry_address, prerequisites)
        # 7. The KubernetesCluster in the management namespace, after the release.
        cluster = self._declare_kubernetes_cluster(mgmt, release)
        # A preview fails where `pulumi up` would: an object about to be created that exists already.
        checked = self._check_planned_objects(namespace, root_ca_copy, crds, release, cluster)
        # 8 and 9. Wait for the client certificate, then remove the bootstrap token (also on failure and on a kill).
        certificate: pulumi.Output[bool] = pulumi.Output.from_input(False)
        if settings.wait_for_client_cert and token is not None:  # never in insecure mode
            certificate = self._ensure_client_certificate(address, token, [release, cluster])
        if pulumi.runtime.is_dry_run():
            in_preview = certificate
            certificate = checked.apply(lambda _: in_preview)  # the check's failure fails the preview

        self.cluster_name = pulumi.Output.from_input(settings.cluster_name)
        self.relay_server_address = address
        self.agent_version = version
        self.remote_namespace = pulumi.Output.from_input(settings.remote_namespace)
        self.release_status = release.status.apply(lambda s: s.status)
        self.client_certificate_issued = certificate
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "relay_server_address": self.relay_server_address,
                "agent_version": self.agent_version,
                "remote_namespace": self.remote_namespace,
                "release_status": self.release_status,
                "client_certificate_issued": self.client_certificate_issued,
            }
        )

    # -- providers ---------------------------------------------------------------------------------------------

    def _cluster_provider(self, access: ClusterAccess, role: str) -> k8s.Provider:
        """The given Provider, else one declared from the context/kubeconfig (kubeconfig contents as a secret)."""
        if access.provider is not None:
            return access.provider
        return k8s.Provider(
            f"{self._name}-{role}",
            context=access.context,
            kubeconfig=access.kubeconfig_input(),
            # A changed Secret is updated in place, not replaced: a rotated root CA reaches the copy with no moment
            # where the agent namespace has none (the provider replaces changed Secrets unless told so).
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _adopted(self, resource_id: str) -> str | None:
        """With ``adopt``, the ID of the existing object to take over: the engine imports it, then updates it in place
        to this registration's inputs (pulumi/pulumi pkg/resource/deploy/step_generator.go: an import followed by its
        diff's update steps; only a replacement of an imported resource is refused)."""
        return resource_id if self._settings.adopt else None

    def _owned_labels(self) -> dict[str, str]:
        return {**MANAGED_BY_LABELS, STACK_LABEL: stack_label_value()}

    def _opts(self, provider: k8s.Provider, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=provider, **kwargs)

    # -- steps -------------------------------------------------------------------------------------------------

    def _remote_namespace(
        self, remote: k8s.Provider, after: pulumi.Output[Any]
    ) -> k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch:
        """A Namespace this registration owns (`create_remote_namespace`), else a label on one it does not own.

        The two are different resource types under one name, and the type is part of the URN: without an alias,
        turning `create_remote_namespace` off would create the patch and then delete the old Namespace, and with it
        the agent and everything else in it; turning it on would fail with "already exists". Each aliases the other
        type, so the engine carries the state over as an update of the same object: the namespace is never deleted
        by a toggle, and ownership follows the flag (destroy deletes it only when this program owns it)."""
        s = self._settings
        plain_labels = {"istio-injection": "disabled"}
        # Waits for `after` (its values stay out of it: only that it resolved).
        labels: pulumi.Input[Mapping[str, str]] = pulumi.Output.unsecret(after.apply(lambda _: plain_labels))
        name = f"{self._name}-namespace"
        if s.create_remote_namespace:
            return k8s.core.v1.Namespace(
                name,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=s.remote_namespace, labels=labels),
                opts=self._opts(
                    remote,
                    aliases=[pulumi.Alias(type_=NAMESPACE_PATCH_TYPE)],
                    import_=self._adopted(s.remote_namespace),
                ),
            )
        # A namespace the user already had: label it (server-side apply), never delete it. Others manage that
        # namespace, so another field manager may own the label already: take it over (pulumi-kubernetes' patchForce)
        # rather than fail; the label is what keeps Istio from injecting a sidecar into the agent.
        return k8s.core.v1.NamespacePatch(
            name,
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=s.remote_namespace, labels=labels, annotations={"pulumi.com/patchForce": "true"}
            ),
            opts=self._opts(remote, retain_on_delete=True, aliases=[pulumi.Alias(type_=NAMESPACE_TYPE)]),
        )

    def _copy_root_ca(
        self, relay_secrets: pulumi.Output[Mapping[str, str]], remote: k8s.Provider, namespace: pulumi.Resource
    ) -> k8s.core.v1.Secret:
        gen = self._settings.generation
        ca_only: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            relay_secrets.apply(lambda values: {gen.root_ca_key: values[gen.root_ca_secret]})
        )
        return k8s.core.v1.Secret(
            f"{self._name}-root-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=gen.root_ca_secret, namespace=self._settings.remote_namespace, labels=self._owned_labels()
            ),
            type="Opaque",
            data=ca_only,
            opts=self._opts(
                remote,
                depends_on=[namespace],
                delete_before_replace=True,
                import_=self._adopted(f"{self._settings.remote_namespace}/{gen.root_ca_secret}"),
            ),
        )

    def _bootstrap_token_manifest(self, relay_secrets: pulumi.Output[Mapping[str, str]]) -> pulumi.Output[str]:
        """The token Secret manifest for stdin (secret): the token's life belongs to the registration step."""
        gen = self._settings.generation
        manifest: pulumi.Output[str] = pulumi.Output.secret(
            relay_secrets.apply(
                lambda values: secret_manifest(
                    self._settings.remote_namespace,
                    gen.token_secret,
                    {gen.token_key: values[gen.token_secret]},
                    MANAGED_BY_LABELS,
                )
            )
        )
        return manifest

    def _place_bootstrap_token(self, namespace: pulumi.Resource, token_manifest: pulumi.Output[str]) -> local.Command:
        """The token for the agent's first start, and the agent's identity removed on destroy.

        Later changes of how the cluster is reached (a kubeconfig path on another CI runner, refreshed credentials)
        and a rotated token are ignored: nothing here needs to run again for them, so a `pulumi up` stays a no-change
        (the certificate step reads the current values on every `pulumi up`)."""
        s = self._settings
        step = token_step(self._identity)
        return local.Command(
            f"{self._name}-bootstrap-token",
            interpreter=step.interpreter,
            create=PLACE_TOKEN,
            update=KEEP_TOKEN,
            delete=FORGET_IDENTITY,
            stdin=token_manifest,
            environment={**kubectl_environment(s.remote), **({"GM_ADOPT": "yes"} if s.adopt else {})},
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[namespace],
                additional_secret_outputs=["stdout", "stderr"],
                ignore_changes=["environment", "stdin"],
            ),
        )

    def _install_agent_crds(
        self,
        remote: k8s.Provider,
        namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch,
        version: pulumi.Output[str],
    ) -> k8s.helm.v3.Release | None:
        """The generation's CRDs chart (2.x: `gloo-platform-crds`) at the agent's version, before the agent, with the
        stack's `crd_values` (e.g. `featureGates.ExternalWorkloads: true`, as GitOps setups pass it).

        Retained on destroy: deleting it would delete the CRDs and with them every Gloo custom resource on the
        workload cluster (meshctl 1.x's deregister had the same hazard). Pulumi forgets the release instead."""
        s = self._settings
        chart = s.generation.crds_chart
        if chart is None:
            return None
        return k8s.helm.v3.Release(
            f"{self._name}-agent-crds",
            name=chart,
            chart=chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=s.chart_repo),
            namespace=s.remote_namespace,
            # None when none are given: a stack from before crd_values keeps the same inputs (no diff on upgrade).
            values=dict(s.crd_values) or None,
            create_namespace=False,
            opts=self._opts(
                remote,
                depends_on=[namespace],
                retain_on_delete=True,
                import_=self._adopted(f"{s.remote_namespace}/{chart}"),
            ),
        )

    def _install_agent(
        self,
        remote: k8s.Provider,
        namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch,
        version: pulumi.Output[str],
        address: pulumi.Output[str],
        telemetry_address: pulumi.Output[str] | None,
        prerequisites: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        s = self._settings
        gen = s.generation

        def values(resolved: list[str]) -> dict[str, Any]:
            server_address, agent_version, *telemetry = resolved
            try:
                return s.helm_values(
                    server_address=server_address,
                    agent_version=agent_version,
                    telemetry_address=telemetry[0] if telemetry else None,
                )
            except ValueConflictError as conflict:
                raise agent_values_error(conflict, gen) from None

        inputs = [address, version] + ([telemetry_address] if telemetry_address is not None else [])
        return k8s.helm.v3.Release(
            f"{self._name}-agent",
            name=s.agent_release_name,
            chart=gen.chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=s.chart_repo),
            namespace=s.remote_namespace,
            values=pulumi.Output.all(*inputs).apply(values),
            create_namespace=False,
            opts=self._opts(
                remote,
                depends_on=[namespace, *prerequisites],
                import_=self._adopted(f"{s.remote_namespace}/{s.agent_release_name}"),
            ),
        )

    def _declare_kubernetes_cluster(
        self, mgmt: k8s.Provider, release: k8s.helm.v3.Release
    ) -> k8s.apiextensions.CustomResource:
        s = self._settings
        gen = s.generation
        return k8s.apiextensions.CustomResource(
            f"{self._name}-kubernetes-cluster",
            api_version=gen.cluster_api_version,
            kind=gen.cluster_kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=s.cluster_name, namespace=s.mgmt_namespace, labels=self._owned_labels()
            ),
            spec={"clusterDomain": s.cluster_domain},
            opts=self._opts(
                mgmt,
                depends_on=[release],
                delete_before_replace=True,
                import_=self._adopted(f"{s.mgmt_namespace}/{s.cluster_name}"),
            ),
        )

    def _check_planned_objects(
        self,
        namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch,
        root_ca_copy: k8s.core.v1.Secret | None,
        crds: k8s.helm.v3.Release | None,
        release: k8s.helm.v3.Release,
        cluster: k8s.apiextensions.CustomResource,
    ) -> pulumi.Output[bool]:
        s = self._settings
        gen = s.generation
        ns = s.remote_namespace
        earlier = (
            "left by an earlier registration (meshctl, the guide's Helm steps, another stack, or a `pulumi up` of this "
            "stack that was terminated). Fix: take it over in place with adopt: true for one pulumi up (README, "
            "Adopting a registered cluster), or deregister that registration first."
        )
        remote = [
            PlannedObject(
                namespace,
                f"namespace/{ns}",
                f"namespace {ns!r} exists already and this stack does not manage it. Fix: set createNamespace: false "
                "(create_remote_namespace=False) to use it as it is, or delete it."
                if s.create_remote_namespace
                else f"namespace {ns!r} does not exist, and createNamespace is false. Fix: create it, or set "
                "createNamespace: true.",
                must_exist=not s.create_remote_namespace,
            )
        ]
        if root_ca_copy is not None:
            ref = f"secret/{ns}/{gen.root_ca_secret}"
            problem = f"secret {gen.root_ca_secret!r} exists already in namespace {ns!r}, {earlier}"
            remote.append(PlannedObject(root_ca_copy, ref, problem, marked=True))
        for helm_release, release_name in ((crds, gen.crds_chart), (release, s.agent_release_name)):
            if helm_release is not None and release_name is not None:
                ref = f"helm-release/{ns}/{release_name}"
                problem = f"Helm release {release_name!r} exists already in namespace {ns!r}, {earlier}"
                remote.append(PlannedObject(helm_release, ref, problem))
        if crds is not None and gen.crds_chart is not None:
            # A destroyed registration into another namespace leaves its CRDs (retained) owned by a release there.
            remote.append(
                PlannedObject(
                    crds,
                    f"helm-crds/{ns}/{gen.crds_chart}",
                    f"the CRDs of chart {gen.crds_chart!r} exist already, installed by a Helm release "
                    f"{gen.crds_chart!r} in another namespace, and Helm will not take them over into namespace "
                    f"{ns!r}. Fix: register the cluster into that namespace; or, if that registration is gone (its "
                    f"namespace deleted by pulumi destroy), hand the CRDs over: kubectl annotate crd <each CRD found> "
                    f"meta.helm.sh/release-namespace={ns} --overwrite.",
                )
            )
        management = [
            PlannedObject(
                cluster,
                f"{gen.cluster_resource}/{s.mgmt_namespace}/{s.cluster_name}",
                f"{gen.cluster_kind} {s.cluster_name!r} exists already in namespace {s.mgmt_namespace!r} of the "
                f"management cluster: the name is registered with this management plane, {earlier}",
                marked=True,
            )
        ]
        if s.adopt:  # taken over, not created: what exists is what is imported (the namespace only labelled)
            remote = [p for p in remote if p.must_exist]
            management = []
        return check_planned_objects(s, f"{STACK_LABEL}={stack_label_value()}", remote, management, self)

    def _ensure_client_certificate(
        self, address: pulumi.Output[str], token_manifest: pulumi.Output[str], after: list[pulumi.Resource]
    ) -> pulumi.Output[bool]:
        """Steps 8 and 9 as a `command:local:run` invoke on every `pulumi up` (not in preview), after the release and
        the KubernetesCluster: not a resource, so it has no inputs to diff. It always uses the current cluster access,
        never puts a rotated token back on a registered cluster, and bootstraps again where the certificate is gone."""
        if pulumi.runtime.is_dry_run():
            return _unknown_bool()
        s = self._settings
        step = client_certificate_step(
            self._identity,
            cluster_name=s.cluster_name,
            agent_deployment=s.generation.agent_deployment,
            timeout_seconds=s.client_cert_timeout_seconds,
            remove_token=s.remove_bootstrap_token,
        )
        environment: dict[str, pulumi.Input[str]] = {
            **kubectl_environment(s.remote),
            "GM_RELAY_ADDRESS": address,
            "GM_RELAY_AUTHORITY": s.relay_authority,
        }
        result = local.run_output(
            command=ENSURE_CERTIFICATE,
            interpreter=step.interpreter,
            stdin=token_manifest,
            environment=cast("pulumi.Output[Mapping[str, str]]", pulumi.Output.from_input(environment)),
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=after),
        )
        # pulumi-command shows the step's lines only while it runs (ephemeral status messages); the ones a user must
        # see after the run are re-issued here (step_report: fixed texts only, though the output is secret when a
        # kubeconfig's contents are). Then only that it ended well is kept.

        def ended_well(stderr: str) -> bool:
            report_certificate_step(stderr, self, cluster_name=s.cluster_name, namespace=s.remote_namespace)
            return True

        return pulumi.Output.unsecret(result.stderr).apply(ended_well)


def _unknown_bool() -> pulumi.Output[bool]:
    """An output whose value is not known (what a preview shows for a value only `pulumi up` produces)."""

    async def value() -> bool:
        return False

    async def known() -> bool:
        return False

    return pulumi.Output(set(), value(), known())
