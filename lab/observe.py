"""What a real API server shows about the requests it served and the objects it changed: its metrics, and watches.

These replace the request log of the fake API server the lifecycle tests used to run against (``tests/fakekube``,
retired). A real server keeps no per-request log (its audit log would need a flag, and :mod:`.cluster` starts the
servers without one), so:

* **Counts of requests** come from its ``/metrics``: ``apiserver_request_total`` counts served requests by
  ``verb`` (``GET``, ``LIST``, ``WATCH``, ``APPLY``, ``DELETE``, ``POST``...), ``resource`` and ``scope``; read before
  and after a step, the difference is what was asked. Two things to know, both from the API server's instrumentation
  (``k8s.io/apiserver/pkg/endpoints/metrics``): a request is counted when it *ends* (so a watch is counted when its
  connection closes, and ``apiserver_longrunning_requests`` is the gauge of the watches open right now), and the
  counters carry no namespace or client. Only requests with a namespace (``scope`` ``namespace`` or ``resource``) are
  kept: the controller manager's informers watch and list secrets across the cluster (``scope="cluster"``) at times
  of their own. Nothing else in a test session asks for namespaced secrets while a lifecycle test runs.
* **Changes to objects** come from a watch on the namespace's secrets started at a ``resourceVersion`` read before
  the step (:class:`SecretWatch`): every create, update and delete after it arrives in order, with nothing polled, so
  a secret created and deleted within a step still shows (as ADDED then DELETED).

Used by ``tests/e2e/test_lifecycle_kubectl.py`` and ``benchmarks/wait_latency.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .cluster import ControlPlanes

NAMESPACED_SCOPES = frozenset({"namespace", "resource"})
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>.*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_HEALTH_AND_METRICS = frozenset({"/metrics", "/healthz", "/readyz", "/livez"})


class ApiClient:
    """Plain HTTPS requests to one API server of the session, as its admin (``system:masters``)."""

    def __init__(self, planes: ControlPlanes, cluster: str) -> None:
        self.port = planes.clusters[cluster].port
        self._ssl = planes.ssl_context()

    def connection(self, timeout: float | None = 60) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ssl, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """One request; returns the status and the decoded JSON body (the text when it is not JSON). A PATCH names its
        kind of patch in ``content_type`` (e.g. ``application/strategic-merge-patch+json``)."""
        connection = self.connection()
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Content-Type": content_type} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def create_namespace(self, name: str) -> None:
        status, body = self.request(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        if status != 201:
            raise AssertionError(f"could not create namespace {name}: {status} {body}")

    def create_secret(
        self, namespace: str, name: str, data: Mapping[str, bytes], *, secret_type: str = "Opaque"
    ) -> None:
        """Creates a Secret (``data`` as raw bytes; base64 here), as the agent or an earlier run would have."""
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": secret_type,
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: b64encode(value).decode() for key, value in data.items()},
        }
        status, body = self.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        if status != 201:
            raise AssertionError(f"could not create secret {namespace}/{name}: {status} {body}")

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The secret's ``data`` (base64 values, as stored), or None when the server has no such secret."""
        status, body = self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status == 404:
            return None
        if status != 200:
            raise AssertionError(f"GET secret {namespace}/{name}: {status} {body}")
        return dict(body.get("data") or {})

    def counts(self) -> RequestCounts:
        """The server's request counters now (one scrape of ``/metrics``)."""
        status, text = self.request("GET", "/metrics")
        if status != 200 or not isinstance(text, str):
            raise AssertionError(f"GET /metrics: {status}")
        return RequestCounts.parse(text)

    def settled_counts(self, *, own_watches: int = 0, timeout: float = 60) -> RequestCounts:
        """The counters once no watch on namespaced secrets is open other than the caller's ``own_watches``.

        A watch is counted in ``apiserver_request_total`` when it ends, so counters read while a step's watch is
        still open (or one left by an earlier step is) would count it later, in someone else's difference. The
        server lowers the gauge of open watches just before it counts the ended watch (same goroutine), so the
        counters are read with one more scrape after the gauge settles."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.counts()
            if now.open_watches("secrets") <= own_watches:
                return self.counts()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{now.open_watches('secrets')} watches on namespaced secrets still open after {timeout:.0f} s "
                    f"(expected {own_watches})"
                )
            time.sleep(0.1)


@dataclass(frozen=True)
class RequestCounts:
    """``apiserver_request_total`` (summed over response codes) and ``apiserver_longrunning_requests`` at one time.

    Keys are ``(resource, scope, verb)``; requests to paths that are no resource (discovery ``/api``, ``/apis``,
    ``/openapi/...``, ``/version``) are under resource ``""`` with the path as scope."""

    served: Mapping[tuple[str, str, str], float]
    open: Mapping[tuple[str, str, str], float]

    @classmethod
    def parse(cls, text: str) -> RequestCounts:
        served: dict[tuple[str, str, str], float] = {}
        open_now: dict[tuple[str, str, str], float] = {}
        for line in text.splitlines():
            if not line.startswith(("apiserver_request_total{", "apiserver_longrunning_requests{")):
                continue
            match = _SAMPLE.match(line)
            if match is None:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            resource = labels.get("resource", "")
            scope = labels.get("scope", "") if resource else labels.get("subresource", "")
            key = (resource, scope, labels.get("verb", ""))
            target = served if match["name"] == "apiserver_request_total" else open_now
            target[key] = target.get(key, 0.0) + float(match["value"])
        return cls(dict(served), dict(open_now))

    def requests(self, resource: str, verbs: Collection[str] | None = None) -> int:
        """Served requests on namespaced ``resource`` (all verbs, or those named)."""
        return int(
            sum(
                value
                for (res, scope, verb), value in self.served.items()
                if res == resource and scope in NAMESPACED_SCOPES and (verbs is None or verb in verbs)
            )
        )

    def open_watches(self, resource: str) -> int:
        return int(
            sum(
                value
                for (res, scope, verb), value in self.open.items()
                if res == resource and scope in NAMESPACED_SCOPES and verb == "WATCH"
            )
        )

    def discovery(self) -> int:
        """Served requests to paths that are no resource, less health checks and metrics scrapes."""
        return int(
            sum(value for (res, path, _), value in self.served.items() if not res and path not in _HEALTH_AND_METRICS)
        )

    def since(self, earlier: RequestCounts) -> RequestDelta:
        return RequestDelta(self, earlier)


@dataclass(frozen=True)
class RequestDelta:
    """Requests served between two readings of the counters."""

    later: RequestCounts
    earlier: RequestCounts

    def requests(self, resource: str, *verbs: str) -> int:
        """Served requests on namespaced ``resource`` (with one of ``verbs``, or any) between the two readings."""
        wanted = verbs or None
        return self.later.requests(resource, wanted) - self.earlier.requests(resource, wanted)

    def watches_started(self, resource: str) -> int:
        """Watches on namespaced ``resource`` started between the readings: those that ended (counted) plus the
        change in those open."""
        return self.requests(resource, "WATCH") + (
            self.later.open_watches(resource) - self.earlier.open_watches(resource)
        )

    def discovery(self) -> int:
        return self.later.discovery() - self.earlier.discovery()

    def summary(self, resource: str) -> str:
        """``VERB=n`` for each verb on ``resource`` that moved, for assertion messages."""
        verbs = sorted({verb for (res, _, verb) in [*self.later.served, *self.earlier.served] if res == resource})
        moved = {verb: self.requests(resource, verb) for verb in verbs}
        return ", ".join(f"{verb}={count}" for verb, count in moved.items() if count) or "none"


@dataclass(frozen=True)
class WatchEvent:
    """One event of a :class:`SecretWatch`: its type, the secret, its ``data`` (base64 values) and when it arrived
    (``time.monotonic()``)."""

    type: str
    name: str
    data: Mapping[str, str]
    at: float


class SecretWatch:
    """Every change to the objects of one list path (by default the secrets of one namespace) while the context is
    open.

    The watch starts at the ``resourceVersion`` of a list taken on entry, so changes between the entry and the
    watch's connection are not lost, and it is one open request (no polling): a secret created and deleted in
    between two looks is still seen, as ADDED then DELETED. It counts as one open watch on namespaced secrets in the
    server's metrics (``own_watches=1`` for :meth:`ApiClient.settled_counts`)."""

    def __init__(self, client: ApiClient, namespace: str, path: str | None = None) -> None:
        self._client = client
        self.namespace = namespace
        self._path = path or f"/api/v1/namespaces/{namespace}/secrets"
        self._events: list[WatchEvent] = []
        self._changed = threading.Condition()
        self._closed = False
        self._error: str | None = None
        self._connection: http.client.HTTPSConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"watch-secrets-{namespace}")

    def __enter__(self) -> SecretWatch:
        status, listing = self._client.request("GET", self._path)
        if status != 200:
            raise AssertionError(f"could not list secrets in {self.namespace}: {status} {listing}")
        version = listing["metadata"]["resourceVersion"]
        self._connection = self._client.connection(timeout=None)
        self._connection.request(
            "GET",
            f"{self._path}?watch=1&resourceVersion={version}&timeoutSeconds=1800",
        )
        response = self._connection.getresponse()
        if response.status != 200:
            raise AssertionError(f"could not watch secrets in {self.namespace}: {response.status}")
        self._response = response
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        if connection is not None:
            connection.close()

    def _read(self) -> None:
        assert self._response is not None
        try:
            while True:
                line = self._response.readline()
                if not line:
                    break
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    self._error = json.dumps(obj)
                    break
                record = WatchEvent(
                    type=str(event.get("type")),
                    name=str(obj.get("metadata", {}).get("name", "")),
                    data=dict(obj.get("data") or {}),
                    at=time.monotonic(),
                )
                with self._changed:
                    self._events.append(record)
                    self._changed.notify_all()
        except (OSError, ValueError, http.client.HTTPException, ssl.SSLError) as error:
            if not self._closed:
                self._error = repr(error)
        finally:
            with self._changed:
                if not self._closed and self._error is None:
                    self._error = "the server ended the watch"
                self._changed.notify_all()

    def mark(self) -> int:
        """A position in the event list: :meth:`wait_for` ``after`` it sees only what happened later."""
        with self._changed:
            return len(self._events)

    def events(self, name: str | None = None, *, after: int = 0) -> list[WatchEvent]:
        with self._changed:
            return [e for e in self._events[after:] if name is None or e.name == name]

    def wait_for(
        self, name: str, types: Collection[str] = ("ADDED",), *, after: int = 0, timeout: float = 120
    ) -> WatchEvent:
        """The first event (at or after position ``after``) of ``types`` for secret ``name``; fails after
        ``timeout`` seconds (a deadline for a broken step, not a measure of anything)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events[after:]:
                    if event.name == name and event.type in types:
                        return event
                if self._error is not None:
                    raise AssertionError(f"the watch on secrets in {self.namespace} failed: {self._error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(e.type, e.name) for e in self._events[after:]]
                    raise AssertionError(
                        f"no {'/'.join(types)} of secret {name} in {self.namespace} within {timeout:.0f} s; "
                        f"seen: {seen}"
                    )
                self._changed.wait(left)
