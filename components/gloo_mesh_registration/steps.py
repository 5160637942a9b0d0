"""The resources of meshctl's registration steps 3 to 7, declared as children of one registration.

:class:`gloo_mesh_registration.registration.RemoteClusterRegistration` calls them in meshctl's order and wires what
each waits on; each method here declares one step's resource from the validated settings, so the component reads as
the list of steps and this module as what each step is.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import local

from .args import RegistrationSettings
from .lifecycle import (
    FORGET_IDENTITY,
    KEEP_TOKEN,
    PLACE_TOKEN,
    RemoteIdentity,
    checked_kubectl,
    kubectl_environment,
    secret_manifest,
    token_step,
)
from .validation import agent_values_error
from .values import ValueConflictError

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


@dataclass(frozen=True)
class RegistrationSteps:
    """Declares the resources of one registration's steps under ``parent``, named ``<name>-<step>``."""

    name: str
    settings: RegistrationSettings
    parent: pulumi.Resource

    @property
    def identity(self) -> RemoteIdentity:
        """The agent's identity on the registered cluster: its namespace, token secret and client certificate."""
        gen = self.settings.generation
        return RemoteIdentity(self.settings.remote_namespace, gen.token_secret, gen.client_cert_secret)

    def _adopted(self, resource_id: str) -> str | None:
        """With ``adopt``, the ID of the existing object to take over: the engine imports it, then updates it in place
        to this registration's inputs (pulumi/pulumi pkg/resource/deploy/step_generator.go: an import followed by its
        diff's update steps; only a replacement of an imported resource is refused)."""
        return resource_id if self.settings.adopt else None

    def _owned_labels(self) -> dict[str, str]:
        return {**MANAGED_BY_LABELS, STACK_LABEL: stack_label_value()}

    def _opts(self, provider: k8s.Provider, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, provider=provider, **kwargs)

    def remote_namespace(
        self, remote: k8s.Provider, after: pulumi.Output[Any]
    ) -> k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch:
        """A Namespace this registration owns (`create_remote_namespace`), else a label on one it does not own.

        The two are different resource types under one name, and the type is part of the URN: without an alias,
        turning `create_remote_namespace` off would create the patch and then delete the old Namespace, and with it
        the agent and everything else in it; turning it on would fail with "already exists". Each aliases the other
        type, so the engine carries the state over as an update of the same object: the namespace is never deleted
        by a toggle, and ownership follows the flag (destroy deletes it only when this program owns it)."""
        s = self.settings
        plain_labels = {"istio-injection": "disabled"}
        # Waits for `after` (its values stay out of it: only that it resolved).
        labels: pulumi.Input[Mapping[str, str]] = pulumi.Output.unsecret(after.apply(lambda _: plain_labels))
        name = f"{self.name}-namespace"
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

    def copy_root_ca(
        self, relay_secrets: pulumi.Output[Mapping[str, str]], remote: k8s.Provider, namespace: pulumi.Resource
    ) -> k8s.core.v1.Secret:
        gen = self.settings.generation
        ca_only: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            relay_secrets.apply(lambda values: {gen.root_ca_key: values[gen.root_ca_secret]})
        )
        return k8s.core.v1.Secret(
            f"{self.name}-root-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=gen.root_ca_secret, namespace=self.settings.remote_namespace, labels=self._owned_labels()
            ),
            type="Opaque",
            data=ca_only,
            opts=self._opts(
                remote,
                depends_on=[namespace],
                delete_before_replace=True,
                import_=self._adopted(f"{self.settings.remote_namespace}/{gen.root_ca_secret}"),
            ),
        )

    def bootstrap_token_manifest(self, relay_secrets: pulumi.Output[Mapping[str, str]]) -> pulumi.Output[str]:
        """The token Secret manifest for stdin (secret): the token's life belongs to the registration step."""
        gen = self.settings.generation
        manifest: pulumi.Output[str] = pulumi.Output.secret(
            relay_secrets.apply(
                lambda values: secret_manifest(
                    self.settings.remote_namespace,
                    gen.token_secret,
                    {gen.token_key: values[gen.token_secret]},
                    MANAGED_BY_LABELS,
                )
            )
        )
        return manifest

    def place_bootstrap_token(self, namespace: pulumi.Resource, token_manifest: pulumi.Output[str]) -> local.Command:
        """The token for the agent's first start, and the agent's identity removed on destroy.

        Later changes of how the cluster is reached (a kubeconfig path on another CI runner, refreshed credentials)
        and a rotated token are ignored: nothing here needs to run again for them, so a `pulumi up` stays a no-change
        (the certificate step reads the current values on every `pulumi up`)."""
        s = self.settings
        step = token_step(self.identity)
        return local.Command(
            f"{self.name}-bootstrap-token",
            interpreter=step.interpreter,
            create=PLACE_TOKEN,
            update=KEEP_TOKEN,
            delete=FORGET_IDENTITY,
            stdin=token_manifest,
            environment={
                **checked_kubectl(self.parent),
                **kubectl_environment(s.remote),
                **({"GM_ADOPT": "yes"} if s.adopt else {}),
            },
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self.parent,
                depends_on=[namespace],
                additional_secret_outputs=["stdout", "stderr"],
                ignore_changes=["environment", "stdin"],
            ),
        )

    def install_agent_crds(
        self,
        remote: k8s.Provider,
        namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch,
        version: pulumi.Output[str],
    ) -> k8s.helm.v3.Release | None:
        """The generation's CRDs chart (2.x: `gloo-platform-crds`) at the agent's version, before the agent, with the
        stack's `crd_values` (e.g. `featureGates.ExternalWorkloads: true`, as GitOps setups pass it).

        Retained on destroy: deleting it would delete the CRDs and with them every Gloo custom resource on the
        workload cluster (meshctl 1.x's deregister had the same hazard). Pulumi forgets the release instead."""
        s = self.settings
        chart = s.generation.crds_chart
        if chart is None:
            return None
        return k8s.helm.v3.Release(
            f"{self.name}-agent-crds",
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

    def install_agent(
        self,
        remote: k8s.Provider,
        namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch,
        version: pulumi.Output[str],
        address: pulumi.Output[str],
        telemetry_address: pulumi.Output[str] | None,
        prerequisites: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        s = self.settings
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
            f"{self.name}-agent",
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

    def declare_kubernetes_cluster(
        self, mgmt: k8s.Provider, release: k8s.helm.v3.Release
    ) -> k8s.apiextensions.CustomResource:
        s = self.settings
        gen = s.generation
        return k8s.apiextensions.CustomResource(
            f"{self.name}-kubernetes-cluster",
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
