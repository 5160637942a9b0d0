"""A simulated Gloo Mesh 1.x management plane, a stand-in ``enterprise-agent`` chart repository, and a simulated agent.

What each emulates, and from where (the facts and their sources are in ``shared/reference/gloo-mesh-relay.md``):

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
  back, plus the agent's ServiceAccount; nothing in it needs a kubelet to become ready.
* :class:`SimulatedAgent`: what the real agent does on the workload cluster at its relay handshake: once the
  bootstrap token exists in the agent namespace and the release's values name the cluster and a relay address, it
  writes ``relay-client-tls-secret`` after a short delay. Modes where it never answers, or answers late.
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

from .cluster import CertificateAuthority, ControlPlanes

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "tests" / "data" / "multicluster.solo.io_v1alpha1_crds.yaml"
AGENT_VERSION = "1.1.6"
RELAY_ADDRESS = "127.0.0.1:9900"
MGMT_NAMESPACE = "gloo-mesh"
VALUES_CONFIGMAP = "enterprise-agent-rendered-values"


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
    ca = CertificateAuthority.create("relay-root-ca")
    server_crt, _ = ca.issue("enterprise-networking.gloo-mesh", server=True)
    plane = ManagementPlane(
        ca_crt=ca.certificate_pem.decode(),
        ca_key=ca.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
        tls_crt=server_crt.decode(),
        token="e2e-relay-identity-token-" + _b64(str(time.time_ns()))[:16],
        relay_address=RELAY_ADDRESS,
        agent_version=AGENT_VERSION,
    )
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd_v1(CRD)))
    planes.kubectl(cluster, "wait", "--for=condition=Established", "crd/kubernetesclusters.multicluster.solo.io")
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MGMT_NAMESPACE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "enterprise-networking", "namespace": MGMT_NAMESPACE},
            "spec": {
                "selector": {"matchLabels": {"app": "enterprise-networking"}},
                "template": {
                    "metadata": {"labels": {"app": "enterprise-networking"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "enterprise-networking",
                                "image": f"gcr.io/gloo-mesh/enterprise-networking:{AGENT_VERSION}",
                                "ports": [{"name": "grpc", "containerPort": 9900}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "enterprise-networking", "namespace": MGMT_NAMESPACE},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "enterprise-networking"},
                "ports": [{"name": "grpc", "port": 9900, "targetPort": 9900, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "relay-root-tls-secret", "namespace": MGMT_NAMESPACE},
            "data": {"ca.crt": _b64(plane.ca_crt), "tls.crt": _b64(plane.tls_crt), "tls.key": _b64(plane.ca_key)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "relay-identity-token-secret", "namespace": MGMT_NAMESPACE},
            "data": {"token": _b64(plane.token)},
        },
    ]
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))
    host = RELAY_ADDRESS.split(":")[0]
    planes.kubectl(
        cluster,
        "patch",
        "service",
        "enterprise-networking",
        "-n",
        MGMT_NAMESPACE,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": host}]}}}),
    )
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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class ChartRepository:
    """A Helm chart repository served over HTTP on 127.0.0.1 from a folder the real ``helm`` packaged and indexed."""

    folder: Path
    helm: Path
    versions: tuple[str, ...] = (AGENT_VERSION,)
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
            subprocess.run([str(self.helm), "package", str(chart), "-d", str(repo)], check=True, capture_output=True)
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
    ca = CertificateAuthority.create(f"relay-root-ca-{namespace}")
    server_crt, _ = ca.issue(f"enterprise-networking.{namespace}", server=True)
    plane = ManagementPlane(
        ca_crt=ca.certificate_pem.decode(),
        ca_key=ca.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
        tls_crt=server_crt.decode(),
        token=f"e2e-{namespace}-token-" + _b64(str(time.time_ns()))[:16],
        relay_address=RELAY_ADDRESS,
        agent_version=AGENT_VERSION,
    )
    secrets: dict[str, dict[str, str]] = {
        "relay-root-tls-secret": {"ca.crt": plane.ca_crt, "tls.crt": plane.tls_crt, "tls.key": plane.ca_key},
        "relay-identity-token-secret": {"token": plane.token},
    }
    for secret, key in empty_keys:
        secrets[secret][key] = ""
    labels = {"app": "enterprise-networking"}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "enterprise-networking", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "enterprise-networking",
                                "image": f"gcr.io/gloo-mesh/enterprise-networking:{AGENT_VERSION}",
                                "ports": [{"name": "grpc", "containerPort": 9900}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "enterprise-networking", "namespace": namespace},
            "spec": {
                "type": "LoadBalancer",
                "selector": labels,
                "ports": [{"name": "grpc", "port": 9900, "targetPort": 9900, "protocol": "TCP"}],
            },
        },
    ]
    objects += [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: _b64(value) for key, value in data.items()},
        }
        for name, data in secrets.items()
        if name not in missing_secrets
    ]
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))
    planes.kubectl(
        cluster,
        "patch",
        "service",
        "enterprise-networking",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": RELAY_ADDRESS.split(":")[0]}]}}}),
    )
    return plane


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
