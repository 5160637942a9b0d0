"""A real S3-compatible object store for Pulumi state: SeaweedFS (``weed mini``), built from its Go module by
``scripts/e2e-tools.sh``, on 127.0.0.1 with the suite's own credentials and one bucket.

Why SeaweedFS: it is Apache-2.0, its S3 gateway is served by the Go module proxy (as a pseudo-version; MinIO is
AGPL-licensed), and ``weed mini`` runs master, volume server, filer and S3 gateway in one process with a bucket made
at start. What the CLI meets is a real S3 server: SigV4-signed requests, path-style buckets, network writes for every
checkpoint, lock objects under ``.pulumi/locks/``.

The state URL is the gocloud form the CLI takes (pulumi ``pkg/backend/diy``):
``s3://<bucket>?endpoint=http://127.0.0.1:<port>&s3ForcePathStyle=true&region=<region>&response_checksum_validation=
when_required``, with the credentials in ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (:attr:`ObjectStore.env`).

A bucket a network away: ``env(prefix, rtt_ms=30)`` gives the same bucket through a latency proxy
(``lab/latency_proxy.py``, started at first use and stopped with the store) that adds 30 ms to every request's round
trip, latency alone; ``rtt_ms=0`` goes through the proxy with no delay (what the proxy itself costs).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import Process, free_port, start_process
from .latency_proxy import LatencyProxy

BUCKET = "gloo-registration-state"
REGION = "us-east-1"
ACCESS_KEY = "e2e-state-access-key"
SECRET_KEY = "e2e-state-secret-key-not-a-secret"
START_TIMEOUT_SECONDS = 90.0


@dataclass
class ObjectStore:
    """A running SeaweedFS with one bucket: where the state goes (:attr:`backend_url`) and how to reach it."""

    s3_port: int
    filer_port: int
    process: Process
    bucket: str = BUCKET
    work_dir: Path = field(default_factory=Path)
    proxies: dict[float, LatencyProxy] = field(default_factory=dict, repr=False)
    """The latency proxies started so far, by round-trip time in ms (:meth:`proxy`)."""

    @property
    def endpoint(self) -> str:
        """The S3 gateway itself, on loopback."""
        return f"http://127.0.0.1:{self.s3_port}"

    def proxy(self, rtt_ms: float) -> LatencyProxy:
        """A latency proxy to the S3 gateway with ``rtt_ms`` of round trip (one per value, started at first use,
        stopped with the store): the bucket as a client ``rtt_ms`` away sees it; its counts say what went through."""
        if rtt_ms not in self.proxies:
            self.proxies[rtt_ms] = LatencyProxy(self.s3_port, rtt_ms / 1000).start()
        return self.proxies[rtt_ms]

    def endpoint_at(self, rtt_ms: float | None = None) -> str:
        """The S3 endpoint a client uses: the gateway itself (``rtt_ms`` None), or through :meth:`proxy`."""
        return self.endpoint if rtt_ms is None else f"http://{self.proxy(rtt_ms).address}"

    def backend_url(self, prefix: str = "", rtt_ms: float | None = None) -> str:
        """The ``pulumi login`` URL of the bucket (or of a folder ``prefix`` in it: each test its own state), the
        gateway reached directly or ``rtt_ms`` away (:meth:`endpoint_at`)."""
        endpoint = self.endpoint_at(rtt_ms)
        query = urllib.parse.urlencode(
            {
                "endpoint": endpoint,
                "s3ForcePathStyle": "true",
                "region": REGION,
                # SeaweedFS sends no checksum headers with an object, as AWS S3 does; without this the CLI's AWS SDK
                # prints "WARN Response has no supported checksum" on stderr for every state read (gocloud.dev/aws).
                "response_checksum_validation": "when_required",
            }
        )
        path = f"/{prefix.strip('/')}" if prefix.strip("/") else ""
        return f"s3://{self.bucket}{path}?{query}"

    def env(self, prefix: str = "", rtt_ms: float | None = None) -> dict[str, str]:
        """Environment variables for a CLI whose state is in this store (under ``prefix``), ``rtt_ms`` away if
        given (:meth:`endpoint_at`)."""
        return {
            "PULUMI_BACKEND_URL": self.backend_url(prefix, rtt_ms),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            # Nothing of this machine's AWS set-up may take part.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop_proxies(self) -> None:
        """Stop every latency proxy (the store's context does on exit)."""
        for proxy in self.proxies.values():
            proxy.stop()
        self.proxies.clear()

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` of the bucket, as the filer lists them (sorted)."""
        keys: list[str] = []
        self._walk(f"/buckets/{self.bucket}/{prefix.strip('/')}".rstrip("/") + "/", keys)
        start = len(f"/buckets/{self.bucket}/")
        return sorted(key[start:] for key in keys)

    def read(self, key: str) -> bytes:
        """The object ``key`` of the bucket (through the filer)."""
        url = f"http://127.0.0.1:{self.filer_port}/buckets/{self.bucket}/{urllib.parse.quote(key)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return bytes(response.read())

    def _walk(self, folder: str, keys: list[str]) -> None:
        for path in _listing(self.filer_port, folder):
            if path.endswith("/"):
                self._walk(path, keys)
            else:
                keys.append(path)


def _listing(filer_port: int, folder: str) -> list[str]:
    """The entries of a filer folder (``folder`` ends with ``/``), full paths, folders with a trailing ``/``; none
    where the folder does not exist."""
    url = f"http://127.0.0.1:{filer_port}{urllib.parse.quote(folder)}?limit=10000"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            listing = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise
    directory = 0o20000000000  # os.ModeDir among Go's FileMode bits
    return [
        str(entry["FullPath"]) + ("/" if int(entry.get("Mode", 0)) & directory else "")
        for entry in listing.get("Entries") or []
    ]


def _s3_config(path: Path) -> Path:
    """The S3 gateway's identities: the suite's one, allowed everything in every bucket."""
    identity = {
        "name": "gloo-registration-suite",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


def mini_argv(weed: Path, data: Path, s3_config: Path, ports: dict[str, int]) -> list[str]:
    """``weed mini`` on 127.0.0.1 only: every port chosen (the default gRPC port is the HTTP one + 10000, which may
    be taken or past 65535; the admin server runs even without its UI), the extra gateways (WebDAV, Admin UI, Iceberg,
    Lance) and the telemetry off."""
    return [
        str(weed),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.telemetry=false",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={data / 'filer.sock'}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        f"-s3.localSocket={data / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
        f"-bucket={BUCKET}",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={ports['admin_grpc']}",
        "-admin.port.legacy=0",
    ]


def _wait_ready(store: ObjectStore) -> None:
    """Until the bucket answers a listing through the filer (the S3 gateway starts with it), or the process ends."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if store.process.popen.poll() is not None:
            raise RuntimeError(f"weed mini exited {store.process.popen.returncode}:\n{store.process.log_tail()}")
        try:
            # The bucket is made once every service is up, and the filer lists it then.
            if f"/buckets/{store.bucket}/" in _listing(store.filer_port, "/buckets/"):
                with contextlib.closing(urllib.request.urlopen(f"{store.endpoint}/healthz", timeout=5)):
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"weed mini did not serve the bucket within {START_TIMEOUT_SECONDS:.0f} s:\n{store.process.log_tail()}"
    )


@contextlib.contextmanager
def object_store(tools_bin: Path, work_dir: Path) -> Iterator[ObjectStore]:
    """A running SeaweedFS (``weed`` from ``tools_bin``) with its data in ``work_dir``; stopped on exit."""
    data = work_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")}
    ports |= {name: free_port() for name in ("s3", "s3_grpc", "admin", "admin_grpc")}
    argv = mini_argv(tools_bin / "weed", data, _s3_config(work_dir / "s3.json"), ports)
    process = start_process("seaweedfs", argv, work_dir)
    store = ObjectStore(ports["s3"], ports["filer"], process, work_dir=work_dir)
    try:
        _wait_ready(store)
        yield store
    finally:
        store.stop_proxies()
        process.stop()
