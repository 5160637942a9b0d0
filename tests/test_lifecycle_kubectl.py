"""The registration's shell steps, run as pulumi-command runs them, with the real kubectl against a fake API server.

pulumi-command's ``local.Command`` runs each script as ``/bin/sh -c <script>`` with the resource's ``environment``
added to the provider's and ``stdin`` on standard input (pulumi/pulumi-command ``provider/pkg/provider/local``,
default interpreter ``["/bin/sh", "-c"]``); ``run_step`` does the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_double import BOOTSTRAP_TOKEN, b64
from fakekube import FakeKubeApiServer

from components.lifecycle import (
    ENV_CONTEXT,
    ENV_KUBECONFIG,
    RemoteIdentity,
    await_client_certificate_script,
    forget_remote_identity_script,
    management_secrets_check_script,
    parse_secrets_report,
    place_bootstrap_token_script,
    secret_manifest,
)

NS = "gloo-mesh"
IDENTITY = RemoteIdentity(
    namespace=NS, token_secret="relay-identity-token-secret", client_cert_secret="relay-client-tls-secret"
)
TOKEN_MANIFEST = secret_manifest(
    NS, IDENTITY.token_secret, {"token": b64(BOOTSTRAP_TOKEN)}, {"app.kubernetes.io/managed-by": "pulumi"}
)
CERT = {"tls.crt": b"cert", "tls.key": b"key", "ca.crt": b"ca"}


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
    script: str,
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
    return subprocess.run(
        ["/bin/sh", "-c", script], input=stdin, env=env, capture_output=True, text=True, timeout=timeout
    )


def secret_keys(api: FakeKubeApiServer, name: str) -> dict[str, str] | None:
    obj = api.get_object("secrets", NS, name)
    return None if obj is None else dict(obj.get("data") or {})


# -- bootstrap token placement ---------------------------------------------------------------------------------


def test_place_token_creates_it_and_removes_a_stale_client_certificate(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    result = run_step(place_bootstrap_token_script(IDENTITY), kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    assert result.returncode == 0, result.stderr
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}
    assert secret_keys(api, IDENTITY.client_cert_secret) is None
    assert (
        BOOTSTRAP_TOKEN not in result.stdout + result.stderr
        and b64(BOOTSTRAP_TOKEN) not in result.stdout + result.stderr
    )


def test_place_token_is_idempotent(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    for _ in range(2):
        result = run_step(place_bootstrap_token_script(IDENTITY), kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
        assert result.returncode == 0, result.stderr
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_place_token_failure_does_not_echo_the_token(api: FakeKubeApiServer, tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(api.kubeconfig_text("kind-remote-cluster").replace(api.url, "http://127.0.0.1:9"))
    result = run_step(place_bootstrap_token_script(IDENTITY), kubeconfig=unreachable, stdin=TOKEN_MANIFEST, timeout=90)
    assert result.returncode != 0
    assert "127.0.0.1:9 was refused" in result.stderr  # kubectl's own reason, from a step that carries no secret
    assert BOOTSTRAP_TOKEN not in result.stderr and b64(BOOTSTRAP_TOKEN) not in result.stderr


# -- wait for the client certificate, token removal -------------------------------------------------------------


def test_wait_succeeds_when_the_certificate_appears_and_removes_the_token(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    api.put_secret_later(1.5, NS, IDENTITY.client_cert_secret, CERT)
    script = await_client_certificate_script(
        IDENTITY, cluster_name="remote-cluster", timeout_seconds=20, remove_token=True, chunk_seconds=1
    )
    started = time.monotonic()
    result = run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "cluster remote-cluster: the agent holds its client certificate" in result.stderr
    assert "waiting for the agent's client certificate (" in result.stderr and "of 20s)" in result.stderr
    assert secret_keys(api, IDENTITY.token_secret) is None, "the bootstrap token was left behind"
    assert "bootstrap token removed" in result.stderr
    assert elapsed < 8


def test_wait_times_out_with_the_promised_message_and_leaves_no_token(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    script = await_client_certificate_script(
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
    script = await_client_certificate_script(
        IDENTITY, cluster_name="remote-cluster", timeout_seconds=1, remove_token=True, chunk_seconds=1
    )
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 1
    assert secret_keys(api, IDENTITY.token_secret) is None
    seen: list[dict[str, str] | None] = []
    timer = api.put_secret_later(1.0, NS, IDENTITY.client_cert_secret, CERT)
    # While the retry waits, the token is in place for the agent.
    probe = subprocess.Popen(
        ["/bin/sh", "-c", script],
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


def test_token_is_kept_when_removal_is_disabled(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    script = await_client_certificate_script(IDENTITY, cluster_name="c", timeout_seconds=5, remove_token=False)
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 0
    assert secret_keys(api, IDENTITY.token_secret) == {"token": b64(BOOTSTRAP_TOKEN)}


def test_wait_reacts_within_a_second_with_few_requests(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    api.put_secret_later(2.0, NS, IDENTITY.client_cert_secret, CERT)
    script = await_client_certificate_script(IDENTITY, cluster_name="c", timeout_seconds=30, remove_token=True)
    api.clear_requests()
    started = time.monotonic()
    assert run_step(script, kubeconfig=kubeconfig, stdin=TOKEN_MANIFEST).returncode == 0
    finished = time.monotonic() - started
    # The secret appeared at ~2 s; the wait (a watch, not a poll) ends well within a second after it.
    assert finished < 2.0 + 1.5, finished
    watches = [r for r in api.requests if r.is_watch]
    assert len(watches) == 1, "one watch, not a poll"
    polls = [r for r in api.requests if r.method == "GET" and r.path.endswith("/secrets/relay-client-tls-secret")]
    assert polls == [], "the wait polled the certificate instead of watching it"


# -- destroy clean-up ---------------------------------------------------------------------------------------------


def test_forget_identity_removes_token_and_certificate_and_tolerates_what_is_gone(
    api: FakeKubeApiServer, kubeconfig: Path
) -> None:
    api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
    api.put_secret(NS, IDENTITY.token_secret, {"token": BOOTSTRAP_TOKEN.encode()})
    for attempt in range(2):
        result = run_step(forget_remote_identity_script(IDENTITY), kubeconfig=kubeconfig)
        assert result.returncode == 0, f"attempt {attempt}: {result.stderr}"
    assert secret_keys(api, IDENTITY.client_cert_secret) is None and secret_keys(api, IDENTITY.token_secret) is None


def test_forget_identity_tolerates_a_deleted_namespace(api: FakeKubeApiServer, kubeconfig: Path) -> None:
    other = RemoteIdentity("gone", IDENTITY.token_secret, IDENTITY.client_cert_secret)
    result = run_step(forget_remote_identity_script(other), kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr


# -- management secrets check -------------------------------------------------------------------------------------


def test_secrets_check_reports_key_lengths_never_values(api: FakeKubeApiServer, tmp_path: Path) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "mgmt", context="kind-mgmt-cluster")
    api.put_secret(NS, "relay-root-tls-secret", {"ca.crt": b"CA", "tls.key": b"PRIVATE-KEY-MATERIAL"})
    script = management_secrets_check_script(NS, ("relay-root-tls-secret", "relay-identity-token-secret"))
    result = run_step(script, kubeconfig=kubeconfig, context="kind-mgmt-cluster")
    assert result.returncode == 0, result.stderr
    report = parse_secrets_report(result.stdout)
    assert report == {
        "relay-root-tls-secret": {"ca.crt": len(b64("CA")), "tls.key": len(b64("PRIVATE-KEY-MATERIAL"))},
        "relay-identity-token-secret": None,
    }
    assert "PRIVATE-KEY-MATERIAL" not in result.stdout and b64("PRIVATE-KEY-MATERIAL") not in result.stdout


def test_secrets_check_fails_when_the_cluster_is_unreachable(api: FakeKubeApiServer, tmp_path: Path) -> None:
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(api.kubeconfig_text("kind-mgmt-cluster").replace(api.url, "http://127.0.0.1:9"))
    script = management_secrets_check_script(NS, ("relay-root-tls-secret",))
    result = run_step(script, kubeconfig=unreachable, context="kind-mgmt-cluster", timeout=90)
    assert result.returncode != 0 and "MISSING" not in result.stdout


# -- cluster access and the kubectl prerequisite -----------------------------------------------------------------


def test_kubeconfig_contents_in_the_environment_reach_the_cluster_and_leave_no_file(
    api: FakeKubeApiServer, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    contents = api.kubeconfig_text("kind-remote-cluster")
    result = run_step(
        place_bootstrap_token_script(IDENTITY),
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
    ok = run_step(
        place_bootstrap_token_script(IDENTITY), kubeconfig=path, context="kind-remote-cluster", stdin=TOKEN_MANIFEST
    )
    assert ok.returncode == 0, ok.stderr


def _fake_kubectl(tmp_path: Path, version: str) -> Path:
    fake = tmp_path / "old-kubectl"
    fake.write_text(f'#!/bin/sh\necho \'{{"clientVersion": {{"gitVersion": "{version}"}}}}\'\n')
    fake.chmod(0o755)
    return fake


def test_old_kubectl_is_a_clear_error(kubeconfig: Path, tmp_path: Path) -> None:
    result = run_step(
        forget_remote_identity_script(IDENTITY),
        kubeconfig=kubeconfig,
        extra_env={"KUBECTL": str(_fake_kubectl(tmp_path, "v1.28.3"))},
    )
    assert result.returncode == 127
    assert "kubectl 1.31 or newer is required (found: 1 28)" in result.stderr


def test_missing_kubectl_is_a_clear_error(kubeconfig: Path) -> None:
    result = run_step(
        forget_remote_identity_script(IDENTITY), kubeconfig=kubeconfig, extra_env={"KUBECTL": "/nonexistent/kubectl"}
    )
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
    assert (
        run_step(
            place_bootstrap_token_script(IDENTITY), kubeconfig=contents, stdin=TOKEN_MANIFEST, extra_env=env
        ).returncode
        == 0
    )
    script = await_client_certificate_script(IDENTITY, cluster_name="c", timeout_seconds=10, remove_token=True)
    assert run_step(script, kubeconfig=contents, stdin=TOKEN_MANIFEST, extra_env=env).returncode == 0
    argv = log.read_text()
    assert "apply --server-side" in argv and "get --raw /api/v1/namespaces/gloo-mesh/secrets?fieldSelector" in argv
    for secret in (BOOTSTRAP_TOKEN, b64(BOOTSTRAP_TOKEN), "client-certificate-data", "server: http"):
        assert secret not in argv
