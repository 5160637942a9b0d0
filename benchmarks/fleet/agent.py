"""A simulated Gloo agent for a whole fleet: one server, every agent namespace, by watches (no polling).

``lab.gloo.SimulatedAgent`` simulates one agent in one namespace by running ``kubectl get`` every 0.5 s (three
of them per look). For 50 registrations that is about 300 kubectl processes a second on the benchmark's own machine,
which would load the runner it measures. This agent does what the simulated one does, for every namespace of one API
server at once, with two watches (secrets and configmaps across all namespaces, over HTTPS from this process):

* it waits until a namespace holds the bootstrap token (``relay-identity-token-secret``) and the release's rendered
  values (the stand-in chart's ConfigMap ``enterprise-agent-rendered-values``, ``lab/gloo.py``) name the
  cluster expected in that namespace and a relay address, as the real agent needs both at its relay handshake;
* then it creates ``relay-client-tls-secret`` at once (one POST): the agent "answers at once".

Values naming another cluster are counted as mismatches (and answered no certificate), so a benchmark can check that
each registration rendered its own name; the certificates written are counted, so it can check that each run
registered as many clusters as it should. A watch that ends (server timeout, 410 Gone) is started again from a fresh
list.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.cluster import CertificateAuthority, ControlPlanes
from lab.gloo import VALUES_CONFIGMAP
from lab.observe import ApiClient

TOKEN_SECRET = "relay-identity-token-secret"
CERT_SECRET = "relay-client-tls-secret"
WATCH_SECONDS = 3000


@dataclass
class NamespaceState:
    """What the agent of one namespace has seen: the token, the cluster and relay address its values name, and
    whether the certificate is there (or being written)."""

    token: bool = False
    cluster: str = ""
    server_address: str = ""
    certificate: bool = False


@dataclass
class FleetAgent:
    """The agents of every expected namespace of one API server (``expect`` before the registrations run)."""

    planes: ControlPlanes
    server: str
    expected: dict[str, str] = field(default_factory=dict)
    """namespace -> the cluster name its agent is registered under."""
    written: int = 0
    """Certificates written so far."""
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._api = ApiClient(self.planes, self.server)
        self._lock = threading.Lock()
        self._state: dict[str, NamespaceState] = {}
        self._stop = threading.Event()
        self._connections: list[http.client.HTTPSConnection] = []
        self._threads = [
            threading.Thread(target=self._watch_loop, args=(kind,), daemon=True, name=f"agent-{self.server}-{kind}")
            for kind in ("secrets", "configmaps")
        ]
        issued = CertificateAuthority.create(f"simulated-agent-{self.server}")
        self._certificate = {
            "tls.crt": b64encode(issued.certificate_pem).decode(),
            "tls.key": b64encode(b"simulated-client-key").decode(),
        }

    # -- public ---------------------------------------------------------------------------------------------------

    def expect(self, namespace: str, cluster: str) -> None:
        """Answer in ``namespace`` for ``cluster`` only (values naming another are a mismatch), at once if ready."""
        with self._lock:
            self.expected[namespace] = cluster
            state = self._state.get(namespace)
        if state is not None:
            self._maybe_answer(namespace)

    def start(self) -> FleetAgent:
        """Start the two watches; the agent answers from then on."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """End the watches: their connections are shut down, as a blocked read would not see the stop otherwise."""
        self._stop.set()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            if connection.sock is not None:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)

    def certificates_written(self) -> int:
        """Certificates written so far: a run registered as many clusters as this grew by."""
        with self._lock:
            return self.written

    # -- watching -------------------------------------------------------------------------------------------------

    def _watch_loop(self, kind: str) -> None:
        """List and watch ``kind`` until stopped; an error is kept for the benchmark's check and the watch restarted."""
        while not self._stop.is_set():
            try:
                self._list_and_watch(kind)
            except (OSError, ValueError, http.client.HTTPException, ssl.SSLError, AssertionError) as error:
                if self._stop.is_set():
                    return
                with self._lock:
                    self.errors.append(f"{kind}: {error!r}")
                time.sleep(0.5)

    def _list_and_watch(self, kind: str) -> None:
        """One list, then one watch from its resource version, until the server ends it."""
        path = f"/api/v1/{kind}"
        status, listing = self._api.request("GET", path)
        if status != 200:
            raise AssertionError(f"list {path}: {status}")
        self._reset(kind, [item for item in listing.get("items") or []])
        version = listing["metadata"]["resourceVersion"]
        connection = self._api.connection(timeout=None)
        with self._lock:
            self._connections.append(connection)
        try:
            connection.request("GET", f"{path}?watch=1&resourceVersion={version}&timeoutSeconds={WATCH_SECONDS}")
            response = connection.getresponse()
            if response.status != 200:
                raise AssertionError(f"watch {path}: {response.status}")
            while not self._stop.is_set():
                line = response.readline()
                if not line:
                    return  # the server ended the watch: list and watch again
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    return  # e.g. 410 Gone: list and watch again
                self._apply(kind, str(event.get("type")), event.get("object") or {})
        finally:
            with self._lock:
                self._connections.remove(connection)
            connection.close()

    def _reset(self, kind: str, items: list[dict[str, Any]]) -> None:
        """The state of ``kind`` as a fresh list shows it (what a watch that ended may have missed)."""
        with self._lock:
            for state in self._state.values():
                if kind == "secrets":
                    state.token = state.certificate = False
                else:
                    state.cluster = state.server_address = ""
        for item in items:
            self._apply(kind, "ADDED", item)

    def _apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """What one event changes of its namespace's state (the token, the certificate, the values); then answer."""
        metadata = obj.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        present = event != "DELETED"
        with self._lock:
            state = self._state.setdefault(namespace, NamespaceState())
            if kind == "secrets" and name == TOKEN_SECRET:
                state.token = present
            elif kind == "secrets" and name == CERT_SECRET:
                state.certificate = present
            elif kind == "configmaps" and name == VALUES_CONFIGMAP:
                data = obj.get("data") or {}
                state.cluster = str(data.get("cluster", "")) if present else ""
                state.server_address = str(data.get("serverAddress", "")) if present else ""
            else:
                return
        self._maybe_answer(namespace)

    # -- answering ------------------------------------------------------------------------------------------------

    def _maybe_answer(self, namespace: str) -> None:
        """Write the certificate once the namespace holds the token and values naming its expected cluster."""
        with self._lock:
            state = self._state.get(namespace)
            wanted = self.expected.get(namespace)
            if state is None or wanted is None or state.certificate or not state.token or not state.cluster:
                return
            if state.cluster != wanted:
                self.mismatches.append(f"{namespace}: values name {state.cluster!r}, expected {wanted!r}")
                return
            if not state.server_address:
                return
            state.certificate = True  # claimed: a second event does not write it twice
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": CERT_SECRET, "namespace": namespace},
            "data": self._certificate,
        }
        status, body = self._api.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        with self._lock:
            if status == 201:
                self.written += 1
            elif status != 409:  # 409: it exists already, which is all the agent wants
                state.certificate = False
                self.errors.append(f"{namespace}: could not write {CERT_SECRET}: {status} {body}")
