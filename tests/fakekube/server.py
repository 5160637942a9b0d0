"""A fake Kubernetes API server for tests: a test double, not a real API server.

It emulates the parts of the kube-apiserver HTTP API that ``kubectl`` (1.32)
relies on, closely enough for the real binary to run against it over plain
HTTP with no authentication:

* ``GET /version`` (``version.Info``), health endpoints;
* discovery: the legacy documents (``/api``, ``/api/v1``, ``/apis``,
  ``/apis/<group>``, ``/apis/<group>/<version>``) and, when a client asks for it
  in ``Accept``, aggregated discovery (``apidiscovery.k8s.io/v2``
  ``APIGroupDiscoveryList``) as served by kube-apiserver since 1.30;
* ``GET /openapi/v3`` and per-group-version documents that declare the
  ``fieldValidation`` PATCH parameter, which is what kubectl checks before
  skipping client-side validation; ``/openapi/v2`` answers 404 (kubectl only
  accepts it as protobuf);
* the resource REST API for core/v1 ``namespaces`` and ``secrets`` and the
  ``multicluster.solo.io/v1alpha1`` ``kubernetesclusters`` custom resource:
  get, list (label and field selectors, ``limit``/``continue``), create, update
  (PUT), patch (server-side apply ``application/apply-patch+yaml``, JSON merge
  patch, strategic merge patch, JSON patch), delete and deletecollection, with
  ``dryRun``, ``fieldManager``, ``fieldValidation`` and ``force``;
* watches per the "Efficient detection of changes" section of the Kubernetes
  API concepts doc: ``?watch=true`` streams newline-delimited JSON
  ``{"type": ..., "object": ...}`` events over ``Transfer-Encoding: chunked``,
  honouring ``resourceVersion`` (exact resume, 410 Expired for compacted
  versions, synthetic ADDED events when unset or "0"), ``sendInitialEvents``
  with the ``k8s.io/initial-events-end`` bookmark, label/field selectors and
  ``timeoutSeconds``; streams end when the server stops;
* ``metav1.Status`` error bodies (NotFound, AlreadyExists, Conflict, Invalid,
  BadRequest, MethodNotAllowed, UnsupportedMediaType, Expired) with the
  messages kubectl prints (``Error from server (NotFound): secrets "x" not found``);
* server-side printing (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``),
  which ``kubectl get`` asks for when printing columns;
* graceful deletion: an object with ``metadata.finalizers`` gets a
  ``deletionTimestamp`` (202) and goes when the last finalizer is removed, so
  ``kubectl delete``'s wait (list + watch) can be exercised;
* protobuf request bodies (``application/vnd.kubernetes.protobuf``) for
  Namespace and Secret, which kubectl's typed clients send
  (``kubectl create namespace``, ``kubectl create secret generic``).

What kubectl 1.32 sends (observed against this server): every run starts with
``GET /version?timeout=5s`` (the gcloud kubectl dispatcher picks the binary for
the server's minor version); ``get``/``delete``/``wait`` use aggregated
discovery; ``apply``/``create -f`` first read ``/openapi/v3`` and the
group-version document - without them kubectl refuses to proceed unless given
``--validate=false``; ``wait --for=create`` re-GETs the object every 0.5 s;
``wait --for=delete`` and ``delete``'s own wait list with
``fieldSelector=metadata.name=NAME`` and then watch from the list's
``resourceVersion``. Point ``KUBECACHEDIR`` at a per-test directory so the
discovery cache is not shared between servers.

Not emulated: authentication/authorization, TLS/HTTP2, CBOR, protobuf bodies
for other kinds and protobuf responses (JSON is always answered, which the
clients accept), subresources (``status``, ``scale``), resource types other
than the three above, CRD objects themselves, admission, garbage collection
(ownerReferences), periodic watch bookmarks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import pathlib
import queue
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from . import protobuf
from . import resources as res
from .patch import (
    PatchError,
    json_merge_patch,
    json_patch,
    parse_json_or_yaml,
    strategic_merge_patch,
)
from .resources import NAMESPACES, SECRETS, JsonObj, ResourceType
from .store import (
    ApiError,
    Event,
    ObjectStore,
    Selector,
    Watch,
    bad_request,
    parse_field_selector,
    parse_label_selector,
)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DEFAULT_WATCH_TIMEOUT = 1800.0
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROTOBUF = "application/vnd.kubernetes.protobuf"


@dataclass
class RecordedRequest:
    """One request as the server saw it (recorded when it arrives)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    time: float  # time.monotonic() on arrival
    is_watch: bool
    accept: str = ""
    user_agent: str = ""
    body: bytes = b""
    status: int | None = None  # filled in once answered (watches: when the stream starts)


@dataclass
class _Response:
    code: int
    body: Any
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _WatchStream:
    watch: Watch
    initial: list[Event]
    timeout: float
    rt: ResourceType
    table: bool
    include_object: str


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _wants_table(accept: str) -> bool:
    for option in accept.split(","):
        params = {p.strip() for p in option.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def _wants_aggregated(accept: str) -> bool:
    for option in accept.split(","):
        params = {p.strip() for p in option.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def _warning_header(message: str) -> str:
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})", {}
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: FakeKubeApiServer) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = self._read_body()
        record = RecordedRequest(
            method=method,
            path=split.path,
            query=query,
            content_type=self.headers.get("content-type", ""),
            time=time.monotonic(),
            is_watch=query.get("watch", "").lower() in ("true", "1"),
            accept=self.headers.get("accept", ""),
            user_agent=self.headers.get("user-agent", ""),
            body=body,
        )
        api._record(record)
        try:
            try:
                headers = {k.lower(): v for k, v in self.headers.items()}
                result = api._route(method, split.path, query, body, headers, record)
            except ApiError as err:
                result = _Response(err.code, err.status())
            except PatchError as err:
                result = _Response(err.code, ApiError(err.code, err.reason, str(err)).status())
            except Exception:  # a bug in the fake: answer 500, remember it
                api._errors.append(traceback.format_exc())
                result = _Response(
                    500,
                    ApiError(500, "InternalError", "fake apiserver error; see server.errors").status(),
                )
            record.status = 200 if isinstance(result, _WatchStream) else result.code
            if isinstance(result, _WatchStream):
                self._stream(result)
            else:
                self._send(result)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _send(self, response: _Response) -> None:
        if isinstance(response.body, bytes):
            payload = response.body
        else:
            payload = json.dumps(response.body, separators=(",", ":")).encode() + b"\n"
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except (OSError, ValueError):
            return True
        return False

    def _stream(self, stream: _WatchStream) -> None:
        api = self.server.api
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + stream.timeout
        api._stream_started()
        try:

            def emit(event: Event) -> None:
                kind, obj = event
                if stream.table and kind in ("ADDED", "MODIFIED", "DELETED"):
                    obj = res.to_table(stream.rt, [obj], {}, stream.include_object)
                line = json.dumps({"type": kind, "object": obj}, separators=(",", ":"))
                self._write_chunk(line.encode() + b"\n")

            for event in stream.initial:
                emit(event)
            while not stream.watch.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = stream.watch.queue.get(timeout=min(0.2, remaining))
                except queue.Empty:
                    if self._client_gone() or api._stopping.is_set():
                        break
                    continue
                if item is None:
                    break
                emit(item)
            self.wfile.write(b"0\r\n\r\n")
        finally:
            api._store.close_watch(stream.watch)
            api._stream_ended()
            if api._stopping.is_set():
                self.close_connection = True


class FakeKubeApiServer:
    """In-memory Kubernetes API server double for running the real kubectl against.

    Use as a context manager: it listens on 127.0.0.1 on a free port, serves
    from daemon threads, and on exit stops, ending open watches and connections.
    It starts with the namespaces a new cluster has (``DEFAULT_NAMESPACES``).

    ``aggregated_discovery=False`` serves only the legacy discovery documents;
    ``openapi_v3=False`` answers 404 for ``/openapi/v3`` (kubectl ``apply`` and
    ``create -f`` then fail unless run with ``--validate=false``).
    """

    def __init__(
        self,
        *,
        server_version: str = "v1.32.0",
        aggregated_discovery: bool = True,
        openapi_v3: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.server_version = server_version
        self.aggregated_discovery = aggregated_discovery
        self.openapi_v3 = openapi_v3
        self._host = host
        self._store = ObjectStore()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._errors: list[str] = []
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()
        self._active_streams = 0
        self._streams_done = threading.Condition()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        for ns in DEFAULT_NAMESPACES:
            self._store.create(NAMESPACES, None, {"metadata": {"name": ns}}, manager="kube-apiserver")

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = _HTTPServer((self._host, 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakekube-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        self._store.close()
        with self._streams_done:  # let watch handlers write their final chunk
            self._streams_done.wait_for(lambda: self._active_streams == 0, timeout=2.0)
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake API server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def kubeconfig_text(self, context: str = "fake") -> str:
        """A kubeconfig for plain HTTP, no credentials; cluster/user/context are named ``context``."""
        q = json.dumps
        return "\n".join(
            [
                "apiVersion: v1",
                "kind: Config",
                "preferences: {}",
                "clusters:",
                f"- name: {q(context)}",
                "  cluster:",
                f"    server: {q(self.url)}",
                "users:",
                f"- name: {q(context)}",
                "  user: {}",
                "contexts:",
                f"- name: {q(context)}",
                "  context:",
                f"    cluster: {q(context)}",
                f"    user: {q(context)}",
                f"current-context: {q(context)}",
                "",
            ]
        )

    def write_kubeconfig(self, path: pathlib.Path, context: str = "fake") -> pathlib.Path:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.kubeconfig_text(context))
        return path

    def _stream_started(self) -> None:
        with self._streams_done:
            self._active_streams += 1

    def _stream_ended(self) -> None:
        with self._streams_done:
            self._active_streams -= 1
            self._streams_done.notify_all()

    # ----------------------------------------------------------------- observation

    def _record(self, record: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a snapshot, oldest first)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions in request handling (should stay empty)."""
        return list(self._errors)

    @property
    def open_watches(self) -> int:
        return self._store.open_watch_count

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    def wait_for_request(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0
    ) -> RecordedRequest | None:
        """Poll until a recorded request satisfies ``predicate``; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.requests:
                if predicate(record):
                    return record
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    # ----------------------------------------------------------------- state helpers

    def put_namespace(self, name: str, *, labels: Mapping[str, str] | None = None) -> JsonObj:
        metadata: JsonObj = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        return self._store.put(NAMESPACES, None, {"metadata": metadata}, manager="fakekube")

    def put_object(self, resource: str, namespace: str | None, obj: Mapping[str, Any]) -> JsonObj:
        """Create or replace any served object (namespaces are created as needed)."""
        rt = res.resource_by_name(resource)
        return self._store.put(rt, namespace, copy.deepcopy(dict(obj)), manager="fakekube")

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        type: str = "Opaque",
    ) -> JsonObj:
        """Create or replace a Secret's data (base64-encoding it) and notify watchers.

        ``labels``/``annotations`` replace the existing ones when given and are
        kept when None. The namespace is created if missing.
        """
        with self._store.lock:
            existing = self._store.find(SECRETS, namespace, name)
            metadata: JsonObj = {"name": name, "namespace": namespace}
            old_meta = (existing or {}).get("metadata", {})
            for key, given in (("labels", labels), ("annotations", annotations)):
                if given is not None:
                    metadata[key] = dict(given)
                elif key in old_meta:
                    metadata[key] = old_meta[key]
            obj: JsonObj = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata,
                "type": existing.get("type", type) if existing else type,
                "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()},
            }
            if existing and existing.get("immutable"):
                obj["immutable"] = True
            return self._store.put(SECRETS, namespace, obj, manager="fakekube")

    def put_secret_later(
        self,
        delay_seconds: float,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        *,
        labels: Mapping[str, str] | None = None,
    ) -> threading.Timer:
        """``put_secret`` after a delay, from a daemon timer thread (cancelled on stop)."""

        def fire() -> None:
            if self._stopping.is_set():
                return
            try:
                self.put_secret(namespace, name, data, labels=labels)
            except Exception:  # reported through .errors
                self._errors.append(traceback.format_exc())

        timer = threading.Timer(delay_seconds, fire)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return timer

    def get_object(self, resource: str, namespace: str | None, name: str) -> JsonObj | None:
        """A copy of the stored object, or None. ``resource`` is a plural, e.g. "secrets"."""
        return self._store.find(res.resource_by_name(resource), namespace, name)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[JsonObj]:
        rt = res.resource_by_name(resource)
        return self._store.select(Selector(rt, namespace if rt.namespaced else None))[0]

    def delete_object(self, resource: str, namespace: str | None, name: str) -> bool:
        """Delete (notifying watchers); False if there was nothing to delete."""
        try:
            self._store.delete(res.resource_by_name(resource), namespace, name)
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True

    def merge_patch_object(
        self, resource: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> JsonObj | None:
        """Apply a JSON merge patch as a client would (e.g. to drop finalizers).

        Returns the stored object, or None if the object is gone afterwards.
        """
        rt = res.resource_by_name(resource)
        with self._store.lock:
            current = self._store.get(rt, namespace, name)
            self._store.patch(
                rt,
                namespace,
                name,
                json_merge_patch(current, dict(patch)),
                manager="fakekube",
                base_rv=str(current["metadata"].get("resourceVersion", "")),
            )
            return self._store.find(rt, namespace, name)

    def decoded_secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self.get_object("secrets", namespace, name)
        if secret is None:
            return None
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    # ----------------------------------------------------------------- routing

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        headers: Mapping[str, str],
        record: RecordedRequest,
    ) -> _Response | _WatchStream:
        accept = headers.get("accept", "") or ""
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        if method == "GET":
            if path in ("/healthz", "/livez", "/readyz"):
                return _Response(200, b"ok", "text/plain; charset=utf-8")
            if path == "/version":
                return _Response(200, res.version_info(self.server_version))
            if segments[:1] == ["openapi"]:
                return self._openapi(segments[1:])
        if segments[:1] == ["api"]:
            if len(segments) == 1:
                return self._discovery_root(method, accept, core=True)
            if segments[1] != "v1":
                raise _route_not_found()
            if len(segments) == 2:
                if method != "GET":
                    raise _method_not_allowed(method)
                return _Response(200, res.api_resource_list("", "v1"))
            return self._resource(method, "", "v1", segments[2:], query, body, headers)
        if segments[:1] == ["apis"]:
            if len(segments) == 1:
                return self._discovery_root(method, accept, core=False)
            group = segments[1]
            if len(segments) == 2:
                doc = res.api_group(group)
                if doc is None:
                    raise _route_not_found()
                return _Response(200, doc)
            version = segments[2]
            if not res.resources_in(group, version):
                raise _route_not_found()
            if len(segments) == 3:
                if method != "GET":
                    raise _method_not_allowed(method)
                return _Response(200, res.api_resource_list(group, version))
            return self._resource(method, group, version, segments[3:], query, body, headers)
        return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _discovery_root(self, method: str, accept: str, *, core: bool) -> _Response:
        if method != "GET":
            raise _method_not_allowed(method)
        if self.aggregated_discovery and _wants_aggregated(accept):
            return _Response(
                200,
                res.aggregated_discovery(core),
                res.AGGREGATED_DISCOVERY_V2,
                [("Vary", "Accept")],
            )
        if core:
            return _Response(200, res.api_versions(f"{self._host}:{self.port}"), headers=[("Vary", "Accept")])
        return _Response(200, res.api_group_list(), headers=[("Vary", "Accept")])

    def _openapi(self, rest: list[str]) -> _Response:
        if not self.openapi_v3 or rest[:1] != ["v3"]:
            return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        gv = rest[1:]
        if not gv:
            return _Response(200, res.openapi_v3_index(self.server_version))
        if gv[0] == "api" and len(gv) == 2:
            group, version = "", gv[1]
        elif gv[0] == "apis" and len(gv) == 3:
            group, version = gv[1], gv[2]
        else:
            return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if not res.resources_in(group, version):
            return _Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        doc = res.openapi_v3_document(group, version, self.server_version)
        return _Response(200, doc, headers=[("Etag", f'"{res.openapi_v3_hash(doc)}"')])

    def _resource(
        self,
        method: str,
        group: str,
        version: str,
        segments: list[str],
        query: dict[str, str],
        body: bytes,
        headers: Mapping[str, str],
    ) -> _Response | _WatchStream:
        namespace: str | None = None
        if (
            len(segments) >= 3
            and segments[0] == "namespaces"
            and (candidate := res.find_resource(group, version, segments[2])) is not None
            and candidate.namespaced
        ):
            namespace = segments[1]
            segments = segments[2:]
        rt = res.find_resource(group, version, segments[0])
        if rt is None:
            raise _route_not_found()
        name = segments[1] if len(segments) > 1 else None
        if len(segments) > 2:
            raise _route_not_found()  # subresources are not emulated
        if rt.namespaced and namespace is None and name is not None:
            raise _route_not_found()
        accept = headers.get("accept", "") or ""
        content_type = headers.get("content-type", "") or ""
        user_agent = headers.get("user-agent", "") or ""
        manager = query.get("fieldManager") or user_agent.split("/", 1)[0][:128]
        field_validation = query.get("fieldValidation", "Warn") or "Warn"
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, got {field_validation!r}")
        dry_run = query.get("dryRun", "") == "All"
        if dry_run is False and query.get("dryRun"):
            raise bad_request(f"unsupported dry run option: {query['dryRun']}")

        if method == "GET":
            if name is None or query.get("watch", "").lower() in ("true", "1"):
                return self._list_or_watch(rt, namespace, name, query, accept)
            obj = self._store.get(rt, namespace, name)
            return self._object_response(200, rt, obj, accept, query)
        if method == "POST":
            if name is not None:
                raise _method_not_allowed(method)
            payload = self._decode_body(rt, body, content_type)
            created, warnings = self._store.create(
                rt,
                namespace,
                payload,
                manager=manager,
                field_validation=field_validation,
                dry_run=dry_run,
            )
            return self._object_response(201, rt, created, accept, query, warnings)
        if method == "PUT":
            if name is None:
                raise _method_not_allowed(method)
            payload = self._decode_body(rt, body, content_type)
            updated, warnings = self._store.update(
                rt,
                namespace,
                name,
                payload,
                manager=manager,
                field_validation=field_validation,
                dry_run=dry_run,
            )
            return self._object_response(200, rt, updated, accept, query, warnings)
        if method == "PATCH":
            if name is None:
                raise _method_not_allowed(method)
            return self._patch(
                rt,
                namespace,
                name,
                body,
                content_type,
                query,
                accept,
                manager,
                field_validation,
                dry_run,
            )
        if method == "DELETE":
            return self._delete(rt, namespace, name, body, query, dry_run)
        raise _method_not_allowed(method)

    def _decode_body(self, rt: ResourceType, body: bytes, content_type: str) -> Any:
        media = _media_type(content_type)
        if media == PROTOBUF:
            try:
                decoded = protobuf.decode(body)
            except protobuf.ProtobufError as err:
                raise ApiError(
                    415 if "not supported" in str(err) else 400,
                    "UnsupportedMediaType" if "not supported" in str(err) else "BadRequest",
                    str(err),
                ) from err
            return decoded
        if media in ("", "application/json", "application/yaml", "*/*"):
            try:
                return parse_json_or_yaml(body)
            except PatchError as err:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {err}',
                ) from err
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({media}) - accepted media "
            "types include: application/json, application/yaml",
        )

    def _object_response(
        self,
        code: int,
        rt: ResourceType,
        obj: JsonObj,
        accept: str,
        query: Mapping[str, str],
        warnings: list[str] | None = None,
    ) -> _Response:
        headers = [("Warning", _warning_header(w)) for w in warnings or []]
        if _wants_table(accept):
            table = res.to_table(
                rt,
                [obj],
                {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                query.get("includeObject", "Metadata"),
            )
            return _Response(code, table, headers=headers)
        return _Response(code, obj, headers=headers)

    def _list_or_watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        query: dict[str, str],
        accept: str,
    ) -> _Response | _WatchStream:
        labels = tuple(parse_label_selector(query.get("labelSelector", "")))
        fields = tuple(parse_field_selector(rt, query.get("fieldSelector", "")))
        if name is not None:  # the deprecated GET .../name?watch=true form
            fields += tuple(parse_field_selector(rt, f"metadata.name={name}"))
        selector = Selector(rt, namespace if rt.namespaced else None, labels, fields)
        include_object = query.get("includeObject", "Metadata")
        if query.get("watch", "").lower() in ("true", "1"):
            send_initial = query.get("sendInitialEvents", "").lower() == "true"
            if send_initial and query.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError(
                    422,
                    "Invalid",
                    'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            timeout_text = query.get("timeoutSeconds", "")
            try:
                timeout = float(timeout_text) if timeout_text else DEFAULT_WATCH_TIMEOUT
            except ValueError as exc:
                raise bad_request(f"invalid timeoutSeconds {timeout_text!r}") from exc
            watch, initial = self._store.open_watch(
                selector,
                resource_version=query.get("resourceVersion", ""),
                send_initial_events=send_initial,
            )
            return _WatchStream(watch, initial, timeout, rt, _wants_table(accept), include_object)

        items, rv = self._store.select(selector)
        start = 0
        if token := query.get("continue"):
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = (str(decoded["start"][0]), str(decoded["start"][1]))
            except (binascii.Error, ValueError, KeyError, TypeError, IndexError) as exc:
                raise bad_request("continue key is not valid") from exc
            start = next(
                (
                    i
                    for i, obj in enumerate(items)
                    if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) > after
                ),
                len(items),
            )
        list_meta: JsonObj = {"resourceVersion": str(rv)}
        limit_text = query.get("limit", "")
        page = items[start:]
        if limit_text.isdigit() and 0 < int(limit_text) < len(page):
            page = page[: int(limit_text)]
            last = page[-1]["metadata"]
            token_body = {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}
            list_meta["continue"] = base64.urlsafe_b64encode(json.dumps(token_body).encode()).decode()
            list_meta["remainingItemCount"] = len(items) - start - len(page)
        if _wants_table(accept):
            return _Response(200, res.to_table(rt, page, list_meta, include_object))
        if not rt.custom:  # typed lists do not repeat kind/apiVersion per item
            for obj in page:
                obj.pop("kind", None)
                obj.pop("apiVersion", None)
        return _Response(
            200,
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta, "items": page},
        )

    def _patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        query: dict[str, str],
        accept: str,
        manager: str,
        field_validation: str,
        dry_run: bool,
    ) -> _Response:
        media = _media_type(content_type)
        force_text = query.get("force", "")
        if media == APPLY_PATCH:
            config = parse_json_or_yaml(body)
            obj, created, warnings = self._store.apply(
                rt,
                namespace,
                name,
                config,
                manager=query.get("fieldManager", ""),
                force=force_text.lower() == "true",
                field_validation=field_validation,
                dry_run=dry_run,
            )
            return self._object_response(201 if created else 200, rt, obj, accept, query, warnings)
        if force_text:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
            )
        if media not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the server does not support the patch type {media!r}",
            )
        if media == STRATEGIC_PATCH and rt.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported for custom resources; use merge patch or JSON patch",
            )
        try:
            patch_doc = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        with self._store.lock:
            current = self._store.get(rt, namespace, name)
            base_rv = str(current["metadata"].get("resourceVersion", ""))
            if media == JSON_PATCH:
                patched = json_patch(current, patch_doc)
            elif media == MERGE_PATCH:
                patched = json_merge_patch(current, patch_doc)
            else:
                patched = strategic_merge_patch(current, patch_doc)
            obj, warnings = self._store.patch(
                rt,
                namespace,
                name,
                patched,
                manager=manager,
                field_validation=field_validation,
                dry_run=dry_run,
                base_rv=base_rv,
            )
        return self._object_response(200, rt, obj, accept, query, warnings)

    def _delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        body: bytes,
        query: dict[str, str],
        dry_run: bool,
    ) -> _Response:
        options: JsonObj = {}
        if body.strip():
            try:
                decoded = json.loads(body)
            except json.JSONDecodeError as exc:
                raise bad_request(f"invalid DeleteOptions: {exc}") from exc
            if isinstance(decoded, dict):
                options = decoded
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        preconditions = options.get("preconditions")
        if name is None:
            if "deletecollection" not in rt.verbs:
                raise _method_not_allowed("DELETE")
            labels = tuple(parse_label_selector(query.get("labelSelector", "")))
            fields = tuple(parse_field_selector(rt, query.get("fieldSelector", "")))
            selector = Selector(rt, namespace if rt.namespaced else None, labels, fields)
            deleted: list[JsonObj] = []
            for obj in self._store.select(selector)[0]:
                meta = obj["metadata"]
                try:
                    deleted.append(self._store.delete(rt, meta.get("namespace"), meta["name"], dry_run=dry_run)[0])
                except ApiError as err:
                    if err.code != 404:
                        raise
            return _Response(
                200,
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self._store.resource_version)},
                    "items": deleted,
                },
            )
        obj, deleted_now = self._store.delete(
            rt,
            namespace,
            name,
            preconditions=preconditions if isinstance(preconditions, dict) else None,
            dry_run=dry_run,
        )
        if not deleted_now:  # waiting for finalizers
            return _Response(202, obj)
        if rt.custom or rt is NAMESPACES:
            return _Response(200, obj)
        details: JsonObj = {"name": name}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"].get("uid", "")
        return _Response(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            },
        )


__all__ = ["DEFAULT_NAMESPACES", "FakeKubeApiServer", "RecordedRequest"]
