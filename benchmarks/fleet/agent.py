"""A simulated Gloo agent for a whole fleet: one server, every agent namespace, by watches (no polling).

``lab.gloo.SimulatedAgent`` simulates one agent in one namespace by running ``kubectl get`` every 0.5 s (three
of them per look). For 50 registrations that is about 300 kubectl processes a second on the benchmark's own machine,
which would load the runner it measures. This agent does what the simulated one does, for every namespace of one API
server at once, with three watches (secrets, configmaps and the agent's Pods across all namespaces, over HTTPS from
this process):

* it waits until a namespace holds the bootstrap token (``relay-identity-token-secret``) and the release's rendered
  values (the stand-in chart's ConfigMap ``enterprise-agent-rendered-values``, ``lab/gloo.py``) name the
  cluster expected in that namespace and a relay address, as the real agent needs both at its relay handshake;
* from the moment it first sees both, it waits the namespace's wait (below), then creates ``relay-client-tls-secret``
  (one POST, from a timer's thread: the watches go on meanwhile). The wait stands for what a real agent takes before
  it answers: its Pod scheduled, its image pulled, its relay handshake done. If the token, the values or the
  namespace go away before the write, the pending write is cancelled (and the wait starts again when they are back);
* when it has the certificate, it makes the agent's Pod Ready (below), also a Pod that appears later.

**The wait.** ``wait_seconds`` W, ``spread`` s and ``seed``: each namespace waits a time drawn uniformly from
W x (1 - s) to W x (1 + s) by ``random.Random(f"{seed}:{n}")``, n the cluster's number in its fleet
(:func:`drawn_wait`). Cluster 7 of the program (``gm-c007``) and of the scripts (``gm-s007``, ``gm-p007``) wait alike,
so both meet the same agent; a string seed is hashed with SHA-512, so the draw is the same in every process and
whatever the order of the events, and a rerun draws the same waits. W = 0 (the default) answers at once, as this
agent did before it had a wait.

**The agent's Pod made Ready.** With ``ChartRepository(agent_deployment=True)`` the stand-in chart holds the agent's
Deployment (``enterprise-agent``, one replica); the servers' controller managers then run the deployment and replicaset
controllers (``lab.cluster.WORKLOAD_CONTROLLERS``), which make its ReplicaSet and its Pod. No scheduler and no kubelet
run, so nothing would ever make the Pod ready. This agent does what the kubelet does once the agent's container passes
its readiness probe: it writes the Pod's status through the status subresource (a strategic merge PATCH of
``pods/<name>/status``: phase ``Running``, conditions ``PodScheduled``, ``Initialized``, ``ContainersReady`` and
``Ready`` True, each container running and ready), at the moment it has written the certificate, and for a Pod created
after that as soon as it sees it: "ready when the agent says so". The real agent's readiness is its own; this agent's is
tied to the certificate, which is when a real agent has done its handshake. Kubernetes v1.37.2's API server accepted
this status on a Pod that has no ``nodeName`` (checked by hand: it checks little of a status update, and took even phase
``Bogus`` and a ``Succeeded`` Pod back to ``Running``; only a PATCH sent as ``application/json`` was refused, 415), and
the replicaset controller then counts the Pod in ``readyReplicas``, which is what Helm's await reads (the kubernetes
provider v4.25.0 builds in Helm v3.18.6, its go.mod says, and the scripts' helm is v3.22.0; ``pkg/kube/ready.go`` and
``wait.go`` are the same in both): ``ReadyChecker.IsReady`` for a Deployment finds the new ReplicaSet and requires
``readyReplicas >= replicas - maxUnavailable`` (1 - 0 here) and both observed generations current. Helm polls every 2 s
(``pkg/kube/wait.go``), so an await returns up to 2 s after the Pod is Ready, as it would with a real kubelet. Pods are
left unbound (no ``nodeName``), so a namespace's deletion removes them at once, as the API server does for Pods never
scheduled.

Values naming another cluster are counted as mismatches (and answered no certificate), so a benchmark can check that
each registration rendered its own name; the certificates written are counted, and each one recorded
(:class:`Answer`: its drawn wait, when the agent saw token and values, when it wrote, the Pods it made Ready), so a
benchmark can check that each run registered as many clusters as it should and how long the agent made each wait.
A watch that ends (server timeout, 410 Gone) is started again from a fresh list.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import random
import re
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lab.cluster import CertificateAuthority, ControlPlanes
from lab.gloo import AGENT_POD_SELECTOR, VALUES_CONFIGMAP
from lab.observe import ApiClient

TOKEN_SECRET = "relay-identity-token-secret"
CERT_SECRET = "relay-client-tls-secret"
WATCH_SECONDS = 3000
WATCHED = {
    "secrets": "/api/v1/secrets",
    "configmaps": "/api/v1/configmaps",
    "pods": f"/api/v1/pods?labelSelector={quote(AGENT_POD_SELECTOR)}",
}
"""What the agent watches, across all namespaces: only the agent's Pods of the pods."""
READY_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
"""The conditions a kubelet reports True for a Pod whose containers run and pass their readiness probes."""


def fleet_position(namespace: str) -> str:
    """What a wait is drawn for: the number of the cluster in its fleet (``gm-c007``, ``gm-s007`` and ``gm-p007`` are
    all cluster 7), so the program's runs and the scripts' runs meet the same agent; a namespace not so named, whole."""
    number = re.search(r"(\d+)$", namespace)
    return str(int(number.group(1))) if number else namespace


def drawn_wait(wait_seconds: float, spread: float, seed: int, namespace: str) -> float:
    """The wait of ``namespace``: uniform in W x (1 - spread) .. W x (1 + spread), a function of the seed and the
    cluster's number in its fleet (:func:`fleet_position`)."""
    if not wait_seconds >= 0 or not 0 <= spread <= 1:
        raise ValueError(f"wait_seconds must be >= 0 and spread within 0..1, not {wait_seconds!r}, {spread!r}")
    if wait_seconds == 0:
        return 0.0
    position = fleet_position(namespace)
    return random.Random(f"{seed}:{position}").uniform(wait_seconds * (1 - spread), wait_seconds * (1 + spread))


@dataclass(frozen=True)
class AgentSettings:
    """How a benchmark run's agents answer (W, spread, seed) and whether the chart holds the agent's Deployment: in
    the saved run's header (``agent``), and in the line the tables are printed under."""

    wait_seconds: float = 0.0
    spread: float = 0.0
    seed: int = 1
    deployment: bool = False
    old_run: bool = False
    """A run saved before the agent had a wait and the chart a Deployment (its header says nothing of either)."""

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> AgentSettings:
        """The settings a saved run's header records; a header without them is the old run (W = 0, no Deployment)."""
        given = header.get("agent")
        if given is None:
            return cls(old_run=True)
        return cls(float(given["wait_seconds"]), float(given["spread"]), int(given["seed"]), bool(given["deployment"]))

    def record(self) -> dict[str, Any]:
        return {
            "wait_seconds": self.wait_seconds,
            "spread": self.spread,
            "seed": self.seed,
            "deployment": self.deployment,
        }

    def short(self) -> str:
        """For a table's title: ``agent wait W = 5 s ±50 % (seed 1), Deployment awaited``."""
        if self.wait_seconds:
            wait = f"agent wait W = {self.wait_seconds:g} s ±{100 * self.spread:g} % (seed {self.seed})"
        else:
            wait = "agent wait W = 0"
        deployment = "agent Deployment awaited by Helm" if self.deployment else "no agent Deployment"
        return f"{wait}, {deployment}" + (" (the old run)" if self.old_run else "")

    def line(self) -> str:
        """The line printed under the servers' line: what the simulated agent did."""
        if self.wait_seconds:
            wait = (
                f"writes each client certificate W = {self.wait_seconds:g} s ±{100 * self.spread:g} % after it saw the "
                f"token and the values (uniform per cluster, seed {self.seed})"
            )
        else:
            wait = "writes each client certificate at once (W = 0)"
        if self.deployment:
            deployment = "the chart's enterprise-agent Deployment becomes Ready when it does (Helm's await waits)"
        else:
            deployment = "the chart has no agent Deployment (Helm's await waits for nothing)"
        old = "; the old run, saved before the agent had a wait and the chart a Deployment" if self.old_run else ""
        return f"agent: {wait}; {deployment}{old}"


@dataclass
class Answer:
    """One certificate the agent wrote: its namespace and cluster, the wait drawn for it, when (seconds on the
    agent's clock, :attr:`FleetAgent.clock_origin`) the agent first saw token and values and when it wrote, and the
    Pods it made Ready for it (name -> when)."""

    namespace: str
    cluster: str
    wait_seconds: float
    seen: float
    written: float
    pods_ready: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """As JSON (``--json`` keeps every answer of a benchmark run)."""
        return {
            "namespace": self.namespace,
            "cluster": self.cluster,
            "wait_seconds": round(self.wait_seconds, 4),
            "seen": round(self.seen, 4),
            "written": round(self.written, 4),
            "pods_ready": {name: round(at, 4) for name, at in self.pods_ready.items()},
        }


@dataclass
class Pending:
    """A write that waits: since when (the agent saw token and values) and for how long; its timer."""

    seen: float
    wait_seconds: float
    timer: threading.Timer | None = None


@dataclass
class NamespaceState:
    """What the agent of one namespace has seen: the token, the cluster and relay address its values name, whether
    the certificate is there, a pending write, and the agent's Pods (name -> Ready)."""

    token: bool = False
    cluster: str = ""
    server_address: str = ""
    certificate: bool = False
    pending: Pending | None = None
    pods: dict[str, bool] = field(default_factory=dict)
    containers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Each Pod's containers (name, image), for the container statuses a kubelet reports."""


@dataclass
class FleetAgent:
    """The agents of every expected namespace of one API server (``expect`` before the registrations run)."""

    planes: ControlPlanes
    server: str
    expected: dict[str, str] = field(default_factory=dict)
    """namespace -> the cluster name its agent is registered under."""
    wait_seconds: float = 0.0
    """W: the mean time from token and values to the certificate (0: at once)."""
    spread: float = 0.0
    """Each namespace's wait is uniform in W x (1 - spread) .. W x (1 + spread)."""
    seed: int = 1
    clock_origin: float = field(default_factory=time.monotonic)
    """The moment the times of :attr:`answers` count from (``time.monotonic``; agents of one run share it)."""
    written: int = 0
    """Certificates written so far."""
    answers: list[Answer] = field(default_factory=list)
    """Every certificate written, in order."""
    cancelled: int = 0
    """Pending writes cancelled because the token, the values or the namespace went away first. A namespace being
    deleted still holds its token for a while: its write is refused (namespace terminating) and counted here, and a
    new wait starts, cancelled in turn when the namespace controller deletes the token."""
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        drawn_wait(self.wait_seconds, self.spread, self.seed, "")  # fails early on a wrong W or spread
        self._api = ApiClient(self.planes, self.server)
        self._lock = threading.Lock()
        self._state: dict[str, NamespaceState] = {}
        self._latest: dict[str, Answer] = {}
        self._stop = threading.Event()
        self._connections: list[http.client.HTTPSConnection] = []
        self._threads = [
            threading.Thread(target=self._watch_loop, args=(kind,), daemon=True, name=f"agent-{self.server}-{kind}")
            for kind in WATCHED
        ]
        issued = CertificateAuthority.create(f"simulated-agent-{self.server}")
        self._certificate = {
            "tls.crt": b64encode(issued.certificate_pem).decode(),
            "tls.key": b64encode(b"simulated-client-key").decode(),
        }

    # -- public ---------------------------------------------------------------------------------------------------

    def expect(self, namespace: str, cluster: str) -> None:
        """Answer in ``namespace`` for ``cluster`` only (values naming another are a mismatch), once ready."""
        with self._lock:
            self.expected[namespace] = cluster
        self._settle(namespace)

    def wait_for(self, namespace: str) -> float:
        """The wait drawn for ``namespace`` (:func:`drawn_wait`)."""
        return drawn_wait(self.wait_seconds, self.spread, self.seed, namespace)

    def start(self) -> FleetAgent:
        """Start the three watches; the agent answers from then on."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Cancel the pending writes and end the watches: their connections are shut down, as a blocked read would not
        see the stop otherwise."""
        self._stop.set()
        with self._lock:
            connections = list(self._connections)
            for state in self._state.values():
                self._cancel(state)
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

    def answers_since(self, count: int) -> list[Answer]:
        """The certificates written after the first ``count`` (:meth:`certificates_written` before a run)."""
        with self._lock:
            return list(self.answers[count:])

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
        path = WATCHED[kind]
        status, listing = self._api.request("GET", path)
        if status != 200:
            raise AssertionError(f"list {path}: {status}")
        self._reset(kind, [item for item in listing.get("items") or []])
        version = listing["metadata"]["resourceVersion"]
        connection = self._api.connection(timeout=None)
        with self._lock:
            self._connections.append(connection)
        try:
            joiner = "&" if "?" in path else "?"
            connection.request("GET", f"{path}{joiner}watch=1&resourceVersion={version}&timeoutSeconds={WATCH_SECONDS}")
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
                namespace = self._apply(kind, str(event.get("type")), event.get("object") or {})
                if namespace is not None:
                    self._settle(namespace)
        finally:
            with self._lock:
                self._connections.remove(connection)
            connection.close()

    def _reset(self, kind: str, items: list[dict[str, Any]]) -> None:
        """The state of ``kind`` as a fresh list shows it (what a watch that ended may have missed); then each
        namespace settled once, so that a token listed after its namespace's certificate cancels nothing."""
        with self._lock:
            for state in self._state.values():
                if kind == "secrets":
                    state.token = state.certificate = False
                elif kind == "configmaps":
                    state.cluster = state.server_address = ""
                else:
                    state.pods.clear()
                    state.containers.clear()
        for item in items:
            self._apply(kind, "ADDED", item)
        with self._lock:
            namespaces = list(self._state)
        for namespace in namespaces:
            self._settle(namespace)

    def _apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> str | None:
        """What one event changes of its namespace's state (the token, the certificate, the values, a Pod); returns
        the namespace when it changed anything the agent acts on."""
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
            elif kind == "pods" and present:
                conditions = (obj.get("status") or {}).get("conditions") or []
                state.pods[name] = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
                containers = (obj.get("spec") or {}).get("containers") or []
                state.containers[name] = [(str(c.get("name")), str(c.get("image"))) for c in containers]
            elif kind == "pods":
                state.pods.pop(name, None)
                state.containers.pop(name, None)
            else:
                return None
        return namespace

    # -- answering ------------------------------------------------------------------------------------------------

    def _settle(self, namespace: str) -> None:
        """Act on a namespace's state: start its wait once it holds the token and values naming its expected cluster
        and a relay address (no certificate yet); cancel a pending write when they went away; and once the
        certificate is there, make the agent's Pods Ready."""
        unready: list[tuple[str, list[tuple[str, str]]]] = []
        with self._lock:
            state = self._state.get(namespace)
            wanted = self.expected.get(namespace)
            if state is None or wanted is None:
                return
            if state.token and state.cluster and state.cluster != wanted and not state.certificate:
                self.mismatches.append(f"{namespace}: values name {state.cluster!r}, expected {wanted!r}")
            ready_to_answer = state.token and state.cluster == wanted and bool(state.server_address)
            if state.pending is not None and not ready_to_answer:
                self._cancel(state)
                self.cancelled += 1
            elif state.pending is None and ready_to_answer and not state.certificate and not self._stop.is_set():
                pending = Pending(time.monotonic(), self.wait_for(namespace))
                pending.timer = threading.Timer(pending.wait_seconds, self._write, args=(namespace, pending))
                pending.timer.daemon = True
                pending.timer.name = f"agent-{self.server}-{namespace}"
                state.pending = pending
                pending.timer.start()
            if state.certificate:
                unready = [(pod, state.containers.get(pod, [])) for pod, ready in state.pods.items() if not ready]
        for pod, containers in unready:
            self._make_ready(namespace, pod, containers)

    @staticmethod
    def _cancel(state: NamespaceState) -> None:
        if state.pending is not None and state.pending.timer is not None:
            state.pending.timer.cancel()
        state.pending = None

    def _write(self, namespace: str, pending: Pending) -> None:
        """The timer's end: write the certificate, unless the write was cancelled meanwhile; then the Pods Ready."""
        early = pending.seen + pending.wait_seconds - time.monotonic()
        if early > 0:  # a timer never fires early by more than its clock's rounding; never write before the wait
            time.sleep(early)
        with self._lock:
            state = self._state.get(namespace)
            if self._stop.is_set() or state is None or state.pending is not pending:
                return
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": CERT_SECRET, "namespace": namespace},
            "data": self._certificate,
        }
        status, body = self._api.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        written = time.monotonic()
        with self._lock:
            if state.pending is pending:
                state.pending = None
            if status == 201:
                self.written += 1
                answer = Answer(
                    namespace,
                    self.expected.get(namespace, ""),
                    pending.wait_seconds,
                    pending.seen - self.clock_origin,
                    written - self.clock_origin,
                )
                self.answers.append(answer)
                self._latest[namespace] = answer
                state.certificate = True
            elif status == 409:  # it exists already, which is all the agent wants
                state.certificate = True
            elif status == 404 or (status == 403 and "NamespaceTerminating" in str(body)):
                self.cancelled += 1  # the namespace went away first (its token goes last, with its other objects)
            else:
                self.errors.append(f"{namespace}: could not write {CERT_SECRET}: {status} {body}")
        self._settle(namespace)

    def _make_ready(self, namespace: str, pod: str, containers: list[tuple[str, str]]) -> None:
        """What a kubelet writes for a Pod whose containers run and pass their readiness probe (the status
        subresource, strategic merge); recorded with the namespace's latest certificate."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "status": {
                "phase": "Running",
                "startTime": now,
                "conditions": [
                    {"type": kind, "status": "True", "lastTransitionTime": now} for kind in READY_CONDITIONS
                ],
                "containerStatuses": [
                    {
                        "name": name,
                        "image": image,
                        "imageID": "",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    }
                    for name, image in containers
                ],
            }
        }
        code, body = self._api.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/status",
            status,
            content_type="application/strategic-merge-patch+json",
        )
        made = time.monotonic()
        with self._lock:
            if code == 200:
                state = self._state.get(namespace)
                if state is not None and pod in state.pods:
                    state.pods[pod] = True  # the watch's event confirms it; this keeps a second event from patching
                answer = self._latest.get(namespace)
                if answer is not None:
                    answer.pods_ready.setdefault(pod, made - self.clock_origin)
            elif code != 404:  # 404: the Pod is gone already (its namespace deleted, a rollout)
                self.errors.append(f"{namespace}: could not make Pod {pod} Ready: {code} {body}")
