"""What is specific to one generation of the Gloo Mesh relay agent.

The registration steps in :mod:`components.registration` never spell a chart name, a Helm value key, a
secret name or an API version themselves: they ask an :class:`AgentGeneration`. A second generation
(Gloo Platform 2.x: chart ``gloo-platform``, ``common.cluster``, ``admin.gloo.solo.io/v2``) is one more
instance of this class, not a change to the steps. Facts and their sources: ``docs/gloo-mesh-relay.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import semver


@dataclass(frozen=True)
class AgentGeneration:
    """Names, value keys and defaults of one relay agent generation."""

    label: str
    chart: str
    chart_repo: str
    release_name: str
    default_namespace: str
    server_deployment: str
    server_container_hint: str
    server_service: str
    server_grpc_port_name: str
    default_authority: str
    root_ca_secret: str
    root_ca_key: str
    token_secret: str
    token_key: str
    client_cert_secret: str
    cluster_api_version: str
    cluster_kind: str

    @property
    def cluster_resource(self) -> str:
        """The KubernetesCluster resource as kubectl names it, e.g. ``kubernetesclusters.multicluster.solo.io``."""
        return f"{self.cluster_kind.lower()}s.{self.cluster_api_version.split('/', 1)[0]}"

    def registration_values(
        self,
        *,
        cluster_name: str,
        server_address: str,
        authority: str,
        namespace: str,
        insecure: bool,
        agent_version: str,
    ) -> dict[str, Any]:
        """The Helm values the registration owns; a user's ``agent_values`` may not change them."""
        relay: dict[str, Any] = {
            "serverAddress": server_address,
            "cluster": cluster_name,
            "authority": authority,
        }
        values: dict[str, Any] = {"relay": relay}
        if insecure:
            # 1.0.x reads relay.insecure; global.insecure replaced it in 1.1.0-beta17.
            if semver.Version.parse(agent_version) < semver.Version.parse("1.1.0-beta17"):
                relay["insecure"] = True
            else:
                values["global"] = {"insecure": True}
            return values
        relay["rootTlsSecret"] = {"name": self.root_ca_secret, "namespace": namespace}
        relay["clientCertSecret"] = {"name": self.client_cert_secret, "namespace": namespace}
        relay["tokenSecret"] = {"name": self.token_secret, "namespace": namespace, "key": self.token_key}
        return values

    def reserved_value_paths(self) -> frozenset[tuple[str, ...]]:
        """Value paths that only the registration sets (set through the registration's own arguments)."""
        return frozenset(
            {
                ("relay", "serverAddress"),
                ("relay", "cluster"),
                ("relay", "authority"),
                ("relay", "insecure"),
                ("global", "insecure"),
                ("relay", "rootTlsSecret"),
                ("relay", "clientCertSecret"),
                ("relay", "tokenSecret"),
            }
        )


GLOO_MESH_ENTERPRISE_1X = AgentGeneration(
    label="Gloo Mesh Enterprise 1.x",
    chart="enterprise-agent",
    chart_repo="https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent",
    release_name="enterprise-agent",
    default_namespace="gloo-mesh",
    server_deployment="enterprise-networking",
    server_container_hint="networking",
    server_service="enterprise-networking",
    server_grpc_port_name="grpc",
    default_authority="enterprise-networking.gloo-mesh",
    root_ca_secret="relay-root-tls-secret",
    root_ca_key="ca.crt",
    token_secret="relay-identity-token-secret",
    token_key="token",
    client_cert_secret="relay-client-tls-secret",
    cluster_api_version="multicluster.solo.io/v1alpha1",
    cluster_kind="KubernetesCluster",
)
