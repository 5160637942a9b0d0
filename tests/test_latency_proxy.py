"""The latency proxy (``lab/latency_proxy.py``) against a tiny HTTP server on 127.0.0.1: a request through it costs
about one round-trip time more than the same request straight to the server (compared in the same test, so a slow
machine slows both), a new connection one more (the handshake), a large body one way's delay, not one per chunk, and
the bytes arrive as they were sent, both ways."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.latency_proxy import LatencyProxy, ProxyCounts

RTT = 0.05
REQUESTS = 10
BIG = 5 * 1024 * 1024 + 7  # about 80 of the proxy's chunks, not a whole number of them


class Echo(BaseHTTPRequestHandler):
    """POST: the body back, with its SHA-256 in a header; GET /big: :data:`BIG` bytes of a fixed pattern."""

    protocol_version = "HTTP/1.1"  # kept alive, as the CLI's S3 client keeps its connections
    disable_nagle_algorithm = True  # as Go's sockets: the headers and the body, two writes, go at once

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(body, hashlib.sha256(body).hexdigest())

    def do_GET(self) -> None:
        self._answer(pattern(BIG) if self.path == "/big" else b"ok", "")

    def _answer(self, body: bytes, digest: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Received-Sha256", digest)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(server_port: int) -> Iterator[LatencyProxy]:
    with LatencyProxy(server_port, RTT) as started:
        yield started


def timed_requests(port: int, count: int) -> tuple[float, float]:
    """The first request on a new connection, and ``count`` more on it (kept alive): seconds of each part."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.monotonic()
        post(connection, b"first")
        first = time.monotonic() - started
        started = time.monotonic()
        for i in range(count):
            post(connection, f"request {i}".encode())
        return first, time.monotonic() - started
    finally:
        connection.close()


def post(connection: http.client.HTTPConnection, body: bytes) -> bytes:
    connection.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    answer = response.read()
    assert response.status == 200
    assert response.headers["X-Received-Sha256"] == hashlib.sha256(body).hexdigest(), "the server got other bytes"
    assert answer == body, "the client got other bytes"
    return answer


def test_each_request_costs_one_round_trip_more_and_a_new_connection_one_more(
    server_port: int, proxy: LatencyProxy
) -> None:
    direct_first, direct = timed_requests(server_port, REQUESTS)
    proxied_first, proxied = timed_requests(proxy.port, REQUESTS)
    per_request = (proxied - direct) / REQUESTS
    # Timers only fire late on a busy machine, never much early: the lower bounds are firm, the upper ones loose.
    assert 0.9 * RTT <= per_request <= 1.6 * RTT, f"{per_request * 1000:.1f} ms more per request, RTT {RTT * 1000} ms"
    handshake_and_request = proxied_first - direct_first
    assert 1.8 * RTT <= handshake_and_request <= 3.0 * RTT, f"{handshake_and_request * 1000:.1f} ms for the first"
    assert proxy.counts() == ProxyCounts(
        connections=1,
        round_trips=REQUESTS + 1,
        bytes_to_server=proxy.counts().bytes_to_server,
        bytes_to_client=proxy.counts().bytes_to_client,
    )


def test_large_bodies_pass_unchanged_and_pay_one_delay_not_one_per_chunk(server_port: int, proxy: LatencyProxy) -> None:
    upload = os.urandom(BIG)
    timings: dict[int, float] = {}
    for port in (server_port, proxy.port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            post(connection, b"warm")  # the handshake paid before the clock starts
            started = time.monotonic()
            assert post(connection, upload) == upload
            connection.request("GET", "/big")
            response = connection.getresponse()
            assert response.read() == pattern(BIG)
            timings[port] = time.monotonic() - started
        finally:
            connection.close()
    extra = timings[proxy.port] - timings[server_port]
    # Two round trips; a delay per 64 KiB chunk would be some 80 RTTs each way.
    assert extra < 10 * RTT, f"{extra:.2f} s more for two large round trips at RTT {RTT} s"
    counts = proxy.counts()
    assert counts.bytes_to_server > BIG and counts.bytes_to_client > 2 * BIG
    assert counts.round_trips == 3 and counts.connections == 1


def test_stop_closes_the_port(server_port: int) -> None:
    proxy = LatencyProxy(server_port, 0.0).start()
    assert post(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10), b"through") == b"through"
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10).request("GET", "/")
