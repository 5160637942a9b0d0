"""The registration's shell steps, run as pulumi-command runs them, with the real kubectl against a fake API server.

pulumi-command runs a step as its ``interpreter`` followed by its ``command`` (here ``/bin/sh -c <script> <name>`` and
a verb), with the ``environment`` added to the provider's and ``stdin`` on standard input (pulumi/pulumi-command
``provider/pkg/provider/local/commandOutputs.go``, ``run``); ``run_step`` does the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_double import BOOTSTRAP_TOKEN, b64
from fakekube import FakeKubeApiServer

from components.lifecycle import (
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_KUBECONFIG,
    FORGET_IDENTITY,
    PLACE_TOKEN,
    READ_RELAY_SECRETS,
    RemoteIdentity,
    client_certificate_step,
    parse_relay_secrets_report,
    relay_secrets_environment,
    relay_secrets_step,
    secret_manifest,
    token_step,
)

NS = "gloo-mesh"
IDENTITY = RemoteIdentity(
    namespace=NS, token_secret="relay-identity-token-secret", client_cert_secret="relay-client-tls-secret"
)
TOKEN_MANIFEST = secret_manifest(
    NS, IDENTITY.token_secret, {"token": b64(BOOTSTRAP_TOKEN)}, {"app.kubernetes.io/managed-by": "pulumi"}
)
CERT = {"tls.crt": b"cert", "tls.key": b"key", "ca.crt": b"ca"}
PLACE = token_step(IDENTITY).argv(PLACE_TOKEN)
FORGET = token_step(IDENTITY).argv(FORGET_IDENTITY)
READ = relay_secrets_step().argv(READ_RELAY_SECRETS)


def ensure_certificate(identity: RemoteIdentity, **settings: Any) -> list[str]:
    """The certificate step's process, as pulumi-command's ``local.run`` starts it."""
    return client_certificate_step(identity, **settings).argv(ENSURE_CERTIFICATE)


def test_kubectl_is_installed() -> None:
    """The lifecycle tests need the real kubectl: without it they fail here, loudly, rather than skip."""
    assert shutil.which("kubectl"), "kubectl 1.31+ must be on PATH to run the lifecycle tests (CI too)"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    """The API server of the cluster, with the agent namespace in place (the namespace step runs first)."""
    with FakeKubeApiServer() as server:
        server.put_namespace(NS)
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeApiServer, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig", context="kind-remote-cluster")


def run_step(
    argv: list[str],
    *,
    kubeconfig: Path | str | None,
    context: str | None = "kind-remote-cluster",
    stdin: str = "",
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    env["HOME"] = str(Path(kubeconfig).parent if isinstance(kubeconfig, Path) else env.get("HOME", "/tmp"))
    if kubeconfig is not None:
        env[ENV_KUBECONFIG] = str(kubeconfig)
    if context is not None:
        env[ENV_CONTEXT] = context
    env.update(extra_env or {})
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=timeout)


def secret_keys(api: FakeKubeApiServer, name: str) -> dict[str, str] | None:
    obj = api.get_object("secrets", NS, name)
    return None if obj is None else dict(obj.get("data") or {})


# -- bootstrap token placement ---------------------------------------------------------------------------------


def test_place_token_creates_it_and_removes_a_stale_client_certificate(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    result = run_step(PLACE, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    assert result.returncode == 0, result.stderr
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}
    assert secret_keys(api, IDENTITY.client_cert_secret) is None
    assert (
        BOOTSTRAP_TOKEN not in result.stdout + result.stderr
        and b64(BOOTSTRAP_TOKEN) not in result.stdout + result.stderr
    )


def test_place_token_is_idempotent(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    for _ in range(2):
        result = run_step(PLACE, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
        assert result.returncode == 0, result.stderr
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_place_token_failure_does_not_echo_the_token(api: FakeKubeApiServer, tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(api.kubeconfig_text("kind-remote-cluster").replace(api.url, "http://127.0.0.1:9"))
    result = run_step(PLACE, kubeconfig=unreachable, stdin=TOKEN_MANIFEST, timeout=90)
    assert result.returncode != 0
    assert "127.0.0.1:9 was refused" in result.stderr  # kubectl's own reason, from a step that carries no secret
    assert BOOTSTRAP_TOKEN not in result.stderr and b64(BOOTSTRAP_TOKEN) not in result.stderr


# -- wait for the client certificate, token removal -------------------------------------------------------------


class agent_answers_after(threading.Thread):  # noqa: N801 (reads as what it does)
    """What the agent does: once the token is in place, its client certificate follows after ``delay_seconds``.
    Timed from the token, not from the test's start, so a busy machine cannot make the step look faster."""

    def __init__(self, api: FakeKubeApiServer, delay_seconds: float) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.delay_seconds = delay_seconds
        self.written_at: float | None = None
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while secret_keys(self.api, IDENTITY.token_secret) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(self.delay_seconds)
        self.api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
        self.written_at = time.monotonic()


def test_wait_succeeds_when_the_certificate_appears_and_removes_the_token(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    agent = agent_answers_after(api, 2.5)  # longer than a chunk: at least one progress line first
    script = ensure_certificate(
        IDENTITY, cluster_name="remote-cluster", timeout_seconds=20, remove_token=True, chunk_seconds=1
    )
    started = time.monotonic()
    result = run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    elapsed = time.monotonic() - started
    agent.join(timeout=5)
    assert result.returncode == 0, result.stderr
    assert "cluster remote-cluster: the agent holds its client certificate" in result.stderr
    assert "waiting for the agent's client certificate (" in result.stderr and "of 20s)" in result.stderr
    assert secret_keys(api, IDENTITY.token_secret) is None, "the bootstrap token was left behind"
    assert "bootstrap token removed" in result.stderr
    assert elapsed < 8


def test_wait_times_out_with_the_promised_message_and_leaves_no_token(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    script = ensure_certificate(
        IDENTITY, cluster_name="remote-cluster", timeout_seconds=2, remove_token=True, chunk_seconds=1
    )
    result = run_step(
        script,
        kubeconfig=kubeconfig,
        stdin=TOKEN_MANIFEST,
        extra_env={"GM_RELAY_ADDRESS": "172.18.0.2:32443", "GM_RELAY_AUTHORITY": "enterprise-networking.gloo-mesh"},
    )
    assert result.returncode == 1
    message = result.stderr
    assert (
        "error: cluster remote-cluster: the agent got no client certificate (relay-client-tls-secret in namespace gloo-mesh) within 2s"
        in message
    )
    assert "relay server address: 172.18.0.2:32443, authority: enterprise-networking.gloo-mesh" in message
    assert "Usual causes:" in message and "sidecar" in message
    assert secret_keys(api, IDENTITY.token_secret) is None, "a timed-out registration left the token behind"
    assert BOOTSTRAP_TOKEN not in message and b64(BOOTSTRAP_TOKEN) not in message


def test_retry_after_a_timeout_puts_the_token_back_first(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    script = ensure_certificate(
        IDENTITY, cluster_name="remote-cluster", timeout_seconds=1, remove_token=True, chunk_seconds=1
    )
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 1
    assert secret_keys(api, IDENTITY.token_secret) is None
    seen: list[dict[str, str] | None] = []
    timer = api.put_secret_later(1.0, NS, IDENTITY.client_cert_secret, CERT)
    # While the retry waits, the token is in place for the agent.
    probe = subprocess.Popen(
        script,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, ENV_KUBECONFIG: str(kubeconfig), ENV_CONTEXT: "kind-remote-cluster"},
    )
    assert probe.stdin is not None
    probe.stdin.write(TOKEN_MANIFEST)
    probe.stdin.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not seen:
        keys = secret_keys(api, IDENTITY.token_secret)
        if keys:
            seen.append(keys)
        time.sleep(0.05)
    assert probe.wait(timeout=30) == 0
    timer.cancel()
    assert seen == [{"token": b64(BOOTSTRAP_TOKEN)}]
    assert secret_keys(api, IDENTITY.token_secret) is None


def test_a_registered_cluster_is_left_alone_and_a_leftover_token_is_removed(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    """The step runs on every pulumi up: with the certificate in place it neither puts a (rotated) token back nor
    waits; a token left behind by an interrupted run goes."""
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    api.put_secret(NS, IDENTITY.token_secret, {"token": b"left-behind"})
    step = ensure_certificate(IDENTITY, cluster_name="remote-cluster", timeout_seconds=30, remove_token=True)
    started = time.monotonic()
    result = run_step(step, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert "removed a bootstrap token left behind" in result.stderr
    assert secret_keys(api, IDENTITY.token_secret) is None
    assert not any(r.method == "PATCH" and IDENTITY.token_secret in r.path for r in api.requests), "token put back"
    again = run_step(step, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    assert again.returncode == 0 and "left behind" not in again.stderr


def test_a_killed_wait_still_removes_the_token(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    """pulumi-command cancels a step with SIGKILL (exec.CommandContext), which skips the EXIT trap: the guard the step
    started in its own session removes the token once the step is gone (issue 9, defect 4)."""
    step = ensure_certificate(IDENTITY, cluster_name="remote-cluster", timeout_seconds=60, remove_token=True)
    env = {**os.environ, ENV_KUBECONFIG: str(kubeconfig), ENV_CONTEXT: "kind-remote-cluster"}
    process = subprocess.Popen(
        step, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdin is not None
    process.stdin.write(TOKEN_MANIFEST)
    process.stdin.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and secret_keys(api, IDENTITY.token_secret) is None:
        time.sleep(0.05)
    assert secret_keys(api, IDENTITY.token_secret) is not None, "the step never put the token in place"
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and secret_keys(api, IDENTITY.token_secret) is not None:
        time.sleep(0.1)
    assert secret_keys(api, IDENTITY.token_secret) is None, "the token outlived a killed wait"


def test_forget_identity_falls_back_to_the_ambient_kubeconfig_when_the_recorded_file_is_gone(
    api: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    api.put_secret(NS, IDENTITY.token_secret, {"token": b"t"})
    gone = tmp_path / "runner-1" / "kubeconfig"
    result = run_step(FORGET, kubeconfig=str(gone), extra_env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 0, result.stderr
    assert f"the kubeconfig file {gone} recorded at registration is gone" in result.stderr
    assert secret_keys(api, IDENTITY.token_secret) is None
    # Only the token step falls back; elsewhere a kubeconfig file that is gone is an error.
    step = ensure_certificate(IDENTITY, cluster_name="c", timeout_seconds=5, remove_token=True)
    failed = run_step(step, kubeconfig=str(gone), stdin=TOKEN_MANIFEST, extra_env={"KUBECONFIG": str(kubeconfig)})
    assert failed.returncode != 0 and f"the kubeconfig file {gone} does not exist" in failed.stderr


def test_a_failing_step_names_its_verb_not_its_script(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    """pulumi-command reports a failure as ``running "<command>"`` before the output: the command is the verb."""
    assert PLACE[-1] == PLACE_TOKEN and len(PLACE_TOKEN) < 30
    unknown = [*PLACE[:-1], "no-such-step"]
    result = run_step(unknown, kubeconfig=kubeconfig)
    assert result.returncode == 2 and "unknown step 'no-such-step'" in result.stderr


def test_token_is_kept_when_removal_is_disabled(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    agent = agent_answers_after(api, 0.5)
    script = ensure_certificate(IDENTITY, cluster_name="c", timeout_seconds=20, remove_token=False)
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 0
    agent.join(timeout=5)
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}
    # And a later run leaves it there too.
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 0
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_wait_reacts_within_a_second_with_few_requests(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    script = ensure_certificate(IDENTITY, cluster_name="c", timeout_seconds=30, remove_token=True)
    api.clear_requests()
    agent = agent_answers_after(api, 2.0)
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 0
    finished = time.monotonic()
    agent.join(timeout=5)
    assert agent.written_at is not None
    # The wait (a watch, not a poll) ends well within a second after the certificate appears.
    assert finished - agent.written_at < 1.5, finished - agent.written_at
    watches = [r for r in api.requests if r.is_watch]
    assert len(watches) == 1, "one watch, not a poll"
    # One look before the token goes in (is the agent registered already?), none while waiting.
    gets = [r for r in api.requests if r.method == "GET" and r.path.endswith("/secrets/relay-client-tls-secret")]
    assert len(gets) == 1 and gets[0].time < watches[0].time, "the wait polled the certificate instead of watching it"


# -- destroy clean-up ---------------------------------------------------------------------------------------------


def test_forget_identity_removes_token_and_certificate_and_tolerates_what_is_gone(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    api.put_secret(NS, IDENTITY.token_secret, {"token": BOOTSTRAP_TOKEN.encode()})
    for attempt in range(2):
        result = run_step(FORGET, kubeconfig=kubeconfig)
        assert result.returncode == 0, f"attempt {attempt}: {result.stderr}"
    assert secret_keys(api, IDENTITY.client_cert_secret) is None and secret_keys(api, IDENTITY.token_secret) is None


def test_forget_identity_tolerates_a_deleted_namespace(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    other = RemoteIdentity("gone", IDENTITY.token_secret, IDENTITY.client_cert_secret)
    result = run_step(token_step(other).argv(FORGET_IDENTITY), kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr


# -- management secrets check -------------------------------------------------------------------------------------


RELAY_SECRETS = {"relay-root-tls-secret": "ca.crt", "relay-identity-token-secret": "token"}


def test_relay_secrets_read_prints_the_wanted_values_and_only_lengths_of_the_rest(
    api: FakeKubeApiServer, tmp_path: Path
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "mgmt", context="kind-mgmt-cluster")
    api.put_secret(NS, "relay-root-tls-secret", {"ca.crt": b"CA", "tls.key": b"PRIVATE-KEY-MATERIAL"})
    result = run_step(
        READ,
        kubeconfig=kubeconfig,
        context="kind-mgmt-cluster",
        extra_env=relay_secrets_environment(NS, RELAY_SECRETS),
    )
    assert result.returncode == 0, result.stderr
    report = parse_relay_secrets_report(result.stdout)
    assert report.keys == {
        "relay-root-tls-secret": {"ca.crt": len(b64("CA")), "tls.key": len(b64("PRIVATE-KEY-MATERIAL"))},
        "relay-identity-token-secret": None,
    }
    assert report.values == {"relay-root-tls-secret": b64("CA")}
    assert "PRIVATE-KEY-MATERIAL" not in result.stdout and b64("PRIVATE-KEY-MATERIAL") not in result.stdout


def test_relay_secrets_read_honours_the_namespace_and_reports_an_absent_key(
    api: FakeKubeApiServer, tmp_path: Path
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "mgmt", context="kind-mgmt-cluster")
    api.put_namespace("gloo-mesh-mgmt")
    api.put_secret("gloo-mesh-mgmt", "relay-identity-token-secret", {"other": b"x"})
    api.put_secret(NS, "relay-identity-token-secret", {"token": b"in-the-wrong-namespace"})
    result = run_step(
        READ,
        kubeconfig=kubeconfig,
        context="kind-mgmt-cluster",
        extra_env=relay_secrets_environment("gloo-mesh-mgmt", {"relay-identity-token-secret": "token"}),
    )
    assert result.returncode == 0, result.stderr
    report = parse_relay_secrets_report(result.stdout)
    assert report.keys == {"relay-identity-token-secret": {"other": len(b64("x"))}}
    assert report.values == {}


def test_relay_secrets_read_fails_when_the_cluster_is_unreachable(api: FakeKubeApiServer, tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(api.kubeconfig_text("kind-mgmt-cluster").replace(api.url, "http://127.0.0.1:9"))
    result = run_step(
        READ,
        kubeconfig=unreachable,
        context="kind-mgmt-cluster",
        extra_env=relay_secrets_environment(NS, {"relay-root-tls-secret": "ca.crt"}),
        timeout=90,
    )
    assert result.returncode != 0 and "MISSING" not in result.stdout


# -- cluster access and the kubectl prerequisite -----------------------------------------------------------------


def test_kubeconfig_contents_in_the_environment_reach_the_cluster_and_leave_no_file(
    api: FakeKubeApiServer, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    contents = api.kubeconfig_text("kind-remote-cluster")
    result = run_step(
        PLACE,
        kubeconfig=contents,
        stdin=TOKEN_MANIFEST,
        extra_env={"TMPDIR": str(scratch)},
    )
    assert result.returncode == 0, result.stderr
    assert secret_keys(api, IDENTITY.token_secret) is not None
    assert list(scratch.iterdir()) == [], "the temporary kubeconfig was left on disk"


def test_context_selects_the_cluster(api: FakeKubeApiServer, tmp_path: Path) -> None:
    config = json.loads(json.dumps(__import__("yaml").safe_load(api.kubeconfig_text("kind-remote-cluster"))))
    config["contexts"].append(
        {"name": "elsewhere", "context": {"cluster": "nowhere", "user": config["users"][0]["name"]}}
    )
    config["clusters"].append({"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}})
    config["current-context"] = "elsewhere"
    path = tmp_path / "two-contexts"
    path.write_text(json.dumps(config))
    ok = run_step(PLACE, kubeconfig=path, context="kind-remote-cluster", stdin=TOKEN_MANIFEST)
    assert ok.returncode == 0, ok.stderr


def _fake_kubectl(tmp_path: Path, version: str) -> Path:
    fake = tmp_path / "old-kubectl"
    fake.write_text(f'#!/bin/sh\necho \'{{"clientVersion": {{"gitVersion": "{version}"}}}}\'\n')
    fake.chmod(0o755)
    return fake


def test_old_kubectl_is_a_clear_error(kubeconfig: Path, tmp_path: Path) -> None:
    result = run_step(
        FORGET,
        kubeconfig=kubeconfig,
        extra_env={"KUBECTL": str(_fake_kubectl(tmp_path, "v1.28.3"))},
    )
    assert result.returncode == 127
    assert "kubectl 1.31 or newer is required (found: 1 28)" in result.stderr


def test_missing_kubectl_is_a_clear_error(kubeconfig: Path) -> None:
    result = run_step(FORGET, kubeconfig=kubeconfig, extra_env={"KUBECTL": "/nonexistent/kubectl"})
    assert result.returncode == 127
    assert "kubectl is not on PATH" in result.stderr


def test_no_secret_reaches_a_kubectl_argument_list(api: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    real = shutil.which("kubectl")
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    api.put_secret_later(1.0, NS, IDENTITY.client_cert_secret, CERT)
    env = {"KUBECTL": str(wrapper)}
    contents = api.kubeconfig_text("kind-remote-cluster")
    assert run_step(PLACE, kubeconfig=contents, stdin=TOKEN_MANIFEST, extra_env=env).returncode == 0
    script = ensure_certificate(IDENTITY, cluster_name="c", timeout_seconds=10, remove_token=True)
    assert run_step(script, kubeconfig=contents, stdin=TOKEN_MANIFEST, extra_env=env).returncode == 0
    argv = log.read_text()
    assert "apply --server-side" in argv and "get --raw /api/v1/namespaces/gloo-mesh/secrets?fieldSelector" in argv
    for secret in (BOOTSTRAP_TOKEN, b64(BOOTSTRAP_TOKEN), "client-certificate-data", "server: http"):
        assert secret not in argv
