"""The registration's shell steps, run as pulumi-command runs them, with the real kubectl against real API servers.

pulumi-command runs a step as its ``interpreter`` followed by its ``command`` (here ``/bin/sh -c <script> <name>``
and a verb), with the ``environment`` added to the provider's and ``stdin`` on standard input
(pulumi/pulumi-command ``provider/pkg/provider/local/commandOutputs.go``, ``run``); :class:`Step` does the same. The
kubectl is the one built with the servers (v1.37, ``planes.bin_dir``), found first on ``PATH`` as a user's kubectl
would be (the steps' default ``KUBECTL=kubectl``); the machine's own kubectl (1.32) is outside the servers' skew.

Each test works in namespaces of its own, made for it on the session's ``remote`` server (and on ``mgmt`` where the
management side is read or a second cluster is needed), so the tests do not interfere and run in any order. What a
test asserts about a server it asks that server:

* the secrets it holds (a GET, :meth:`ApiClient.secret_data`);
* the changes a step made: a watch on the namespace's secrets from a resourceVersion read before the step
  (:class:`SecretWatch`), so that a token created and deleted within one step still shows, as ADDED then DELETED;
  "the token was never put back" is "no ADDED or MODIFIED of it";
* the requests it served, where the retired fake server's request log was read ("one watch, not a poll", "no look
  at the certificate while waiting", "no wait at all"): a watch sees changes, not reads, so these are counts from
  the server's ``/metrics`` (``apiserver_request_total`` by verb, for secrets in a namespace) read before and after
  the step (:meth:`ApiClient.settled_counts` waits until watches still open are closed, since a watch is counted
  when it ends). :mod:`.observe` says what those counters can and cannot tell.

Times are taken from events, never from a test's start: the simulated agent writes its certificate a fixed delay
after the token appeared (the watch's ADDED event) or after the step printed a progress line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gloo_mesh_registration.args import ClusterAccess
from gloo_mesh_registration.lifecycle import (
    CHECK_KUBECTL,
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_KUBECONFIG_CONTENTS,
    ENV_KUBECTL_CHECKED_BY,
    FORGET_IDENTITY,
    PLACE_TOKEN,
    READ_RELAY_SECRETS,
    RemoteIdentity,
    b64,
    client_certificate_step,
    kubeconfig_variable,
    kubectl_check_step,
    parse_relay_secrets_report,
    relay_secrets_environment,
    relay_secrets_step,
    secret_manifest,
    token_step,
)
from lab.cluster import ControlPlanes
from lab.observe import ApiClient, RequestCounts, SecretWatch, WatchEvent

BOOTSTRAP_TOKEN = "lifecycle-e2e-bootstrap-token-5f1c9a"
TOKEN_SECRET = "relay-identity-token-secret"
CERT_SECRET = "relay-client-tls-secret"
CERT = {"tls.crt": b"cert", "tls.key": b"key", "ca.crt": b"ca"}
CONTEXT = "kind-remote-cluster"
MGMT_CONTEXT = "kind-mgmt-cluster"
UNREACHABLE = "https://127.0.0.1:9"
STEP_TIMEOUT = 240.0
"""A deadline for a step that hangs (a broken script), far above any step's time on a loaded machine."""


def identity_in(namespace: str) -> RemoteIdentity:
    return RemoteIdentity(namespace=namespace, token_secret=TOKEN_SECRET, client_cert_secret=CERT_SECRET)


def token_manifest(namespace: str) -> str:
    return secret_manifest(
        namespace, TOKEN_SECRET, {"token": b64(BOOTSTRAP_TOKEN)}, {"app.kubernetes.io/managed-by": "pulumi"}
    )


def place(namespace: str) -> list[str]:
    return token_step(identity_in(namespace)).argv(PLACE_TOKEN)


def forget(namespace: str) -> list[str]:
    return token_step(identity_in(namespace)).argv(FORGET_IDENTITY)


def ensure_certificate(namespace: str, **settings: Any) -> list[str]:
    """The certificate step's process, as pulumi-command's ``local.run`` starts it (a 1.x agent unless told)."""
    settings.setdefault("agent_deployment", "enterprise-agent")
    return client_certificate_step(identity_in(namespace), **settings).argv(ENSURE_CERTIFICATE)


def no_token_in(text: str) -> bool:
    return BOOTSTRAP_TOKEN not in text and b64(BOOTSTRAP_TOKEN) not in text


def kubeconfig_with(planes: ControlPlanes, contexts: Mapping[str, str], current: str) -> str:
    """A kubeconfig whose contexts (name -> session cluster, or :data:`UNREACHABLE`) all use the admin user."""
    admin = yaml.safe_load(planes.kubeconfig.read_text())
    servers = {c["name"]: c["cluster"] for c in admin["clusters"]}
    clusters = []
    for name, cluster in contexts.items():
        if cluster == UNREACHABLE:
            entry = {"server": UNREACHABLE, "certificate-authority-data": b64encode(planes.ca_pem).decode()}
        else:
            entry = servers[planes.clusters[cluster].context]
        clusters.append({"name": name, "cluster": entry})
    user = admin["users"][0]["name"]
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "users": admin["users"],
            "contexts": [{"name": name, "context": {"cluster": name, "user": user}} for name in contexts],
            "current-context": current,
        }
    )


# -- running a step -----------------------------------------------------------------------------------------------


def processes_in_group(pgid: int) -> list[str]:
    """The live processes of a process group (from /proc), as ``pid: command line``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"{entry.name}: {command[:200]}")
    return found


class Step:
    """A step's process, started as pulumi-command starts it, in a process group of its own so that what it leaves
    running can be found (and is stopped once the test has looked)."""

    def __init__(self, argv: list[str], env: Mapping[str, str], stdin: str) -> None:
        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env),
            start_new_session=True,
        )
        self.ended_at: float | None = None
        self.leftovers: list[str] = []
        self._lines = threading.Condition()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(stdin)
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # the step ended without reading its stdin (an early failure); its exit status tells

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._lines:
                into.append(line)
                self._lines.notify_all()
        with self._lines:
            self._lines.notify_all()

    def wait_for_line(self, text: str, timeout: float = STEP_TIMEOUT) -> None:
        """Blocks until the step printed a line holding ``text`` on stderr (fails if it ended or hung first)."""
        deadline = time.monotonic() + timeout
        with self._lines:
            while not any(text in line for line in self._stderr):
                if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"the step ended without printing {text!r}:\n{''.join(self._stderr)}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the step printed no {text!r} within {timeout:.0f} s")
                self._lines.wait(0.5)

    def kill(self) -> None:
        """SIGKILL to the step's shell alone: pulumi-command's cancel (``exec.CommandContext``)."""
        self.process.kill()

    def finish(self, timeout: float = STEP_TIMEOUT, *, stop_leftovers: bool = True) -> subprocess.CompletedProcess[str]:
        """Waits for the step's exit; records what of its process group still runs (:attr:`leftovers`)."""
        returncode = self.process.wait(timeout=timeout)
        self.ended_at = time.monotonic()
        self.leftovers = processes_in_group(self.process.pid)
        if stop_leftovers:
            self.stop_leftovers()
        for reader in self._readers:
            reader.join(timeout=30)
        with self._lines:
            return subprocess.CompletedProcess(self.argv, returncode, "".join(self._stdout), "".join(self._stderr))

    def stop_leftovers(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Steps:
    """Starts steps with a test's environment: the built kubectl first on PATH, a HOME of the test's own."""

    def __init__(self, kubectl_dir: Path, home: Path) -> None:
        self.kubectl_dir = kubectl_dir
        self.home = home
        self._started: list[Step] = []

    def environment(
        self, *, kubeconfig: Path | str | None, context: str | None, env: Mapping[str, str] | None
    ) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBECTL")}
        environment["HOME"] = str(self.home)
        environment["PATH"] = f"{self.kubectl_dir}{os.pathsep}{environment.get('PATH', '')}"
        if kubeconfig is not None:  # path or contents: the program tells the step which
            environment[kubeconfig_variable(str(kubeconfig))] = str(kubeconfig)
        if context is not None:
            environment[ENV_CONTEXT] = context
        environment.update(env or {})
        return environment

    def start(
        self,
        argv: list[str],
        *,
        kubeconfig: Path | str | None,
        context: str | None = CONTEXT,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
    ) -> Step:
        step = Step(argv, self.environment(kubeconfig=kubeconfig, context=context, env=env), stdin)
        self._started.append(step)
        return step

    def run(
        self,
        argv: list[str],
        *,
        kubeconfig: Path | str | None,
        context: str | None = CONTEXT,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.start(argv, kubeconfig=kubeconfig, context=context, stdin=stdin, env=env).finish()

    def close(self) -> None:
        for step in self._started:
            if step.process.poll() is None:
                step.process.kill()
                step.process.wait(timeout=30)
            step.stop_leftovers()


class Agent(threading.Thread):
    """What the agent does at its relay handshake: ``delay`` seconds after ``trigger`` returns (the token appeared,
    or the step printed a line), it writes its client certificate. ``before_write`` runs just before the write."""

    def __init__(
        self,
        client: ApiClient,
        namespace: str,
        trigger: Callable[[], object],
        delay: float,
        before_write: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"agent-{namespace}")
        self.client = client
        self.namespace = namespace
        self.trigger = trigger
        self.delay = delay
        self.before_write = before_write
        self.written_at: float | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.trigger()
            time.sleep(self.delay)
            if self.before_write is not None:
                self.before_write()
            self.client.create_secret(self.namespace, CERT_SECRET, CERT, secret_type="kubernetes.io/tls")
            self.written_at = time.monotonic()
        except BaseException as error:  # reported by written()
            self.error = error

    def written(self) -> float:
        """When the certificate was written (after the thread ended); re-raises what stopped the agent."""
        self.join(timeout=STEP_TIMEOUT)
        if self.error is not None:
            raise self.error
        assert self.written_at is not None, "the agent never wrote its certificate"
        return self.written_at


def token_appears(watch: SecretWatch, *, after: int = 0) -> Callable[[], WatchEvent]:
    return lambda: watch.wait_for(TOKEN_SECRET, ("ADDED",), after=after)


def token_events(watch: SecretWatch, *, after: int = 0) -> list[str]:
    return [event.type for event in watch.events(TOKEN_SECRET, after=after)]


def changes_so_far(client: ApiClient, watch: SecretWatch, *, after: int = 0) -> list[tuple[str, str]]:
    """Every change to the namespace's secrets since ``after``, up to now: a marker secret is created and waited
    for, and a watch delivers changes in order, so everything before the marker has arrived too."""
    marker = f"marker-{secrets.token_hex(4)}"
    client.create_secret(watch.namespace, marker, {"m": b"1"})
    watch.wait_for(marker, after=after)
    return [(event.type, event.name) for event in watch.events(after=after) if event.name != marker]


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubectl_dir(planes: ControlPlanes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only the kubectl built with the servers, put first on the steps' PATH."""
    folder = tmp_path_factory.mktemp("kubectl-on-path")
    (folder / "kubectl").symlink_to(planes.bin_dir / "kubectl")
    return folder


@pytest.fixture(scope="module")
def remote(planes: ControlPlanes) -> ApiClient:
    return ApiClient(planes, "remote")


@pytest.fixture(scope="module")
def mgmt(planes: ControlPlanes) -> ApiClient:
    return ApiClient(planes, "mgmt")


@pytest.fixture
def new_namespace(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Makes a namespace of the test's own (the same name on each server given). Never deleted: the servers end
    with the session, and a namespace deletion would make the controller manager list secrets under the next test's
    request counts."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).removeprefix("test-")[:40].strip("-")

    def create(*servers: ApiClient) -> str:
        name = f"lk-{slug}-{secrets.token_hex(3)}"
        for server in servers:
            server.create_namespace(name)
        return name

    return create


@pytest.fixture
def ns(remote: ApiClient, new_namespace: Callable[..., str]) -> str:
    """The agent namespace on the remote cluster (the namespace step runs before the token step)."""
    return new_namespace(remote)


@pytest.fixture
def kubeconfig(planes: ControlPlanes, tmp_path: Path) -> Path:
    """A kubeconfig file for the remote cluster, its context named as kind would name it."""
    path = tmp_path / "kubeconfig"
    path.write_text(planes.kubeconfig_text("remote", CONTEXT))
    path.chmod(0o600)
    return path


@pytest.fixture
def steps(kubectl_dir: Path, tmp_path: Path) -> Iterator[Steps]:
    home = tmp_path / "home"
    home.mkdir()
    runner = Steps(kubectl_dir, home)
    yield runner
    runner.close()


# -- the kubectl the steps run ------------------------------------------------------------------------------------


def test_the_steps_run_the_kubectl_built_with_the_servers(steps: Steps, remote: ApiClient) -> None:
    """The steps find kubectl on PATH (their default ``KUBECTL=kubectl``): here the one built with the servers."""
    environment = steps.environment(kubeconfig=None, context=None, env=None)
    client = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"], env=environment, capture_output=True, text=True, check=True
    )
    status, server = remote.request("GET", "/version")
    assert status == 200
    assert json.loads(client.stdout)["clientVersion"]["gitVersion"] == server["gitVersion"]


# -- bootstrap token placement ------------------------------------------------------------------------------------


def test_place_token_creates_it_and_removes_a_stale_client_certificate(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    remote.create_secret(ns, CERT_SECRET, CERT)
    with SecretWatch(remote, ns) as watch:
        result = steps.run(place(ns), kubeconfig=kubeconfig, stdin=token_manifest(ns))
        assert result.returncode == 0, result.stderr
        watch.wait_for(TOKEN_SECRET, ("ADDED",))
        changes = [(event.type, event.name) for event in watch.events()]
    # The stale certificate goes before the token is there for a new agent.
    assert changes == [("DELETED", CERT_SECRET), ("ADDED", TOKEN_SECRET)]
    assert remote.secret_data(ns, TOKEN_SECRET) == {"token": b64(BOOTSTRAP_TOKEN)}
    assert remote.secret_data(ns, CERT_SECRET) is None
    assert no_token_in(result.stdout + result.stderr)


def test_place_token_is_idempotent(steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path) -> None:
    for _ in range(2):
        result = steps.run(place(ns), kubeconfig=kubeconfig, stdin=token_manifest(ns))
        assert result.returncode == 0, result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_place_token_failure_does_not_echo_the_token(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, tmp_path: Path
) -> None:
    # An unreachable server: kubectl's own reason, from a command that carries no secret.
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(kubeconfig_with(planes, {CONTEXT: UNREACHABLE}, CONTEXT))
    ns = f"lk-never-created-{secrets.token_hex(3)}"
    result = steps.run(place(ns), kubeconfig=unreachable, stdin=token_manifest(ns))
    assert result.returncode != 0
    assert "127.0.0.1:9 was refused" in result.stderr
    assert no_token_in(result.stdout + result.stderr)
    # A real server that refuses the token (its namespace does not exist): the step's own message, not kubectl's.
    reachable = tmp_path / "reachable"
    reachable.write_text(planes.kubeconfig_text("remote", CONTEXT))
    refused = steps.run(place(ns), kubeconfig=reachable, stdin=token_manifest(ns))
    assert refused.returncode == 1
    assert f"could not put the bootstrap token in place in namespace {ns}" in refused.stderr
    assert no_token_in(refused.stdout + refused.stderr)
    assert remote.secret_data(ns, TOKEN_SECRET) is None


# -- wait for the client certificate, token removal ---------------------------------------------------------------


def test_wait_succeeds_when_the_certificate_appears_and_removes_the_token(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    script = ensure_certificate(
        ns, cluster_name="remote-cluster", timeout_seconds=60, remove_token=True, chunk_seconds=1
    )
    with SecretWatch(remote, ns) as watch:
        step = steps.start(script, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        # The agent answers after the step printed its first progress line (a chunk went by without a certificate).
        agent = Agent(remote, ns, lambda: step.wait_for_line("waiting for the agent's client certificate ("), 0.5)
        result = step.finish()
        agent.written()
        watch.wait_for(TOKEN_SECRET, ("DELETED",))
        assert token_events(watch) == ["ADDED", "DELETED"]
    assert result.returncode == 0, result.stderr
    assert "cluster remote-cluster: the agent holds its client certificate (after " in result.stderr
    assert "of 60s)" in result.stderr
    assert "bootstrap token removed" in result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is None, "the bootstrap token was left behind"
    assert remote.secret_data(ns, CERT_SECRET) is not None


def test_wait_times_out_with_the_promised_message_and_leaves_no_token(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    script = ensure_certificate(
        ns, cluster_name="remote-cluster", timeout_seconds=2, remove_token=True, chunk_seconds=1
    )
    with SecretWatch(remote, ns) as watch:
        result = steps.run(
            script,
            kubeconfig=kubeconfig,
            stdin=token_manifest(ns),
            env={"GM_RELAY_ADDRESS": "172.18.0.2:32443", "GM_RELAY_AUTHORITY": "enterprise-networking.gloo-mesh"},
        )
        watch.wait_for(TOKEN_SECRET, ("DELETED",))
        # In place while the agent could have used it, gone with the step.
        assert token_events(watch) == ["ADDED", "DELETED"]
    assert result.returncode == 1
    message = result.stderr
    assert (
        f"error: cluster remote-cluster: the agent got no client certificate (relay-client-tls-secret in namespace {ns}) within 2s"
        in message
    )
    assert "relay server address: 172.18.0.2:32443, authority: enterprise-networking.gloo-mesh" in message
    assert "Usual causes:" in message and "sidecar" in message
    assert f"Check: kubectl logs deploy/enterprise-agent -n {ns} on the remote cluster." in message
    assert remote.secret_data(ns, TOKEN_SECRET) is None, "a timed-out registration left the token behind"
    assert no_token_in(result.stdout + message)


def test_retry_after_a_timeout_puts_the_token_back_first(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    # The first run has no agent and gives up after 1 s; the retry (the user's next `pulumi up`, here with a longer
    # timeout so that a loaded machine's slow kubectl start-ups cannot time it out too) meets an agent that answers.
    script = ensure_certificate(
        ns, cluster_name="remote-cluster", timeout_seconds=1, remove_token=True, chunk_seconds=1
    )
    retry_script = ensure_certificate(
        ns, cluster_name="remote-cluster", timeout_seconds=60, remove_token=True, chunk_seconds=1
    )
    with SecretWatch(remote, ns) as watch:
        assert steps.run(script, kubeconfig=kubeconfig, stdin=token_manifest(ns)).returncode == 1
        watch.wait_for(TOKEN_SECRET, ("DELETED",))
        assert remote.secret_data(ns, TOKEN_SECRET) is None
        retry = watch.mark()
        agent = Agent(remote, ns, token_appears(watch, after=retry), 1.0)
        result = steps.run(retry_script, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        agent.written()
        watch.wait_for(TOKEN_SECRET, ("DELETED",), after=retry)
        changes = [(event.type, event.name) for event in watch.events(after=retry)]
        added = watch.wait_for(TOKEN_SECRET, ("ADDED",), after=retry)
    assert result.returncode == 0, result.stderr
    # While the retry waited, the token was in place for the agent; it went once the certificate was there.
    assert changes == [("ADDED", TOKEN_SECRET), ("ADDED", CERT_SECRET), ("DELETED", TOKEN_SECRET)]
    assert dict(added.data) == {"token": b64(BOOTSTRAP_TOKEN)}
    assert remote.secret_data(ns, TOKEN_SECRET) is None


def test_a_registered_cluster_is_left_alone_and_a_leftover_token_is_removed(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    """The step runs on every pulumi up: with the certificate in place it neither puts a (rotated) token back nor
    waits; a token left behind by an interrupted run goes.

    "Never put back" is the watch: a token applied and removed again within the step would show as ADDED or
    MODIFIED. "No wait" is the server's request counts: no watch on the namespace's secrets was started."""
    remote.create_secret(ns, CERT_SECRET, CERT)
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"left-behind"})
    step = ensure_certificate(ns, cluster_name="remote-cluster", timeout_seconds=30, remove_token=True)
    with SecretWatch(remote, ns) as watch:
        before = remote.settled_counts(own_watches=1)
        result = steps.run(step, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        after = remote.settled_counts(own_watches=1)
        watch.wait_for(TOKEN_SECRET, ("DELETED",))
        assert result.returncode == 0, result.stderr
        assert "removed a bootstrap token left behind" in result.stderr
        assert changes_so_far(remote, watch) == [("DELETED", TOKEN_SECRET)], "the token was put back"
        requests = after.since(before)
        assert requests.watches_started("secrets") == 0, f"the step waited: {requests.summary('secrets')}"
        assert requests.requests("secrets", "APPLY", "PATCH", "POST", "PUT") == 0, requests.summary("secrets")
        mark = watch.mark()
        again = steps.run(step, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        assert again.returncode == 0 and "left behind" not in again.stderr
        assert remote.secret_data(ns, CERT_SECRET) is not None
        assert changes_so_far(remote, watch, after=mark) == [], "a second run changed a registered cluster's secrets"
    assert remote.secret_data(ns, TOKEN_SECRET) is None


@pytest.mark.parametrize("access", ["kubeconfig file", "kubeconfig contents"])
def test_a_killed_wait_still_removes_the_token(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, kubeconfig: Path, tmp_path: Path, access: str
) -> None:
    """pulumi-command cancels a step with SIGKILL (exec.CommandContext), which skips the EXIT trap: the guard the step
    started in its own session removes the token once the step is gone (issue 9, defect 4); with kubeconfig
    contents, it also removes the private folder the contents were written to."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    recorded: Path | str = kubeconfig if access == "kubeconfig file" else planes.kubeconfig_text("remote", CONTEXT)
    script = ensure_certificate(ns, cluster_name="remote-cluster", timeout_seconds=120, remove_token=True)
    with SecretWatch(remote, ns) as watch:
        step = steps.start(script, kubeconfig=recorded, stdin=token_manifest(ns), env={"TMPDIR": str(scratch)})
        token_appears(watch)()
        step.kill()
        step.finish()
        watch.wait_for(TOKEN_SECRET, ("DELETED",), timeout=60)
        assert token_events(watch) == ["ADDED", "DELETED"]
    assert remote.secret_data(ns, TOKEN_SECRET) is None, "the token outlived a killed wait"
    # The guard removes the private folder after the token (a step killed by SIGKILL cannot).
    deadline = time.monotonic() + 60
    while list(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(scratch.iterdir()) == [], "the killed step's private folder (kubeconfig contents) was left on disk"


def test_forget_identity_falls_back_to_the_ambient_kubeconfig_when_the_recorded_file_is_gone(
    steps: Steps,
    remote: ApiClient,
    mgmt: ApiClient,
    planes: ControlPlanes,
    new_namespace: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The ambient kubeconfig is the session's admin one (current context: mgmt); the recorded context still picks
    the remote cluster, so the token of the same name on mgmt stays."""
    ns = new_namespace(remote, mgmt)
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    mgmt.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    gone = tmp_path / "runner-1" / "kubeconfig"
    ambient = {"KUBECONFIG": str(planes.kubeconfig)}
    remote_context = planes.clusters["remote"].context
    result = steps.run(forget(ns), kubeconfig=str(gone), context=remote_context, env=ambient)
    assert result.returncode == 0, result.stderr
    assert f"the kubeconfig file {gone} recorded at registration is gone" in result.stderr
    assert f"using the ambient kubeconfig with context {remote_context}" in result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is None
    assert mgmt.secret_data(ns, TOKEN_SECRET) is not None, "the ambient kubeconfig's current context was used"
    # Only the token step falls back; elsewhere a kubeconfig file that is gone is an error, and nothing is placed.
    script = ensure_certificate(ns, cluster_name="c", timeout_seconds=5, remove_token=True)
    with SecretWatch(remote, ns) as watch:
        failed = steps.run(script, kubeconfig=str(gone), context=remote_context, stdin=token_manifest(ns), env=ambient)
        assert failed.returncode != 0 and f"the kubeconfig file {gone} does not exist" in failed.stderr
        assert changes_so_far(remote, watch) == []


def test_a_failing_step_names_its_verb_not_its_script(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    """pulumi-command reports a failure as ``running "<command>"`` before the output: the command is the verb."""
    argv = place(ns)
    assert argv[-1] == PLACE_TOKEN and len(PLACE_TOKEN) < 30
    result = steps.run([*argv[:-1], "no-such-step"], kubeconfig=kubeconfig, stdin=token_manifest(ns))
    assert result.returncode == 2 and "unknown step 'no-such-step'" in result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is None


def test_token_is_kept_when_removal_is_disabled(steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path) -> None:
    script = ensure_certificate(ns, cluster_name="c", timeout_seconds=60, remove_token=False)
    with SecretWatch(remote, ns) as watch:
        agent = Agent(remote, ns, token_appears(watch), 0.5)
        assert steps.run(script, kubeconfig=kubeconfig, stdin=token_manifest(ns)).returncode == 0
        agent.written()
        assert remote.secret_data(ns, TOKEN_SECRET) == {"token": b64(BOOTSTRAP_TOKEN)}
        # And a later run leaves it there too, untouched.
        mark = watch.mark()
        assert steps.run(script, kubeconfig=kubeconfig, stdin=token_manifest(ns)).returncode == 0
        assert changes_so_far(remote, watch, after=mark) == []
    assert remote.secret_data(ns, TOKEN_SECRET) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_wait_reacts_to_the_certificate_with_one_watch_and_no_polling(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    """The wait is one watch, not a poll, and it ends when the certificate appears, not when its chunk does.

    Counted by the server (``apiserver_request_total``, namespaced secrets) from before the step to after it (all
    its watches closed): one watch started. From before the step to just before the agent writes (2 s after the
    token appeared): two GETs, the one kubectl run that looks for the certificate and the token before the token
    goes in, and no watch ended (no re-watching). The metrics are used because a watch on the secrets, which sees changes, cannot see reads.

    Reacting, not noticing late: the watch's chunk is 90 s here, so a step that only looked again at the end of its
    chunk would exit about 88 s after the certificate appeared; this one must exit well before (30 s: the margin is a
    loaded machine's kubectl start-ups, not a latency target). ``benchmarks/wait_latency.py`` measures the latency."""
    script = ensure_certificate(ns, cluster_name="c", timeout_seconds=180, remove_token=True, chunk_seconds=90)
    with SecretWatch(remote, ns) as watch:
        before = remote.settled_counts(own_watches=1)
        during: list[RequestCounts] = []
        step = steps.start(script, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        agent = Agent(remote, ns, token_appears(watch), 2.0, before_write=lambda: during.append(remote.counts()))
        result = step.finish()
        written = agent.written()
        after = remote.settled_counts(own_watches=1)
    assert result.returncode == 0, result.stderr
    assert step.ended_at is not None
    assert step.ended_at - written < 30, f"the step ended {step.ended_at - written:.1f} s after the certificate"
    whole = after.since(before)
    assert whole.watches_started("secrets") == 1, f"one watch, not a poll: {whole.summary('secrets')}"
    waiting = during[0].since(before)
    assert waiting.requests("secrets", "GET", "LIST") == 2, (
        f"the wait polled the certificate instead of watching it: {waiting.summary('secrets')}"
    )
    assert waiting.requests("secrets", "WATCH") == 0, f"the wait re-watched: {waiting.summary('secrets')}"


def test_a_finished_wait_leaves_no_watch_behind(steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path) -> None:
    """When the certificate appears, the step stops its watch: nothing of the step runs after it ended and the
    server has no watch of it open. The chunk is 60 s here, so a watch left running would stay open that long."""
    script = ensure_certificate(ns, cluster_name="c", timeout_seconds=120, remove_token=True, chunk_seconds=60)
    with SecretWatch(remote, ns) as watch:
        remote.settled_counts(own_watches=1)
        step = steps.start(script, kubeconfig=kubeconfig, stdin=token_manifest(ns))
        agent = Agent(remote, ns, token_appears(watch), 0.5)
        result = step.finish(stop_leftovers=False)
        agent.written()
        open_watches = remote.counts().open_watches("secrets") - 1
        leftovers = step.leftovers
        try:
            assert result.returncode == 0, result.stderr
            assert leftovers == [], (
                f"still running after the step ended: {leftovers}; the server had {open_watches} watch(es) on the "
                "namespace's secrets open besides the test's own"
            )
            remote.settled_counts(own_watches=1, timeout=10)
        finally:
            step.stop_leftovers()


# -- destroy clean-up ---------------------------------------------------------------------------------------------


def test_forget_identity_removes_token_and_certificate_and_tolerates_what_is_gone(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path
) -> None:
    remote.create_secret(ns, CERT_SECRET, CERT)
    remote.create_secret(ns, TOKEN_SECRET, {"token": BOOTSTRAP_TOKEN.encode()})
    with SecretWatch(remote, ns) as watch:
        for attempt in range(2):
            result = steps.run(forget(ns), kubeconfig=kubeconfig)
            assert result.returncode == 0, f"attempt {attempt}: {result.stderr}"
        assert "removed the bootstrap token and the agent's client certificate" in result.stderr
        watch.wait_for(TOKEN_SECRET, ("DELETED",))
        watch.wait_for(CERT_SECRET, ("DELETED",))
    assert remote.secret_data(ns, CERT_SECRET) is None and remote.secret_data(ns, TOKEN_SECRET) is None


def test_forget_identity_tolerates_a_deleted_namespace(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, kubeconfig: Path
) -> None:
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    planes.kubectl("remote", "delete", "namespace", ns)  # waits until the namespace and its secrets are gone
    status, _ = remote.request("GET", f"/api/v1/namespaces/{ns}")
    assert status == 404
    result = steps.run(forget(ns), kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr


# -- management relay secrets read --------------------------------------------------------------------------------


RELAY_SECRETS = {"relay-root-tls-secret": "ca.crt", "relay-identity-token-secret": "token"}
READ = relay_secrets_step().argv(READ_RELAY_SECRETS)


def test_relay_secrets_read_prints_the_wanted_values_and_only_lengths_of_the_rest(
    steps: Steps, mgmt: ApiClient, planes: ControlPlanes, new_namespace: Callable[..., str], tmp_path: Path
) -> None:
    ns = new_namespace(mgmt)
    kubeconfig = tmp_path / "mgmt"
    kubeconfig.write_text(planes.kubeconfig_text("mgmt", MGMT_CONTEXT))
    mgmt.create_secret(ns, "relay-root-tls-secret", {"ca.crt": b"CA", "tls.key": b"PRIVATE-KEY-MATERIAL"})
    with SecretWatch(mgmt, ns) as watch:
        result = steps.run(
            READ, kubeconfig=kubeconfig, context=MGMT_CONTEXT, env=relay_secrets_environment(ns, RELAY_SECRETS)
        )
        assert changes_so_far(mgmt, watch) == [], "the read changed a secret"
    assert result.returncode == 0, result.stderr
    report = parse_relay_secrets_report(result.stdout)
    assert report.keys == {
        "relay-root-tls-secret": {"ca.crt": len(b64("CA")), "tls.key": len(b64("PRIVATE-KEY-MATERIAL"))},
        "relay-identity-token-secret": None,
    }
    assert report.values == {"relay-root-tls-secret": b64("CA")}
    assert "PRIVATE-KEY-MATERIAL" not in result.stdout and b64("PRIVATE-KEY-MATERIAL") not in result.stdout


def test_relay_secrets_read_honours_the_namespace_and_the_context_and_reports_an_absent_key(
    steps: Steps,
    mgmt: ApiClient,
    remote: ApiClient,
    planes: ControlPlanes,
    new_namespace: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The wanted secret, in the wanted namespace of the management cluster, lacks the key; secrets of the same name
    hold it in another namespace and, in a namespace of the same name, on the cluster of the kubeconfig's current
    context. Only the first is read."""
    wanted = new_namespace(mgmt, remote)
    other = new_namespace(mgmt)
    mgmt.create_secret(wanted, "relay-identity-token-secret", {"other": b"x"})
    mgmt.create_secret(other, "relay-identity-token-secret", {"token": b"in-the-wrong-namespace"})
    remote.create_secret(wanted, "relay-identity-token-secret", {"token": b"on-the-wrong-cluster"})
    kubeconfig = tmp_path / "two-clusters"
    kubeconfig.write_text(kubeconfig_with(planes, {CONTEXT: "remote", MGMT_CONTEXT: "mgmt"}, CONTEXT))
    result = steps.run(
        READ,
        kubeconfig=kubeconfig,
        context=MGMT_CONTEXT,
        env=relay_secrets_environment(wanted, {"relay-identity-token-secret": "token"}),
    )
    assert result.returncode == 0, result.stderr
    report = parse_relay_secrets_report(result.stdout)
    assert report.keys == {"relay-identity-token-secret": {"other": len(b64("x"))}}
    assert report.values == {}


def test_relay_secrets_read_fails_when_the_cluster_is_unreachable(
    steps: Steps, planes: ControlPlanes, tmp_path: Path
) -> None:
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(kubeconfig_with(planes, {MGMT_CONTEXT: UNREACHABLE}, MGMT_CONTEXT))
    result = steps.run(
        READ,
        kubeconfig=unreachable,
        context=MGMT_CONTEXT,
        env=relay_secrets_environment("gloo-mesh", {"relay-root-tls-secret": "ca.crt"}),
    )
    assert result.returncode != 0 and "MISSING" not in result.stdout
    # kubectl's reason, its own summary line (not the client-go log lines that precede it).
    assert "The connection to the server 127.0.0.1:9 was refused" in result.stderr
    assert not any(line.startswith(("E1", "W1", "I1")) for line in result.stderr.splitlines())


# -- cluster access and the kubectl prerequisite ------------------------------------------------------------------


def in_a_run(argv: list[str], linger_seconds: float = 0) -> list[str]:
    """``argv`` under a parent that stands for pulumi-command's provider: it lives on ``linger_seconds`` after the
    step, then ends as the provider does at the end of a run (``; exit`` keeps the shell from exec-ing the step)."""
    return ["/bin/sh", "-c", f'"$@"; _s=$?; sleep {linger_seconds}; exit $_s', "provider", *argv]


def test_kubeconfig_contents_in_the_environment_reach_the_cluster_and_leave_no_file(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, tmp_path: Path
) -> None:
    """The token step writes kubeconfig contents to a private folder, and its guard keeps a copy for the run; once
    the run is over, no kubeconfig is left on disk (and, without a certificate, no token either)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    contents = planes.kubeconfig_text("remote", CONTEXT)
    with SecretWatch(remote, ns) as watch:
        result = steps.run(
            in_a_run(place(ns)), kubeconfig=contents, stdin=token_manifest(ns), env={"TMPDIR": str(scratch)}
        )
        assert result.returncode == 0, result.stderr
        watch.wait_for(TOKEN_SECRET, ("DELETED",), timeout=60)
    assert token_events(watch) == ["ADDED", "DELETED"]
    deadline = time.monotonic() + 60
    while list(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(scratch.iterdir()) == [], "the temporary kubeconfig was left on disk"


RECORDED_KUBECONFIG = "GM_KUBECONFIG"
"""The one variable of token steps recorded before the program told the steps path or contents (either)."""


@pytest.mark.parametrize("handed", ["told", "recorded-before"])
@pytest.mark.parametrize(
    ("lead", "readable"), [("  ", True), (" \r", True), ("\t", False)], ids=["spaces", "cr", "tab"]
)
def test_one_line_kubeconfig_contents_after_blanks_are_contents_as_the_program_reads_them(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, lead: str, readable: bool, handed: str
) -> None:
    """Path or contents: the program's rule (``ClusterAccess``, args.py) reads a kubeconfig given as one line of JSON
    after leading blanks as contents, and hands it to the steps as a secret, in the variable for contents. Before, the
    steps decided again and took it for a file path, failed with "the kubeconfig file <the kubeconfig itself> does not
    exist", and that error text (not a secret to the engine) printed the client key in the run's output. A token step
    recorded before that (``recorded-before``: its one variable, kept in the state) reads it with the same rule."""
    contents = lead + json.dumps(yaml.safe_load(planes.kubeconfig_text("remote", CONTEXT)))
    access = ClusterAccess("remote", None, contents, None)
    assert access.describe() == "the given kubeconfig contents"  # the program's reading
    assert kubeconfig_variable(contents) == ENV_KUBECONFIG_CONTENTS  # and what it tells the step
    if handed == "told":
        result = steps.run(forget(ns), kubeconfig=contents)
    else:
        result = steps.run(forget(ns), kubeconfig=None, env={RECORDED_KUBECONFIG: contents})
    # kubectl itself reads no YAML that starts with a tab ("found character that cannot start any token"): an error,
    # but one that names no kubeconfig contents.
    assert (result.returncode == 0) == readable, result.stderr
    assert "does not exist" not in result.stderr
    key = json.loads(contents)["users"][0]["user"]["client-key-data"]
    assert key not in result.stdout + result.stderr


def test_a_token_step_recorded_before_reaches_its_cluster_by_the_recorded_path_or_falls_back(
    steps: Steps,
    remote: ApiClient,
    mgmt: ApiClient,
    planes: ControlPlanes,
    new_namespace: Callable[..., str],
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """A stack registered before the program told the steps path or contents keeps its token step's environment
    (the Command ignores changes of it): its destroy, now with this script, still reads the recorded path, and still
    falls back to the ambient kubeconfig when that file is gone, naming the path."""
    ns = new_namespace(remote, mgmt)
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    recorded = steps.run(forget(ns), kubeconfig=None, env={RECORDED_KUBECONFIG: str(kubeconfig)})
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded at registration is gone" not in recorded.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is None
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    gone = tmp_path / "runner-1" / "kubeconfig"
    remote_context = planes.clusters["remote"].context
    env = {RECORDED_KUBECONFIG: str(gone), "KUBECONFIG": str(planes.kubeconfig)}
    fell_back = steps.run(forget(ns), kubeconfig=None, context=remote_context, env=env)
    assert fell_back.returncode == 0, fell_back.stderr
    assert f"the kubeconfig file {gone} recorded at registration is gone" in fell_back.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is None


def test_the_token_step_leaves_the_token_to_a_registered_agent_and_removes_it_from_an_unregistered_one(
    steps: Steps, remote: ApiClient, new_namespace: Callable[..., str], kubeconfig: Path
) -> None:
    """The guard of the token step watches the provider (the whole run): a run that ends before the agent holds its
    certificate (a Ctrl-C during the release, say) takes the token with it; a run whose agent registered leaves the
    token's fate to the certificate step (removed, or kept for 2.x)."""
    unregistered = new_namespace(remote)
    with SecretWatch(remote, unregistered) as watch:
        steps.run(
            in_a_run(place(unregistered), linger_seconds=2), kubeconfig=kubeconfig, stdin=token_manifest(unregistered)
        )
        watch.wait_for(TOKEN_SECRET, ("DELETED",), timeout=60)
    assert token_events(watch) == ["ADDED", "DELETED"]
    registered = new_namespace(remote)
    run = steps.start(
        in_a_run(place(registered), linger_seconds=5), kubeconfig=kubeconfig, stdin=token_manifest(registered)
    )
    with SecretWatch(remote, registered) as watch:
        token_appears(watch)()
        remote.create_secret(registered, CERT_SECRET, CERT)  # the agent, during the run
        assert run.finish().returncode == 0
        time.sleep(3)  # more than the guard's poll: it has looked by now
    assert remote.secret_data(registered, TOKEN_SECRET) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_context_selects_the_cluster(
    steps: Steps,
    remote: ApiClient,
    mgmt: ApiClient,
    planes: ControlPlanes,
    new_namespace: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The kubeconfig's current context is another real cluster (with the namespace too): the step's context wins;
    without one, kubectl's current context is used."""
    ns = new_namespace(remote, mgmt)
    path = tmp_path / "two-contexts"
    path.write_text(kubeconfig_with(planes, {"elsewhere": "mgmt", CONTEXT: "remote"}, "elsewhere"))
    ok = steps.run(place(ns), kubeconfig=path, context=CONTEXT, stdin=token_manifest(ns))
    assert ok.returncode == 0, ok.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is not None
    assert mgmt.secret_data(ns, TOKEN_SECRET) is None
    current = steps.run(place(ns), kubeconfig=path, context=None, stdin=token_manifest(ns))
    assert current.returncode == 0, current.stderr
    assert mgmt.secret_data(ns, TOKEN_SECRET) is not None


def _fake_kubectl(tmp_path: Path, version: str) -> Path:
    fake = tmp_path / "old-kubectl"
    fake.write_text(f'#!/bin/sh\necho \'{{"clientVersion": {{"gitVersion": "{version}"}}}}\'\n')
    fake.chmod(0o755)
    return fake


def test_old_kubectl_is_a_clear_error(
    steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path, tmp_path: Path
) -> None:
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    result = steps.run(forget(ns), kubeconfig=kubeconfig, env={"KUBECTL": str(_fake_kubectl(tmp_path, "v1.28.3"))})
    assert result.returncode == 127
    assert "kubectl 1.31 or newer is required (found: 1 28)" in result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is not None


def test_missing_kubectl_is_a_clear_error(steps: Steps, remote: ApiClient, ns: str, kubeconfig: Path) -> None:
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    result = steps.run(forget(ns), kubeconfig=kubeconfig, env={"KUBECTL": "/nonexistent/kubectl"})
    assert result.returncode == 127
    assert "kubectl is not on PATH" in result.stderr
    assert remote.secret_data(ns, TOKEN_SECRET) is not None


def recording_kubectl(planes: ControlPlanes, folder: Path) -> tuple[Path, Path]:
    """A kubectl that writes each argument list it is run with to a log, then runs the real one: (it, its log)."""
    log = folder / "argv.log"
    log.touch()
    wrapper = folder / "kubectl"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {planes.bin_dir / "kubectl"} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def kubectl_runs(log: Path) -> list[str]:
    return log.read_text().splitlines()


def test_the_run_checks_kubectl_once_and_its_steps_skip_the_check(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, kubeconfig: Path, tmp_path: Path
) -> None:
    """The check step prints the PID of the process that started it (pulumi-command's provider; here this test's
    process); a step started by that process with that PID in GM_KUBECTL_CHECKED_BY runs no ``kubectl version``, a
    step told another PID (a later run's, or a destroy's) checks again, and a too-old kubectl still fails it."""
    wrapper, log = recording_kubectl(planes, tmp_path)
    check = kubectl_check_step().argv(CHECK_KUBECTL)
    checked = steps.run(check, kubeconfig=None, context=None, env={"KUBECTL": str(wrapper)})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"CHECKED {os.getpid()}\n"
    assert kubectl_runs(log) == ["version --client -o json"]
    remote.create_secret(ns, TOKEN_SECRET, {"token": b"t"})
    same_run = {"KUBECTL": str(wrapper), ENV_KUBECTL_CHECKED_BY: str(os.getpid())}
    assert steps.run(forget(ns), kubeconfig=kubeconfig, env=same_run).returncode == 0
    assert [run for run in kubectl_runs(log)[1:] if "version" in run] == []
    other_run = {"KUBECTL": str(wrapper), ENV_KUBECTL_CHECKED_BY: str(os.getpid() + 1)}
    assert steps.run(forget(ns), kubeconfig=kubeconfig, env=other_run).returncode == 0
    assert [run for run in kubectl_runs(log)[1:] if "version" in run] == ["version --client -o json"]
    old = {"KUBECTL": str(_fake_kubectl(tmp_path, "v1.28.3"))}
    refused = steps.run(check, kubeconfig=None, context=None, env=old)
    assert refused.returncode == 0, refused.stderr  # a failed plain invoke would end the program with a traceback
    assert refused.stdout == "PROBLEM error: kubectl 1.31 or newer is required (found: 1 28); install a newer kubectl\n"
    missing = steps.run(check, kubeconfig=None, context=None, env={"KUBECTL": "/nonexistent/kubectl"})
    assert missing.returncode == 0 and missing.stdout.startswith("PROBLEM error: kubectl is not on PATH")
    told_another = steps.run(forget(ns), kubeconfig=kubeconfig, env={**old, ENV_KUBECTL_CHECKED_BY: "1"})
    assert told_another.returncode == 127 and "kubectl 1.31 or newer is required" in told_another.stderr


@pytest.mark.parametrize("leftover_token", [False, True], ids=["no token", "a token left behind"])
def test_a_registered_cluster_costs_one_kubectl_run_and_one_more_for_a_leftover_token(
    steps: Steps,
    remote: ApiClient,
    planes: ControlPlanes,
    ns: str,
    kubeconfig: Path,
    tmp_path: Path,
    leftover_token: bool,
) -> None:
    """Every ``pulumi up`` runs the certificate step; on a registered cluster it asks for both secrets in one
    kubectl run (each run costs about 60 ms of CPU), and deletes the token only when one is there."""
    wrapper, log = recording_kubectl(planes, tmp_path)
    remote.create_secret(ns, CERT_SECRET, CERT)
    if leftover_token:
        remote.create_secret(ns, TOKEN_SECRET, {"token": b"left-behind"})
    step = ensure_certificate(ns, cluster_name="remote-cluster", timeout_seconds=30, remove_token=True)
    env = {"KUBECTL": str(wrapper), ENV_KUBECTL_CHECKED_BY: str(os.getpid())}
    result = steps.run(step, kubeconfig=kubeconfig, stdin=token_manifest(ns), env=env)
    assert result.returncode == 0, result.stderr
    verbs = [run.split()[2] for run in kubectl_runs(log)]  # --context <name> <verb> ...
    assert verbs == (["get", "delete"] if leftover_token else ["get"])
    assert (remote.secret_data(ns, TOKEN_SECRET) is None) and (remote.secret_data(ns, CERT_SECRET) is not None)


def test_no_secret_reaches_a_kubectl_argument_list(
    steps: Steps, remote: ApiClient, planes: ControlPlanes, ns: str, tmp_path: Path
) -> None:
    wrapper, log = recording_kubectl(planes, tmp_path)
    env = {"KUBECTL": str(wrapper)}
    contents = planes.kubeconfig_text("remote", CONTEXT)
    assert steps.run(place(ns), kubeconfig=contents, stdin=token_manifest(ns), env=env).returncode == 0
    status, _ = remote.request("DELETE", f"/api/v1/namespaces/{ns}/secrets/{TOKEN_SECRET}")
    assert status == 200
    script = ensure_certificate(ns, cluster_name="c", timeout_seconds=60, remove_token=True)
    with SecretWatch(remote, ns) as watch:
        agent = Agent(remote, ns, token_appears(watch), 1.0)
        assert steps.run(script, kubeconfig=contents, stdin=token_manifest(ns), env=env).returncode == 0
        agent.written()
    argv = log.read_text()
    assert "apply --server-side" in argv and f"get --raw /api/v1/namespaces/{ns}/secrets?fieldSelector" in argv
    key = b64encode(planes.client_key_pem).decode()
    for secret in (BOOTSTRAP_TOKEN, b64(BOOTSTRAP_TOKEN), "client-key-data", key[60:120], "current-context"):
        assert secret not in argv
