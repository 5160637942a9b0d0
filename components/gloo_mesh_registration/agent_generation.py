"""What is specific to one generation of the Gloo relay agent: Gloo Mesh Enterprise 1.x, or Gloo Platform 2.x.

The registration steps in :mod:`gloo_mesh_registration.registration` never spell a chart name, a Helm value key, a
secret name or an API version themselves: they ask an :class:`AgentGeneration`. Both generations register the same way
(the relay secrets copied, the agent installed with the server's version and address, a KubernetesCluster on the
management plane, the wait for the client certificate); only names, value paths and a few defaults differ. Facts and
their sources: ``docs/gloo-facts.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import semver


class GenerationName(StrEnum):
    """How a stack names the generation of its management plane (``agentGeneration``)."""

    GLOO_MESH_ENTERPRISE_1 = "gloo-mesh-enterprise-1"
    """Gloo Mesh Enterprise 1.x: server ``enterprise-networking``, chart ``enterprise-agent``."""
    GLOO_PLATFORM_2 = "gloo-platform-2"
    """Gloo Platform 2.x (Gloo Mesh 2.3 and later): server ``gloo-mesh-mgmt-server``, charts ``gloo-platform-crds``
    and ``gloo-platform``."""


GLOBAL_INSECURE_SINCE = "1.1.0-beta20"
"""The first 1.x agent that reads ``global.insecure``; earlier ones read ``relay.insecure``.

Source: solo-io/gloo-mesh, ``docs/content/reference/helm/gloo_mesh_enterprise/latest/enterprise_agent.md``: the
reference generated for v1.1.0-beta20 (commit 908a260572e28234d2169bfc58507e253f7af6ed, its ``_index.md`` titled
"v1.1.0-beta20") is the first with ``global.insecure``; those generated for v1.1.0-beta18 (acfe79712cf2) and
v1.1.0-beta19 (16daf13b8207) lack it. The insecure registration guide
(``docs/content/setup/cluster_registration/enterprise_insecure_cluster_registration.md``, commit
8cc2b3ff9d1eb1337ce71fa01b860654a7da8fb8) says "v1.1.0-beta20 or above is required". ``v1.1.0-beta17`` is an
open-source meshctl tag, not an enterprise chart version."""


@dataclass(frozen=True)
class AgentGeneration(ABC):
    """Names, value paths and defaults of one relay agent generation."""

    name: GenerationName
    label: str
    chart: str
    chart_repo: str
    release_name: str
    """The agent release's usual name (the default of ``agent_release_name``)."""
    release_names_seen: tuple[str, ...]
    """Names real installations give the agent release (the usual one first): adoption looks for each."""
    crds_chart: str | None
    """A chart with the agent's CRDs, installed (at the same version) before the agent's; None: the agent chart has
    them."""
    default_namespace: str
    agent_deployment: str
    """The agent's Deployment on the registered cluster (whose logs say why a client certificate does not come)."""
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
    cluster_value_path: tuple[str, ...]
    """Where the agent's values name the cluster (``relay.cluster``, ``common.cluster``)."""
    relay_value_path: tuple[str, ...]
    """Where the agent's relay values live (``relay``, ``glooAgent.relay``): ``serverAddress``, ``authority``, ..."""
    removes_token_by_default: bool
    """Whether the bootstrap token is removed once the agent holds its certificate, unless the stack says otherwise."""
    telemetry_service: str | None
    """The telemetry gateway Service on the management cluster (None: the generation has none)."""
    telemetry_port_name: str | None
    minimum_version: tuple[int, int] | None = None
    """The first (major, minor) release whose charts and values are this generation's; None: every version."""
    minimum_version_reason: str = ""
    """Why an earlier version cannot be registered as this generation (for the error that refuses it)."""

    def below_minimum(self, version: str) -> bool:
        """Whether ``version`` (semver, already normalized) is older than :attr:`minimum_version` (prereleases of the
        minimum release count as that release)."""
        if self.minimum_version is None:
            return False
        parsed = semver.Version.parse(version)
        return (parsed.major, parsed.minor) < self.minimum_version

    @property
    def cluster_resource(self) -> str:
        """The KubernetesCluster resource as kubectl names it, e.g. ``kubernetesclusters.multicluster.solo.io``."""
        return f"{self.cluster_kind.lower()}s.{self.cluster_api_version.split('/', 1)[0]}"

    @property
    def cluster_type(self) -> str:
        """The KubernetesCluster's type token, as pulumi-kubernetes registers a custom resource."""
        return f"kubernetes:{self.cluster_api_version}:{self.cluster_kind}"

    @abstractmethod
    def registration_values(
        self,
        *,
        cluster_name: str,
        server_address: str,
        authority: str,
        namespace: str,
        insecure: bool,
        agent_version: str,
        telemetry_address: str | None = None,
    ) -> dict[str, Any]:
        """The Helm values the registration owns; a user's ``agent_values`` may not change them."""

    @abstractmethod
    def insecure_value_paths(self) -> tuple[tuple[str, ...], ...]:
        """Every value path by which some version of the chart turns TLS off."""

    @abstractmethod
    def value_versions(self) -> tuple[str, ...]:
        """One agent version from each range of versions with the same :meth:`registration_values` (they change at a
        cut-over, such as 1.x's insecure flag): while the version is still to be discovered, validation checks a
        user's ``agent_values`` against each, so that no conflict waits for the discovered version."""

    def reserved_value_paths(self) -> frozenset[tuple[str, ...]]:
        """Value paths that only the registration sets (through the registration's own arguments)."""
        relay = self.relay_value_path
        return frozenset(
            {
                self.cluster_value_path,
                (*relay, "serverAddress"),
                (*relay, "authority"),
                (*relay, "rootTlsSecret"),
                (*relay, "tokenSecret"),
                (*relay, self._client_cert_value_key),
                *self.insecure_value_paths(),
            }
        )

    @property
    @abstractmethod
    def _client_cert_value_key(self) -> str: ...

    def _secret_values(self, namespace: str) -> dict[str, Any]:
        return {
            "rootTlsSecret": {"name": self.root_ca_secret, "namespace": namespace},
            self._client_cert_value_key: {"name": self.client_cert_secret, "namespace": namespace},
            "tokenSecret": {"name": self.token_secret, "namespace": namespace, "key": self.token_key},
        }


@dataclass(frozen=True)
class EnterpriseAgent1(AgentGeneration):
    """Gloo Mesh Enterprise 1.x: one chart, ``relay.*`` values, ``multicluster.solo.io/v1alpha1``."""

    def registration_values(
        self,
        *,
        cluster_name: str,
        server_address: str,
        authority: str,
        namespace: str,
        insecure: bool,
        agent_version: str,
        telemetry_address: str | None = None,
    ) -> dict[str, Any]:
        if telemetry_address is not None:
            raise ValueError(f"{self.label} has no telemetry gateway")
        relay: dict[str, Any] = {"serverAddress": server_address, "cluster": cluster_name, "authority": authority}
        values: dict[str, Any] = {"relay": relay}
        if insecure:
            # Before 1.1.0-beta20 the agent reads relay.insecure; from it on, global.insecure (GLOBAL_INSECURE_SINCE).
            if semver.Version.parse(agent_version) < semver.Version.parse(GLOBAL_INSECURE_SINCE):
                relay["insecure"] = True
            else:
                values["global"] = {"insecure": True}
            return values
        relay.update(self._secret_values(namespace))
        return values

    def insecure_value_paths(self) -> tuple[tuple[str, ...], ...]:
        return (("relay", "insecure"), ("global", "insecure"))

    def value_versions(self) -> tuple[str, ...]:
        return ("1.0.0", GLOBAL_INSECURE_SINCE)

    @property
    def _client_cert_value_key(self) -> str:
        return "clientCertSecret"


@dataclass(frozen=True)
class GlooPlatform2(AgentGeneration):
    """Gloo Platform 2.x: ``gloo-platform-crds`` then ``gloo-platform`` with ``glooAgent.*`` and ``common.cluster``
    values, ``admin.gloo.solo.io/v2``; optionally the telemetry collector pointed at the telemetry gateway."""

    def registration_values(
        self,
        *,
        cluster_name: str,
        server_address: str,
        authority: str,
        namespace: str,
        insecure: bool,
        agent_version: str,
        telemetry_address: str | None = None,
    ) -> dict[str, Any]:
        relay: dict[str, Any] = {"serverAddress": server_address, "authority": authority}
        agent: dict[str, Any] = {"enabled": True, "relay": relay}
        values: dict[str, Any] = {"common": {"cluster": cluster_name}, "glooAgent": agent}
        if insecure:
            agent["insecure"] = True
        else:
            relay.update(self._secret_values(namespace))
        if telemetry_address is not None:
            values["telemetryCollector"] = {
                "enabled": True,
                "config": {"exporters": {"otlp": {"endpoint": telemetry_address}}},
            }
        return values

    def insecure_value_paths(self) -> tuple[tuple[str, ...], ...]:
        return (("glooAgent", "insecure"), ("common", "insecure"))

    def value_versions(self) -> tuple[str, ...]:
        return ("2.0.0",)  # the values are the same for every 2.x version

    def reserved_value_paths(self) -> frozenset[tuple[str, ...]]:
        return super().reserved_value_paths() | {
            ("glooAgent", "enabled"),
            ("telemetryCollector", "config", "exporters", "otlp", "endpoint"),
        }

    @property
    def _client_cert_value_key(self) -> str:
        return "clientTlsSecret"


GLOO_MESH_ENTERPRISE_1X = EnterpriseAgent1(
    name=GenerationName.GLOO_MESH_ENTERPRISE_1,
    label="Gloo Mesh Enterprise 1.x",
    chart="enterprise-agent",
    chart_repo="https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent",
    release_name="enterprise-agent",
    release_names_seen=("enterprise-agent",),
    crds_chart=None,
    default_namespace="gloo-mesh",
    agent_deployment="enterprise-agent",
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
    cluster_value_path=("relay", "cluster"),
    relay_value_path=("relay",),
    removes_token_by_default=True,
    telemetry_service=None,
    telemetry_port_name=None,
)

GLOO_PLATFORM_2X = GlooPlatform2(
    name=GenerationName.GLOO_PLATFORM_2,
    label="Gloo Platform 2.x",
    chart="gloo-platform",
    chart_repo="https://storage.googleapis.com/gloo-platform/helm-charts",
    release_name="gloo-platform",
    # solo-io/workshops (01c2f6ee37f6): `helm upgrade --install gloo-platform gloo-platform` in
    # gloo-mesh/enterprise/2-9/default/README.md, `gloo-platform-agent` in enterprise/2-9/mgmt-as-workload/default/
    # README.md; `gloo-agent` in public Gloo Platform 2.3/2.4 setup guides (docs/gloo-facts.md, "Each fact, with
    # Solo's source (commit and path)").
    release_names_seen=("gloo-platform", "gloo-platform-agent", "gloo-agent"),
    crds_chart="gloo-platform-crds",
    default_namespace="gloo-mesh",
    # solo-io/workshops gloo-mesh/enterprise/2-9/default/README.md (01c2f6ee37f6): `rollout restart deploy
    # gloo-mesh-agent`, `scale deployment.apps/gloo-mesh-agent` on a workload cluster.
    agent_deployment="gloo-mesh-agent",
    server_deployment="gloo-mesh-mgmt-server",
    server_container_hint="mgmt-server",
    server_service="gloo-mesh-mgmt-server",
    server_grpc_port_name="grpc",
    default_authority="gloo-mesh-mgmt-server.gloo-mesh",
    root_ca_secret="relay-root-tls-secret",
    root_ca_key="ca.crt",
    token_secret="relay-identity-token-secret",
    token_key="token",
    client_cert_secret="relay-client-tls-secret",
    cluster_api_version="admin.gloo.solo.io/v2",
    cluster_kind="KubernetesCluster",
    cluster_value_path=("common", "cluster"),
    relay_value_path=("glooAgent", "relay"),
    # The workshops never remove it, and the agent keeps pointing at it (README: the trade-off).
    removes_token_by_default=False,
    telemetry_service="gloo-telemetry-gateway",
    telemetry_port_name="otlp",
    # solo-io/workshops gloo-mesh/old-versions/gloo-mesh-2-2/default/README.md (01c2f6ee37f6): 2.2.6 installs
    # `helm upgrade --install gloo-mesh-agent gloo-mesh-agent/gloo-mesh-agent` with `--set cluster=...`,
    # `relay.serverAddress`, `relay.authority`; gloo-mesh-2-3/default/README.md (2.3.18) is the first with
    # `gloo-platform-crds` and `gloo-platform`.
    minimum_version=(2, 3),
    minimum_version_reason="Gloo Mesh 2.0 to 2.2 ship the agent as one chart, gloo-mesh-agent (repository "
    "https://storage.googleapis.com/gloo-mesh-enterprise/gloo-mesh-agent), with top-level `cluster` and `relay.*` "
    "values; the gloo-platform-crds and gloo-platform charts this registration installs start at 2.3",
)

GENERATIONS: dict[GenerationName, AgentGeneration] = {
    GLOO_MESH_ENTERPRISE_1X.name: GLOO_MESH_ENTERPRISE_1X,
    GLOO_PLATFORM_2X.name: GLOO_PLATFORM_2X,
}
