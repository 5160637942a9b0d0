"""Real Kubernetes control planes on 127.0.0.1: one etcd, and per cluster a kube-apiserver and its controller manager.

The binaries are the real ones, built from their Go modules by ``scripts/e2e-tools.sh``. The flags follow
controller-runtime's envtest (``pkg/internal/testing/controlplane/apiserver.go``: serving certificates from a tiny CA,
``ServiceAccount`` admission off, RBAC with an admin in ``system:masters``; users outside it on request,
:meth:`ControlPlanes.user_kubeconfig`), with two differences: both API servers
share one etcd under their own ``--etcd-prefix``, and each runs a ``kube-controller-manager`` with the garbage collector
and namespace controllers, without which foreground deletes and namespace deletes never finish (``controllers`` adds
others: the fleet benchmark adds the deployment and replicaset controllers, :data:`WORKLOAD_CONTROLLERS`).

There is no scheduler and no kubelet: Pods never run, so workloads never become ready (unless a stand-in writes their
status, as the fleet benchmark's agent does).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STARTUP_TIMEOUT_SECONDS = 90.0
CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "serviceaccount-controller")
"""The controller manager's controllers by default: what deletes need, and nothing that makes workloads."""
WORKLOAD_CONTROLLERS = ("deployment-controller", "replicaset-controller")
"""Added on request (``control_planes(controllers=...)``): a Deployment gets its ReplicaSet and that its Pod, whose
status nothing but a stand-in then writes (there is no scheduler and no kubelet)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA that signs the API servers' serving certificates and the client certificates of the admin and of
    any other user (:meth:`ControlPlanes.user_kubeconfig`)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, common_name: str, *, organizations: Sequence[str] = (), server: bool = False
    ) -> tuple[bytes, bytes]:
        """A leaf certificate and its key (PEM): for serving on 127.0.0.1/localhost, or for a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        return certificate.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@dataclass
class Process:
    """A started server process, its log file and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_process(name: str, argv: Sequence[str], log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle.close()
    return Process(name, popen, log)


@dataclass
class ApiServer:
    """One cluster: its kube-apiserver (and controller manager), reachable as a kubeconfig context."""

    name: str
    port: int
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def context(self) -> str:
        return f"e2e-{self.name}"


@dataclass
class ControlPlanes:
    """The running servers of a test session, and the admin kubeconfig with one context per cluster."""

    bin_dir: Path
    work_dir: Path
    kubeconfig: Path
    clusters: dict[str, ApiServer]
    etcd: Process
    ca_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    controllers: tuple[str, ...] = CONTROLLERS
    """Every controller manager's ``--controllers`` (extra servers started later get the same)."""
    ca: CertificateAuthority | None = None
    """The session's CA (the API servers' ``--client-ca-file``), to issue client certificates for other users."""

    def kubectl(self, cluster: str, *args: str, input: str | None = None, check: bool = True) -> str:
        """Runs the built kubectl against one cluster; returns stdout and raises with stderr on failure."""
        argv = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig)]
        argv += ["--context", self.clusters[cluster].context, *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} on {cluster} failed: {result.stderr.strip()}")
        return result.stdout

    def kubeconfig_text(self, cluster: str, context: str) -> str:
        """A kubeconfig for one cluster whose only context (the current one) is named ``context``."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        own = self.clusters[cluster].context
        entry = next(c for c in config["clusters"] if c["name"] == own)
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": context, "cluster": entry["cluster"]}],
                "users": config["users"],
                "contexts": [{"name": context, "context": {"cluster": context, "user": config["users"][0]["name"]}}],
                "current-context": context,
            }
        )

    def user_kubeconfig(self, user: str, path: Path, *, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig at ``path`` for ``user``, a member of ``groups`` and not of ``system:masters``: a client
        certificate signed by the session's CA (CN the user, O each group: how the API server's x509 authenticator
        reads them), with one context per cluster, named as the admin's (``e2e-<cluster>``), as a user's own
        kubeconfig holds them. What the user may do is only what RBAC bindings to it or its groups grant."""
        if self.ca is None:
            raise RuntimeError("these control planes keep no CA to issue client certificates with")
        if "system:masters" in groups:
            raise ValueError("a user in system:masters bypasses RBAC: use the admin kubeconfig instead")
        cert, key = self.ca.issue(user, organizations=groups)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_kubeconfig(path, list(self.clusters.values()), self.ca_pem, cert, key, user=user)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        cert = self.work_dir / "admin.crt"
        key = self.work_dir / "admin.key"
        context.load_cert_chain(str(cert), str(key))
        return context

    def logs(self) -> str:
        """The tails of every server log, for a failing test's report."""
        processes = [self.etcd] + [p for server in self.clusters.values() for p in server.processes]
        return "\n\n".join(f"--- {p.name} ({p.log}) ---\n{p.log_tail()}" for p in processes)


def _wait_ready(url: str, context: ssl.SSLContext, processes: Sequence[Process]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = ""
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as error:
            last_error = str(error)
        time.sleep(0.25)
    tails = "\n".join(p.log_tail() for p in processes)
    raise RuntimeError(f"{url} not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s ({last_error}):\n{tails}")


def _write_kubeconfig(
    path: Path,
    clusters: Sequence[ApiServer],
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    *,
    user: str = "e2e-admin",
) -> None:
    from base64 import b64encode

    def b64(data: bytes) -> str:
        return b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": c.context, "cluster": {"server": c.url, "certificate-authority-data": b64(ca_pem)}}
            for c in clusters
        ],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": c.context, "context": {"cluster": c.context, "user": user}} for c in clusters],
        "current-context": clusters[0].context,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


@contextmanager
def control_planes(
    bin_dir: Path,
    work_dir: Path,
    names: Sequence[str] = ("mgmt", "remote"),
    controllers: Sequence[str] = CONTROLLERS,
) -> Iterator[ControlPlanes]:
    """Starts etcd and one API server plus controller manager (running ``controllers``) per name; stops them all on
    exit."""
    for tool in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"):
        if not os.access(bin_dir / tool, os.X_OK):
            raise FileNotFoundError(f"{bin_dir / tool} is missing: run scripts/e2e-tools.sh to build the real tools")
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir = work_dir / "logs"
    log_dir.mkdir(exist_ok=True)

    ca = CertificateAuthority.create("gloo-registration-e2e-ca")
    (work_dir / "ca.crt").write_bytes(ca.certificate_pem)
    serving_cert, serving_key = ca.issue("kube-apiserver", server=True)
    (work_dir / "apiserver.crt").write_bytes(serving_cert)
    (work_dir / "apiserver.key").write_bytes(serving_key)
    client_cert, client_key = ca.issue("e2e-admin", organizations=["system:masters"])
    (work_dir / "admin.crt").write_bytes(client_cert)
    (work_dir / "admin.key").write_bytes(client_key)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (work_dir / "service-accounts.key").write_bytes(_pem_key(sa_key))

    etcd_port, etcd_peer_port = free_port(), free_port()
    etcd = start_process(
        "etcd",
        [
            str(bin_dir / "etcd"),
            f"--data-dir={work_dir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
            "--unsafe-no-fsync",
        ],
        log_dir,
    )
    servers = {name: ApiServer(name, free_port()) for name in names}
    planes = ControlPlanes(
        bin_dir,
        work_dir,
        work_dir / "kubeconfig",
        servers,
        etcd,
        ca.certificate_pem,
        client_cert,
        client_key,
        tuple(controllers),
        ca,
    )
    try:
        for server in servers.values():
            argv = _apiserver_argv(planes, server, work_dir / server.name)
            server.processes.append(start_process(f"kube-apiserver-{server.name}", argv, log_dir))
        _write_kubeconfig(planes.kubeconfig, list(servers.values()), ca.certificate_pem, client_cert, client_key)
        context = planes.ssl_context()
        for server in servers.values():
            _wait_ready(f"{server.url}/readyz", context, [etcd, *server.processes])
        for server in servers.values():
            kubeconfig = work_dir / f"{server.name}.kubeconfig"
            _write_kubeconfig(kubeconfig, [server], ca.certificate_pem, client_cert, client_key)
            argv = _controller_manager_argv(planes, kubeconfig, work_dir / server.name / "kcm")
            server.processes.append(start_process(f"kube-controller-manager-{server.name}", argv, log_dir))
        yield planes
    finally:
        for server in servers.values():
            for process in reversed(server.processes):
                process.stop()
        etcd.stop()


# -- Extra servers for one module, and stopping and starting a server ---------------------------------------------
# Fault tests need an API server of their own (one they may stop) next to the session's. The session's etcd holds
# its objects under its own prefix, so a server stopped and started again on the same port finds them all again.


def etcd_client_url(planes: ControlPlanes) -> str:
    """The client URL of the session's etcd, from the flags it was started with."""
    flag = "--listen-client-urls="
    for arg in planes.etcd.popen.args:  # type: ignore[union-attr]
        if isinstance(arg, str) and arg.startswith(flag):
            return arg[len(flag) :]
    raise RuntimeError("the session's etcd was started without --listen-client-urls")


def _apiserver_argv(planes: ControlPlanes, server: ApiServer, cert_dir: Path) -> list[str]:
    """An API server's flags, for :func:`control_planes` and the extra servers alike (the session's certificates,
    service-account key and etcd, under the server's own prefix)."""
    work_dir = planes.work_dir
    return [
        str(planes.bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_client_url(planes)}",
        f"--etcd-prefix=/{server.name}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # No `kubernetes` Service endpoints: 1.37 refuses a loopback advertise address for them.
        "--endpoint-reconciler-type=none",
        f"--secure-port={server.port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={work_dir / 'apiserver.crt'}",
        f"--tls-private-key-file={work_dir / 'apiserver.key'}",
        f"--client-ca-file={work_dir / 'ca.crt'}",
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--disable-admission-plugins=ServiceAccount",
        f"--service-account-issuer=https://127.0.0.1:{server.port}/",
        f"--service-account-key-file={work_dir / 'service-accounts.key'}",
        f"--service-account-signing-key-file={work_dir / 'service-accounts.key'}",
    ]


def _controller_manager_argv(planes: ControlPlanes, kubeconfig: Path, cert_dir: Path) -> list[str]:
    return [
        str(planes.bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(planes.controllers)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        f"--cert-dir={cert_dir}",
    ]


def _start_again(process: Process) -> Process:
    """The same program with the same arguments (so the same port and etcd prefix), its log appended to."""
    handle = process.log.open("ab")
    handle.write(f"\n--- started again at {datetime.datetime.now(datetime.UTC).isoformat()} ---\n".encode())
    handle.flush()
    argv = [str(arg) for arg in process.popen.args]  # type: ignore[union-attr]
    popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle.close()
    return Process(process.name, popen, process.log)


def server_is_running(planes: ControlPlanes, name: str) -> bool:
    return any(p.popen.poll() is None for p in planes.clusters[name].processes)


def stop_server(planes: ControlPlanes, name: str) -> None:
    """Stops a cluster's controller manager and API server (SIGTERM, SIGKILL after 15 s). Its objects stay in etcd."""
    for process in reversed(planes.clusters[name].processes):
        process.stop()
    _wait_port_closed(planes.clusters[name].port)


def start_server(planes: ControlPlanes, name: str) -> None:
    """Starts a stopped cluster again on the same port with the same etcd prefix (so with all its objects) and waits
    until it is ready."""
    server = planes.clusters[name]
    if server_is_running(planes, name):
        raise RuntimeError(f"{name} is still running")
    api, *others = server.processes
    server.processes[0] = _start_again(api)
    _wait_ready(f"{server.url}/readyz", planes.ssl_context(), [planes.etcd, server.processes[0]])
    for index, process in enumerate(others, start=1):
        server.processes[index] = _start_again(process)


def _wait_port_closed(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"127.0.0.1:{port} still accepts connections {timeout:.0f} s after its server was stopped")


@contextmanager
def extra_servers(planes: ControlPlanes, work_dir: Path, names: Sequence[str]) -> Iterator[ControlPlanes]:
    """Starts one API server and controller manager per name on the session's etcd (each under its own prefix), and
    yields a view of the session with them added: the same etcd and certificates, every session cluster, and a
    kubeconfig of its own (``work_dir/kubeconfig``) with a context per cluster, the new ones included. Stops the new
    servers on exit; the session's are untouched."""
    taken = set(planes.clusters)
    clashes = taken.intersection(names)
    if clashes:
        raise ValueError(f"cluster names already in the session: {sorted(clashes)}")
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir = work_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    added = {name: ApiServer(name, free_port()) for name in names}
    view = dataclasses.replace(planes, kubeconfig=work_dir / "kubeconfig", clusters={**planes.clusters, **added})
    try:
        for server in added.values():
            argv = _apiserver_argv(planes, server, work_dir / server.name)
            server.processes.append(start_process(f"kube-apiserver-{server.name}", argv, log_dir))
        _write_kubeconfig(
            view.kubeconfig, list(view.clusters.values()), planes.ca_pem, planes.client_cert_pem, planes.client_key_pem
        )
        for server in added.values():
            _wait_ready(f"{server.url}/readyz", view.ssl_context(), [planes.etcd, *server.processes])
            kubeconfig = work_dir / f"{server.name}.kubeconfig"
            _write_kubeconfig(kubeconfig, [server], planes.ca_pem, planes.client_cert_pem, planes.client_key_pem)
            argv = _controller_manager_argv(planes, kubeconfig, work_dir / server.name / "kcm")
            server.processes.append(start_process(f"kube-controller-manager-{server.name}", argv, log_dir))
        yield view
    finally:
        for server in added.values():
            for process in reversed(server.processes):
                process.stop()
