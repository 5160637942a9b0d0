"""`RemoteClusterRegistration`: `meshctl cluster register enterprise`, made declarative.

The component reads as meshctl's steps, in order (:meth:`RemoteClusterRegistration._register`); what each step
declares is in :mod:`gloo_mesh_registration.steps`. What each step waits on is expressed through Pulumi
dependencies, so `pulumi preview` shows the order, `pulumi up` converges on a re-run instead of failing, and
`pulumi destroy` deregisters in the reverse order: the KubernetesCluster first, then the agent release, then
the copied secrets and the agent's identity, never a CRD and never a management secret.
"""

import threading

import pulumi
import pulumi_kubernetes as k8s

from .args import ClusterAccess, RegistrationConfigError, RegistrationSettings, RemoteClusterRegistrationArgs
from .discovery import (
    ReadScope,
    discover_generation,
    find_agent_releases,
    read_relay_secrets,
    resolve_agent_version,
    resolve_relay_address,
    resolve_telemetry_address,
)
from .facts import AGENT_VERSION_OUTPUT, CLUSTER_NAME_OUTPUT, COMPONENT_TYPE
from .lifecycle import ENSURE_CERTIFICATE, client_certificate_step, run_step
from .preflight import RegistrationResources, check_registration_preview
from .program_run import run_state
from .sdk_internals import unknown_output
from .step_report import report_certificate_step
from .steps import STACK_LABEL, RegistrationSteps, stack_label_value
from .validation import validate_registration_args


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
    """Registers one workload cluster with a Gloo Mesh Enterprise 1.x or Gloo Platform 2.x management plane."""

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
        self._register(name, settings, opts)

    @classmethod
    def from_settings(
        cls, name: str, settings: RegistrationSettings, opts: pulumi.ResourceOptions | None = None
    ) -> "RemoteClusterRegistration":
        """A registration from settings that were validated already: what ``read_stack_config`` returns (each
        cluster checked there, labelled with its stack-file keys, generation discovered).

        Not validated again: make ``settings`` with ``validate_registration_args`` (the stack reader runs it; a
        program that passes args gets it from ``__init__``), so every check held when they were made; settings built
        by hand are taken as they are. Running the validation twice would discover the generation and look for
        adopted releases twice. What only a
        program run can tell (a cluster name registered twice with one management plane) is still checked here.
        ``__init__`` keeps the ``args`` mapping the package schema is inferred from; this is the second way in."""
        registration = cls.__new__(cls)
        registration._register(name, settings, opts)
        return registration

    def _register(self, name: str, settings: RegistrationSettings, opts: pulumi.ResourceOptions | None) -> None:
        """meshctl's registration steps, in order, from validated settings."""
        CLUSTER_NAME_CLAIMS.claim(settings, name)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._settings = settings
        steps = RegistrationSteps(name, settings, self)
        self._identity = steps.identity

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
        namespace = steps.remote_namespace(remote, known_good)
        prerequisites: list[pulumi.Resource] = []
        root_ca_copy: k8s.core.v1.Secret | None = None
        token: pulumi.Output[str] | None = None
        if relay_secrets is not None:
            # 4. Root CA: ca.crt only, so the CA's private key never leaves the management cluster.
            root_ca_copy = steps.copy_root_ca(relay_secrets, remote, namespace)
            prerequisites.append(root_ca_copy)
            # 5. Bootstrap token: in place for the agent's first start; stale client certificate dropped.
            token = steps.bootstrap_token_manifest(relay_secrets)
            prerequisites.append(steps.place_bootstrap_token(namespace, token))
        # 6. The agent release, only once its namespace and secrets exist (2.x: its CRDs release first).
        crds = steps.install_agent_crds(remote, namespace, version)
        if crds is not None:
            prerequisites.append(crds)
        release = steps.install_agent(remote, namespace, version, address, telemetry_address, prerequisites)
        # 7. The KubernetesCluster in the management namespace, after the release.
        cluster = steps.declare_kubernetes_cluster(mgmt, release)
        # A preview fails where `pulumi up` would: an object about to be created that exists already.
        resources = RegistrationResources(namespace, root_ca_copy, crds, release, cluster)
        checked = check_registration_preview(settings, resources, f"{STACK_LABEL}={stack_label_value()}", self)
        # 8 and 9. Wait for the client certificate, then remove the bootstrap token (also on failure and on a kill).
        certificate: pulumi.Output[bool] = pulumi.Output.from_input(False)
        if settings.wait_for_client_cert and token is not None:  # never in insecure mode
            certificate = self._ensure_client_certificate(address, token, [release, cluster])
        if pulumi.runtime.is_dry_run():
            in_preview = certificate
            certificate = checked.apply(lambda _: in_preview)  # the check's failure fails the preview
        self._publish_outputs(address, version, release, certificate)

    def _publish_outputs(
        self,
        address: pulumi.Output[str],
        version: pulumi.Output[str],
        release: k8s.helm.v3.Release,
        certificate: pulumi.Output[bool],
    ) -> None:
        """The component's outputs, registered under their attribute names (the package schema's properties). The
        policy pack reads two of them from the component's state (names from ``facts``): the cluster's name, and the
        agent version, which is the server's version read from its Deployment when none was given."""
        self.cluster_name = pulumi.Output.from_input(self._settings.cluster_name)
        self.relay_server_address = address
        self.agent_version = version
        self.remote_namespace = pulumi.Output.from_input(self._settings.remote_namespace)
        self.release_status = release.status.apply(lambda s: s.status)
        self.client_certificate_issued = certificate
        self.register_outputs(
            {
                CLUSTER_NAME_OUTPUT: self.cluster_name,
                "relay_server_address": self.relay_server_address,
                AGENT_VERSION_OUTPUT: self.agent_version,
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
            f"{self.pulumi_resource_name}-{role}",
            context=access.context,
            kubeconfig=access.kubeconfig_input(),
            # A changed Secret is updated in place, not replaced: a rotated root CA reaches the copy with no moment
            # where the agent namespace has none (the provider replaces changed Secrets unless told so).
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    # -- steps 8 and 9 -------------------------------------------------------------------------------------------

    def _ensure_client_certificate(
        self, address: pulumi.Output[str], token_manifest: pulumi.Output[str], after: list[pulumi.Resource]
    ) -> pulumi.Output[bool]:
        """Steps 8 and 9 as a `command:local:run` invoke on every `pulumi up` (not in preview), after the release and
        the KubernetesCluster: not a resource, so it has no inputs to diff. It always uses the current cluster access,
        never puts a rotated token back on a registered cluster, and bootstraps again where the certificate is gone."""
        if pulumi.runtime.is_dry_run():
            return unknown_output(False)
        s = self._settings
        step = client_certificate_step(
            self._identity,
            cluster_name=s.cluster_name,
            agent_deployment=s.generation.agent_deployment,
            timeout_seconds=s.client_cert_timeout_seconds,
            remove_token=s.remove_bootstrap_token,
        )
        result = run_step(
            step,
            ENSURE_CERTIFICATE,
            s.remote,
            {"GM_RELAY_ADDRESS": address, "GM_RELAY_AUTHORITY": s.relay_authority},
            pulumi.InvokeOutputOptions(parent=self, depends_on=after),
            stdin=token_manifest,
            show_progress=True,
        )
        # pulumi-command shows the step's lines only while it runs (ephemeral status messages); the ones a user must
        # see after the run are re-issued here (step_report: fixed texts only, though the output is secret when a
        # kubeconfig's contents are). Then only that it ended well is kept.

        def ended_well(stderr: str) -> bool:
            report_certificate_step(stderr, self, cluster_name=s.cluster_name, namespace=s.remote_namespace)
            return True

        return pulumi.Output.unsecret(result.stderr).apply(ended_well)
