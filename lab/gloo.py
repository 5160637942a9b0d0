"""A simulated Gloo Mesh 1.x management plane, a stand-in ``enterprise-agent`` chart repository, and a simulated agent.

What each emulates, and from where (the facts and their sources are in ``docs/gloo-facts.md``):

* :func:`install_management_plane`: what the ``gloo-mesh-enterprise`` chart leaves on a management cluster that the
  registration reads: namespace ``gloo-mesh``, the KubernetesCluster CRD (``tests/data``, vendored from the chart),
  the ``enterprise-networking`` Deployment whose image tag is the version of the agent to install, its Service
  (LoadBalancer, port ``grpc`` 9900, with an ingress address written through the status subresource as a cloud
  controller would), ``relay-root-tls-secret`` (``ca.crt``, ``tls.crt`` and the CA's ``tls.key``) and
  ``relay-identity-token-secret``. No server runs: nothing here terminates the relay.
* :class:`ChartRepository`: a Helm repository over HTTP on 127.0.0.1 (``index.yaml`` plus a packaged chart, made
  by the real ``helm``), holding an ``enterprise-agent`` chart at the management plane's version. Its templates
  consume the values the real chart reads (``relay.cluster``, ``relay.serverAddress``, ``relay.authority``, the
  three secret references, ``relay.insecure``/``global.insecure``) and render them into a ConfigMap the tests read
  back, plus the agent's ServiceAccount and, as the real chart has them, its cluster-scoped RBAC objects (a ClusterRole
  and its ClusterRoleBinding to that ServiceAccount, :func:`agent_rbac_template`; the rules are representative, see
  :data:`AGENT_CLUSTER_ROLE_RULES`); nothing in it needs a kubelet to become ready. With ``agent_deployment``
  (off by default; the fleet benchmark turns it on) it also holds the agent's Deployment, ``enterprise-agent`` (the
  real chart's name, ``AgentGeneration.agent_deployment``), whose Pod only a stand-in can make ready
  (``benchmarks/fleet/agent.py``), so that Helm's await of the release waits for the agent.
* :class:`SimulatedAgent`: what the real agent does on the workload cluster at its relay handshake: once the
  bootstrap token exists in the agent namespace and the release's values name the cluster and a relay address, it
  writes ``relay-client-tls-secret`` after a short delay. Modes where it never answers, or answers late.

Gloo Platform 2.x (``docs/gloo-facts.md``, "Gloo Platform 2.4-2.7, in detail"), alongside:

* :func:`install_platform_management_plane`: what the ``gloo-platform`` chart leaves on a management cluster, in a
  namespace of its own (``gloo-platform``; the 1.x plane is in ``gloo-mesh``, and a namespace holding both servers
  is an error by design): the ``gloo-mesh-mgmt-server`` Deployment (image tag = the 2.x agent version), its Service
  (LoadBalancer, ports ``healthcheck`` 8090 and ``grpc`` 9900), the ``gloo-telemetry-gateway`` Service (LoadBalancer,
  port ``otlp`` 4317), both with an ingress address written through the status subresource, the two relay secrets,
  and a stand-in ``admin.gloo.solo.io/v2`` KubernetesCluster CRD (:func:`platform_cluster_crd`).
* :class:`ChartRepository` also serves stand-ins of ``gloo-platform-crds`` (one CRD, ``workspaces.admin.gloo.solo.io``)
  and ``gloo-platform`` at the 2.x version: the latter renders the values the real chart reads (``common.cluster``,
  ``glooAgent.*``, ``telemetryCollector.*``) into the same ConfigMap and keys as the 1.x stand-in, only when
  ``glooAgent.enabled`` (the real chart's agent is off by default), so :class:`SimulatedAgent` serves both; with it,
  the agent's ServiceAccount and cluster-scoped RBAC objects, as the 1.x stand-in.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gloo_mesh_registration.agent_generation import AgentGeneration
from gloo_mesh_registration.rbac import ChartRbac

from .cluster import CertificateAuthority, ControlPlanes

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "tests" / "data" / "multicluster.solo.io_v1alpha1_crds.yaml"
AGENT_VERSION = "1.1.6"
ENTERPRISE_NETWORKING_IMAGE = f"gcr.io/gloo-mesh/enterprise-networking:{AGENT_VERSION}"
RELAY_ADDRESS = "127.0.0.1:9900"
MGMT_NAMESPACE = "gloo-mesh"
VALUES_CONFIGMAP = "enterprise-agent-rendered-values"

PLATFORM_VERSION = "2.5.8"
"""The Gloo Platform 2.x version: the server's image tag and the version of both stand-in charts."""
PLATFORM_NAMESPACE = "gloo-platform"
PLATFORM_RELAY_ADDRESS = "198.51.100.20:9900"
"""The ``gloo-mesh-mgmt-server`` LoadBalancer's ingress and ``grpc`` port: not the 1.x address, so a test tells which
Service it was read from (nothing dials it; the simulated agent answers without a relay)."""
PLATFORM_TELEMETRY_ADDRESS = "198.51.100.21:4317"
"""The ``gloo-telemetry-gateway`` LoadBalancer's ingress and ``otlp`` port."""
PLATFORM_CLUSTER_CRD = "kubernetesclusters.admin.gloo.solo.io"
PLATFORM_CRDS_CHART_CRD = "workspaces.admin.gloo.solo.io"
"""The one CRD the stand-in ``gloo-platform-crds`` chart installs (the real one installs every Gloo 2.x CRD)."""


@dataclass(frozen=True)
class ManagementPlane:
    """What was installed, for assertions: the secret values (to check they never leak) and the relay address."""

    ca_crt: str
    ca_key: str
    tls_crt: str
    token: str
    relay_address: str
    agent_version: str


def _b64(text: str) -> str:
    return b64encode(text.encode()).decode()


def _relay_credentials(ca_name: str, server_name: str, token_prefix: str) -> dict[str, str]:
    """A management plane's relay credentials, made fresh: a root CA of its own (its key kept, to check that it
    never leaks), the server's certificate for ``server_name``, and a bootstrap token."""
    ca = CertificateAuthority.create(ca_name)
    server_crt, _ = ca.issue(server_name, server=True)
    return {
        "ca_crt": ca.certificate_pem.decode(),
        "ca_key": ca.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
        "tls_crt": server_crt.decode(),
        "token": token_prefix + _b64(str(time.time_ns()))[:16],
    }


def _load_balancer_service(namespace: str, name: str, ports: list[tuple[str, int]]) -> dict[str, Any]:
    """A LoadBalancer Service ``name`` selecting ``app: name``, each named port to the same target port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": name},
            "ports": [{"name": n, "port": port, "targetPort": port, "protocol": "TCP"} for n, port in ports],
        },
    }


def _management_server(namespace: str, name: str, image: str, ports: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The management server as the chart of either generation leaves it: a Deployment ``name`` of one container
    (``image``, whose tag discovery reads as the agent version) and its LoadBalancer Service (no pod runs)."""
    labels = {"app": name}
    container = {"name": name, "image": image, "ports": [{"name": n, "containerPort": port} for n, port in ports]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    return [deployment, _load_balancer_service(namespace, name, ports)]


def _secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: _b64(value) for key, value in data.items()},
    }


def _relay_secrets(plane: ManagementPlane) -> dict[str, dict[str, str]]:
    """The two relay secrets a management plane holds: the root CA (with the server's certificate) and the token."""
    return {
        "relay-root-tls-secret": {"ca.crt": plane.ca_crt, "tls.crt": plane.tls_crt, "tls.key": plane.ca_key},
        "relay-identity-token-secret": {"token": plane.token},
    }


def crd_v1(path: Path) -> dict[str, Any]:
    """The vendored CRD (``apiextensions.k8s.io/v1beta1``, as Gloo Mesh 1.x ships it) as ``v1``, which is all that
    Kubernetes 1.22 and later serve: one top-level ``validation`` schema becomes each version's ``schema``.
    """
    crd = next(d for d in yaml.safe_load_all(path.read_text()) if d)
    if crd["apiVersion"] == "apiextensions.k8s.io/v1":
        return dict(crd)
    spec = dict(crd["spec"])
    validation = spec.pop("validation", None)
    subresources = spec.pop("subresources", None)
    versions = []
    for version in spec["versions"]:
        entry = dict(version)
        if validation is not None:
            entry["schema"] = validation
        if subresources is not None:
            entry["subresources"] = subresources
        versions.append(entry)
    spec["versions"] = versions
    spec.pop("preserveUnknownFields", None)
    return {**crd, "apiVersion": "apiextensions.k8s.io/v1", "spec": spec}


def install_management_plane(planes: ControlPlanes, cluster: str = "mgmt") -> ManagementPlane:
    plane = ManagementPlane(
        **_relay_credentials("relay-root-ca", "enterprise-networking.gloo-mesh", "e2e-relay-identity-token-"),
        relay_address=RELAY_ADDRESS,
        agent_version=AGENT_VERSION,
    )
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd_v1(CRD)))
    planes.kubectl(cluster, "wait", "--for=condition=Established", "crd/kubernetesclusters.multicluster.solo.io")
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MGMT_NAMESPACE}},
        *_management_server(MGMT_NAMESPACE, "enterprise-networking", ENTERPRISE_NETWORKING_IMAGE, [("grpc", 9900)]),
        *(_secret(MGMT_NAMESPACE, name, data) for name, data in _relay_secrets(plane).items()),
    ]
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))
    _set_load_balancer_ingress(planes, cluster, MGMT_NAMESPACE, "enterprise-networking", RELAY_ADDRESS.split(":")[0])
    return plane


CHART_VALUES_TEMPLATE = """\
# Rendered by the stand-in enterprise-agent chart: the values the real chart's templates read.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {{{{ .Release.Namespace }}}}
data:
  cluster: {{{{ .Values.relay.cluster | default "" | quote }}}}
  serverAddress: {{{{ .Values.relay.serverAddress | default "" | quote }}}}
  authority: {{{{ .Values.relay.authority | default "" | quote }}}}
  insecure: {{{{ or .Values.relay.insecure (and .Values.global .Values.global.insecure) | default false | quote }}}}
  rootTlsSecret: {{{{ .Values.relay.rootTlsSecret | toJson | quote }}}}
  clientCertSecret: {{{{ .Values.relay.clientCertSecret | toJson | quote }}}}
  tokenSecret: {{{{ .Values.relay.tokenSecret | toJson | quote }}}}
  values.json: {{{{ .Values | toJson | quote }}}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: enterprise-agent
  namespace: {{{{ .Release.Namespace }}}}
"""


AGENT_DEPLOYMENT = "enterprise-agent"
"""The 1.x agent's Deployment (and container) name, as the real chart names it."""
AGENT_POD_SELECTOR = "app=enterprise-agent"
"""The label selector of the stand-in Deployment's Pods (the fleet agent watches Pods by it)."""
STAND_IN_AGENT_IMAGE = "lab.invalid/enterprise-agent-stand-in"
"""Never pulled (no kubelet runs here), as the ``.invalid`` name says. The tag is the chart's version."""


def _agent_rules(certificates_group: str) -> list[dict[str, Any]]:
    """The stand-in agent's ClusterRole rules (:data:`AGENT_CLUSTER_ROLE_RULES`), its certificate resources in
    ``certificates_group``."""
    read, write = ["get", "list", "watch"], ["get", "list", "watch", "create", "update", "patch", "delete"]
    core = ["pods", "services", "endpoints", "configmaps", "nodes", "namespaces"]
    istio = ["destinationrules", "virtualservices", "envoyfilters", "serviceentries", "gateways", "sidecars"]
    return [
        {"apiGroups": [""], "resources": core, "verbs": read},
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "replicasets", "daemonsets", "statefulsets"],
            "verbs": read,
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": write},
        {"apiGroups": ["networking.istio.io"], "resources": istio, "verbs": write},
        {
            "apiGroups": ["security.istio.io"],
            "resources": ["authorizationpolicies", "peerauthentications"],
            "verbs": write,
        },
        {
            "apiGroups": [certificates_group],
            "resources": ["issuedcertificates", "certificaterequests", "podbouncedirectives"],
            "verbs": write,
        },
        {
            "apiGroups": [certificates_group],
            "resources": ["issuedcertificates/status", "certificaterequests/status"],
            "verbs": ["get", "update"],
        },
    ]


AGENT_CLUSTER_ROLE_RULES: dict[str, list[dict[str, Any]]] = {
    "enterprise-agent": _agent_rules("certificates.mesh.gloo.solo.io"),
    "gloo-mesh-agent": _agent_rules("internal.gloo.solo.io"),
}
"""The rules of the agent's ClusterRole in the stand-in charts, by the agent's ServiceAccount name (1.x
``enterprise-agent``, 2.x ``gloo-mesh-agent``). **Representative, not Solo's**: the enterprise-agent and gloo-platform
charts are closed source, and no public copy of their templates or rendered RBAC was found (their generated Helm value
references list no RBAC values). The set is modelled on the ClusterRole that open-source Gloo Mesh documents for a
registered cluster, ``gloomesh-remote-access`` (solo-io/gloo-mesh, ``docs/content/reference/cluster_role.md``, commit
975994489d1f, "current as of version 0.10.3"): reads of workloads and services, full access to secrets, to Istio's
networking and security resources and to Gloo's certificate resources. That is what the agent does on its cluster
(discovery, and issuing the mesh's certificates), and what makes the RBAC of a user who installs the chart mean
something: Kubernetes lets that user create this ClusterRole only while holding every permission in it (``rbac/``,
``docs/rbac.md``). The group of Gloo's certificate resources is 1.x's ``certificates.mesh.gloo.solo.io`` and, for 2.x,
``internal.gloo.solo.io`` (an assumption)."""


def agent_cluster_role_name(service_account: str, namespace: str) -> str:
    """The name of the stand-in charts' ClusterRole and ClusterRoleBinding of an agent released into ``namespace``:
    cluster-scoped names carry the release namespace, as Gloo's charts name theirs (Solo's permissions reference shows
    ``gloo-mesh-mgmt-server-gloo-mesh``), so two registrations of one cluster into two namespaces do not collide."""
    return f"{service_account}-{namespace}"


def stand_in_chart_rbac(generation: AgentGeneration, namespace: str) -> ChartRbac:
    """What the stand-in agent chart of ``generation`` released into ``namespace`` demands of the identity that
    installs it (:func:`gloo_mesh_registration.rbac.chart_rbac` reads the same from the chart ``helm template``
    renders): its ClusterRole and ClusterRoleBinding (named after the agent's ServiceAccount, the generation's
    ``agent_deployment``) and their rules. ``rbac/`` is made with it."""
    service_account = generation.agent_deployment
    name = agent_cluster_role_name(service_account, namespace)
    return ChartRbac(
        cluster_roles=(name,),
        cluster_role_bindings=(name,),
        rules=tuple(AGENT_CLUSTER_ROLE_RULES[service_account]),
        source="the lab's stand-in chart, lab/gloo.py: representative rules, not Solo's",
        namespaced_kinds=(("", "configmaps"), ("", "serviceaccounts")),
    )


def agent_rbac_template(service_account: str) -> str:
    """The stand-in chart's template of the agent's cluster-scoped RBAC: ClusterRole
    ``<service_account>-<release namespace>`` with :data:`AGENT_CLUSTER_ROLE_RULES`, and its ClusterRoleBinding to
    the agent's ServiceAccount in the release namespace."""
    rules = "".join(f"  - {json.dumps(rule)}\n" for rule in AGENT_CLUSTER_ROLE_RULES[service_account])
    name = agent_cluster_role_name(service_account, "{{ .Release.Namespace }}")
    return f"""\
# The stand-in chart's cluster-scoped RBAC (lab/gloo.py, AGENT_CLUSTER_ROLE_RULES: representative rules).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
{rules}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
  - kind: ServiceAccount
    name: {service_account}
    namespace: {{{{ .Release.Namespace }}}}
"""


CHART_DEPLOYMENT_TEMPLATE = """\
# The stand-in chart's agent Deployment (ChartRepository(agent_deployment=True)): one replica of an image nothing
# pulls. Without a kubelet its Pod never runs; a stand-in marks it Ready through the status subresource when the
# simulated agent has its client certificate, and Helm's await of the release waits for that.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: __NAME__
  namespace: {{ .Release.Namespace }}
  labels:
    app: __NAME__
spec:
  replicas: 1
  selector:
    matchLabels:
      app: __NAME__
  template:
    metadata:
      labels:
        app: __NAME__
    spec:
      serviceAccountName: enterprise-agent
      containers:
        - name: __NAME__
          image: __IMAGE__:{{ .Chart.Version }}
""".replace("__NAME__", AGENT_DEPLOYMENT).replace("__IMAGE__", STAND_IN_AGENT_IMAGE)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class ChartRepository:
    """A Helm chart repository served over HTTP on 127.0.0.1 from a folder the real ``helm`` packaged and indexed."""

    folder: Path
    helm: Path
    versions: tuple[str, ...] = (AGENT_VERSION,)
    platform_versions: tuple[str, ...] = (PLATFORM_VERSION,)
    """Versions of the Gloo Platform 2.x stand-ins (``gloo-platform-crds`` and ``gloo-platform``), in the same index."""
    agent_deployment: bool = False
    """Whether the 1.x chart holds the agent's Deployment (:data:`CHART_DEPLOYMENT_TEMPLATE`). Off by default: then
    nothing in the chart waits for a Pod, as the real-engine suite's servers run no workload controllers."""
    _server: http.server.ThreadingHTTPServer | None = field(default=None, init=False)
    requests: list[str] = field(default_factory=list, init=False)

    def build(self) -> None:
        source = self.folder.parent / "chart-source"
        repo = self.folder
        repo.mkdir(parents=True, exist_ok=True)
        for version in self.versions:
            chart = source / version / "enterprise-agent"
            (chart / "templates").mkdir(parents=True, exist_ok=True)
            (chart / "Chart.yaml").write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v2",
                        "name": "enterprise-agent",
                        "description": "Stand-in for Gloo Mesh Enterprise's enterprise-agent chart (real-engine tests)",
                        "version": version,
                        "appVersion": version,
                    }
                )
            )
            (chart / "values.yaml").write_text(
                yaml.safe_dump({"relay": {"serverAddress": "", "authority": "enterprise-networking.gloo-mesh"}})
            )
            (chart / "templates" / "agent.yaml").write_text(CHART_VALUES_TEMPLATE.format(name=VALUES_CONFIGMAP))
            (chart / "templates" / "rbac.yaml").write_text(agent_rbac_template(AGENT_DEPLOYMENT))
            if self.agent_deployment:
                (chart / "templates" / "deployment.yaml").write_text(CHART_DEPLOYMENT_TEMPLATE)
            subprocess.run([str(self.helm), "package", str(chart), "-d", str(repo)], check=True, capture_output=True)
        for version in self.platform_versions:
            for chart in platform_charts(source / version, version):
                subprocess.run(
                    [str(self.helm), "package", str(chart), "-d", str(repo)], check=True, capture_output=True
                )
        subprocess.run([str(self.helm), "repo", "index", str(repo)], check=True, capture_output=True)

    def start(self) -> str:
        repository = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:
                repository.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(self.folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class SimulatedAgent:
    """Writes the agent's client certificate once the token and the release's values are in place.

    ``mode``: ``"answers"`` (after ``delay_seconds``), or ``"never"`` (the agent cannot reach the relay).
    """

    def __init__(
        self,
        planes: ControlPlanes,
        cluster: str,
        *,
        namespace: str,
        cluster_name: str,
        mode: str = "answers",
        delay_seconds: float = 1.0,
    ) -> None:
        self._planes = planes
        self._cluster = cluster
        self.namespace = namespace
        self.cluster_name = cluster_name
        self.mode = mode
        self.delay_seconds = delay_seconds
        self.certificates_written = 0
        self.tokens_seen: list[str] = []
        """The bootstrap token (decoded) the agent read before each certificate it wrote, in order: the relay server
        checks it against its own ``relay-identity-token-secret`` at the handshake."""
        self._token: str = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SimulatedAgent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatedAgent:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self._planes.kubectl(
            self._cluster, "get", kind, name, "-n", self.namespace, "-o", "json", "--ignore-not-found"
        )
        return json.loads(out) if out.strip() else None

    def _ready_to_bootstrap(self) -> bool:
        token = self._get("secret", "relay-identity-token-secret")
        if token is None:
            return False
        self._token = b64decode(token.get("data", {}).get("token", "")).decode()
        rendered = self._get("configmap", VALUES_CONFIGMAP)
        if rendered is None:
            return False
        data = rendered.get("data", {})
        return bool(data.get("cluster") == self.cluster_name and data.get("serverAddress"))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if self.mode == "never":
                continue
            try:
                if self._get("secret", "relay-client-tls-secret") is not None or not self._ready_to_bootstrap():
                    continue
            except AssertionError:
                continue  # the namespace or the server is not there (yet); the real agent retries too
            if self._stop.wait(self.delay_seconds):
                return
            issued = CertificateAuthority.create(f"{self.cluster_name}-client")
            certificate = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": "relay-client-tls-secret", "namespace": self.namespace},
                "data": {"tls.crt": _b64(issued.certificate_pem.decode()), "tls.key": _b64("simulated-client-key")},
            }
            try:
                self._planes.kubectl(self._cluster, "apply", "-f", "-", input=json.dumps(certificate))
                self.certificates_written += 1
                self.tokens_seen.append(self._token)
            except AssertionError:
                continue


def install_second_management_plane(
    planes: ControlPlanes,
    namespace: str,
    *,
    cluster: str = "mgmt",
    missing_secrets: tuple[str, ...] = (),
    empty_keys: tuple[tuple[str, str], ...] = (),
) -> ManagementPlane:
    """A second management plane in ``namespace`` of ``cluster``, as :func:`install_management_plane` leaves one (the
    server Deployment, its LoadBalancer Service with an ingress address, both relay secrets), for faults that must
    not touch the session's plane: ``missing_secrets`` are not created, and each ``(secret, key)`` of ``empty_keys``
    is there with an empty value. The KubernetesCluster CRD is the session's (install that plane first)."""
    plane = ManagementPlane(
        **_relay_credentials(
            f"relay-root-ca-{namespace}", f"enterprise-networking.{namespace}", f"e2e-{namespace}-token-"
        ),
        relay_address=RELAY_ADDRESS,
        agent_version=AGENT_VERSION,
    )
    secrets = _relay_secrets(plane)
    for secret, key in empty_keys:
        secrets[secret][key] = ""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        *_management_server(namespace, "enterprise-networking", ENTERPRISE_NETWORKING_IMAGE, [("grpc", 9900)]),
        *(_secret(namespace, name, data) for name, data in secrets.items() if name not in missing_secrets),
    ]
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))
    _set_load_balancer_ingress(planes, cluster, namespace, "enterprise-networking", RELAY_ADDRESS.split(":")[0])
    return plane


def set_server_version(
    planes: ControlPlanes,
    version: str,
    *,
    namespace: str = MGMT_NAMESPACE,
    cluster: str = "mgmt",
    deployment: str = "enterprise-networking",
) -> None:
    """An upgrade of the management server, as far as a registration can tell: the image tag of the server
    Deployment's container (named as the Deployment) becomes ``version``, as ``helm upgrade`` of the management plane
    leaves it (the chart sets the tag to the chart version). No pod runs, so nothing rolls out."""
    image = f"gcr.io/gloo-mesh/{deployment}:{version}"
    planes.kubectl(cluster, "set", "image", f"deployment/{deployment}", f"{deployment}={image}", "-n", namespace)


def root_ca_crt(planes: ControlPlanes, *, namespace: str = MGMT_NAMESPACE, cluster: str = "mgmt") -> str:
    """``ca.crt`` of the management ``relay-root-tls-secret`` (PEM)."""
    from base64 import b64decode

    encoded = planes.kubectl(
        cluster, "get", "secret", "relay-root-tls-secret", "-n", namespace, "-o", "jsonpath={.data.ca\\.crt}"
    )
    return b64decode(encoded).decode()


def set_root_ca_crt(
    planes: ControlPlanes, ca_crt: str, *, namespace: str = MGMT_NAMESPACE, cluster: str = "mgmt"
) -> None:
    """Replaces ``ca.crt`` of the management ``relay-root-tls-secret`` (a root CA rotation); the other keys stay."""
    patch = json.dumps({"data": {"ca.crt": _b64(ca_crt)}})
    planes.kubectl(cluster, "patch", "secret", "relay-root-tls-secret", "-n", namespace, "--type=merge", "-p", patch)


# -- Gloo Platform 2.x -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformManagementPlane(ManagementPlane):
    """A Gloo Platform 2.x management plane: its namespace and the telemetry gateway's address besides."""

    namespace: str
    telemetry_address: str


def stand_in_crd(group: str, kind: str, version: str, spec_properties: dict[str, Any]) -> dict[str, Any]:
    """A minimal namespaced ``apiextensions.k8s.io/v1`` CRD: one served and stored version whose ``spec`` declares
    ``spec_properties`` and keeps any other field (``x-kubernetes-preserve-unknown-fields``), with a status
    subresource. Not Solo's schema: enough for the API server to store the objects the registration writes."""
    plural = f"{kind.lower()}s"
    preserved = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {**preserved, "properties": spec_properties},
                                "status": preserved,
                            },
                        }
                    },
                }
            ],
        },
    }


def platform_cluster_crd() -> dict[str, Any]:
    """The ``admin.gloo.solo.io/v2`` KubernetesCluster CRD: a stand-in written here (the real one comes with the
    ``gloo-platform-crds`` chart, which is not vendored), declaring the fields the registration sets
    (``spec.clusterDomain``) and the proto's ``spec.skipWarming`` (solo-io/solo-apis
    ``api/gloo.solo.io/admin/v2/kubernetes_cluster.proto``: no required field), keeping any other."""
    return stand_in_crd(
        "admin.gloo.solo.io",
        "KubernetesCluster",
        "v2",
        {"clusterDomain": {"type": "string"}, "skipWarming": {"type": "boolean"}},
    )


def _set_load_balancer_ingress(planes: ControlPlanes, cluster: str, namespace: str, service: str, ip: str) -> None:
    """What a cloud controller does for a LoadBalancer Service: its ingress address, through the status subresource."""
    status = {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
    planes.kubectl(
        cluster,
        "patch",
        "service",
        service,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def install_platform_management_plane(
    planes: ControlPlanes, cluster: str = "mgmt", namespace: str = PLATFORM_NAMESPACE
) -> PlatformManagementPlane:
    """A Gloo Platform 2.x management plane in ``namespace`` of ``cluster``, as the ``gloo-platform`` chart leaves
    one (see the module's docstring). No server runs: nothing here terminates the relay or the telemetry gateway."""
    plane = PlatformManagementPlane(
        **_relay_credentials(
            f"relay-root-ca-{namespace}", "gloo-mesh-mgmt-server.gloo-mesh", f"e2e-{namespace}-token-"
        ),
        relay_address=PLATFORM_RELAY_ADDRESS,
        agent_version=PLATFORM_VERSION,
        namespace=namespace,
        telemetry_address=PLATFORM_TELEMETRY_ADDRESS,
    )
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(platform_cluster_crd()))
    planes.kubectl(cluster, "wait", "--for=condition=Established", f"crd/{PLATFORM_CLUSTER_CRD}")
    relay_port = int(PLATFORM_RELAY_ADDRESS.rsplit(":", 1)[1])
    otlp_port = int(PLATFORM_TELEMETRY_ADDRESS.rsplit(":", 1)[1])
    image = f"gcr.io/gloo-mesh/gloo-mesh-mgmt-server:{PLATFORM_VERSION}"
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        # healthcheck first: the relay port must be found by its name, not its position.
        *_management_server(namespace, "gloo-mesh-mgmt-server", image, [("healthcheck", 8090), ("grpc", relay_port)]),
        _load_balancer_service(namespace, "gloo-telemetry-gateway", [("otlp", otlp_port)]),
        *(_secret(namespace, name, data) for name, data in _relay_secrets(plane).items()),
    ]
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))
    for service, address in (
        ("gloo-mesh-mgmt-server", PLATFORM_RELAY_ADDRESS),
        ("gloo-telemetry-gateway", PLATFORM_TELEMETRY_ADDRESS),
    ):
        _set_load_balancer_ingress(planes, cluster, namespace, service, address.rsplit(":", 1)[0])
    return plane


PLATFORM_CHART_VALUES = {
    # The defaults of the gloo-platform 2.5.8 chart's values.yaml that the templates below read.
    "common": {"cluster": "", "insecure": False},
    "glooAgent": {
        "enabled": False,
        "insecure": False,
        "relay": {
            "serverAddress": "",
            "authority": "",
            "rootTlsSecret": {"name": "relay-root-tls-secret"},
            "clientTlsSecret": {"name": "relay-client-tls-secret"},
            "tokenSecret": {"name": "relay-identity-token-secret", "namespace": "", "key": "token"},
        },
    },
    "telemetryCollector": {"enabled": False, "config": {"exporters": {"otlp": {"endpoint": ""}}}},
}

PLATFORM_CHART_TEMPLATE = """\
{{- if .Values.glooAgent.enabled }}
{{- $relay := .Values.glooAgent.relay }}
# Rendered by the stand-in gloo-platform chart: the values the real chart's templates read, under the keys the 1.x
# stand-in uses (clientTlsSecret is 2.x's name of the client certificate reference). An empty serverAddress or
# authority renders as the real chart renders it.
apiVersion: v1
kind: ConfigMap
metadata:
  name: __VALUES_CONFIGMAP__
  namespace: {{ .Release.Namespace }}
data:
  cluster: {{ .Values.common.cluster | default "" | quote }}
  serverAddress: {{ $relay.serverAddress | default (printf "gloo-mesh-mgmt-server.%s:9900" .Release.Namespace) | quote }}
  authority: {{ $relay.authority | default (printf "gloo-mesh-mgmt-server.%s" .Release.Namespace) | quote }}
  insecure: {{ or .Values.glooAgent.insecure .Values.common.insecure | default false | quote }}
  rootTlsSecret: {{ $relay.rootTlsSecret | toJson | quote }}
  clientTlsSecret: {{ $relay.clientTlsSecret | toJson | quote }}
  tokenSecret: {{ $relay.tokenSecret | toJson | quote }}
  telemetryEnabled: {{ .Values.telemetryCollector.enabled | default false | quote }}
  telemetryEndpoint: {{ if .Values.telemetryCollector.enabled }}{{ .Values.telemetryCollector.config.exporters.otlp.endpoint | default "" | quote }}{{ else }}""{{ end }}
  values.json: {{ .Values | toJson | quote }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: gloo-mesh-agent
  namespace: {{ .Release.Namespace }}
---
__AGENT_RBAC__{{- end }}
""".replace("__VALUES_CONFIGMAP__", VALUES_CONFIGMAP).replace("__AGENT_RBAC__", agent_rbac_template("gloo-mesh-agent"))


def platform_charts(folder: Path, version: str) -> list[Path]:
    """The sources of the stand-in ``gloo-platform-crds`` and ``gloo-platform`` charts at ``version``, in
    ``folder``: the first holds one CRD (in ``templates/``, as the real chart has them, so uninstalling it deletes
    them), the second renders what the real one reads (:data:`PLATFORM_CHART_TEMPLATE`)."""
    workspace_crd = stand_in_crd("admin.gloo.solo.io", "Workspace", "v2", {})
    charts: dict[str, tuple[dict[str, Any], str]] = {
        "gloo-platform-crds": ({}, yaml.safe_dump(workspace_crd)),
        "gloo-platform": (PLATFORM_CHART_VALUES, PLATFORM_CHART_TEMPLATE),
    }
    made = []
    for name, (values, template) in charts.items():
        chart = folder / name
        (chart / "templates").mkdir(parents=True, exist_ok=True)
        (chart / "Chart.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": name,
                    "description": f"Stand-in for Gloo Platform's {name} chart (real-engine tests)",
                    "version": version,
                    "appVersion": version,
                }
            )
        )
        (chart / "values.yaml").write_text(yaml.safe_dump(values))
        (chart / "templates" / f"{name}.yaml").write_text(template)
        made.append(chart)
    return made
