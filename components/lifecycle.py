"""The shell steps of a registration, run with ``kubectl`` by pulumi-command.

Why shell steps at all: the bootstrap token must exist only while the agent bootstraps, the client certificate
is written by the agent (not by Pulumi), and the wait for it is an action, not a desired state. Pulumi's
kubernetes resources cannot express those, so these three steps are ``command.local.Command`` scripts:

* :func:`place_bootstrap_token_script` (before the agent release): removes a stale client certificate left by
  an earlier registration, then puts the bootstrap token in place. Its delete script is the destroy clean-up
  of the agent's identity on the remote cluster (the token and the client certificate).
* :func:`await_client_certificate_script` (after the KubernetesCluster): puts the token in place again (so a
  retry after a failed run can bootstrap), watches for the agent's client certificate while printing progress,
  and removes the token on every exit, success or failure.
* :func:`management_secrets_check_script` (an invoke, also during preview): reports which keys the management
  secrets hold, with their lengths, never their values.

Secrets never appear in a script text or an argument list: the token manifest arrives on stdin, kubeconfig
contents in the environment (written to a private temporary directory that is removed on exit).
"""

from __future__ import annotations

import json
import shlex
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from .args import ClusterAccess

KUBECTL_MIN_MINOR = 31
"""``kubectl wait --for=create`` (used to wait for the client certificate) exists from kubectl 1.31."""

WAIT_CHUNK_SECONDS = 15
"""The wait watches in chunks of this many seconds, printing progress between them.

A watch, not ``kubectl wait --for=create``: kubectl 1.32 implements that by polling (two GETs every 0.5 s,
measured against the fake API server), while one watch per chunk answers as soon as the agent writes its
certificate, with two requests per chunk."""

FIELD_MANAGER = "gloo-mesh-registration"

ENV_KUBECONFIG = "GM_KUBECONFIG"
ENV_CONTEXT = "GM_KUBE_CONTEXT"

_PREAMBLE = f"""\
set -eu
KUBECTL="${{KUBECTL:-kubectl}}"
_gm_dir=$(umask 077 && mktemp -d)
_gm_on_exit() {{ :; }}
_gm_exit() {{
  _gm_status=$?
  if ! _gm_on_exit; then
    if [ "$_gm_status" -eq 0 ]; then _gm_status=1; fi
  fi
  rm -rf "$_gm_dir"
  exit "$_gm_status"
}}
trap _gm_exit EXIT
trap 'exit 130' INT TERM
if ! command -v "$KUBECTL" >/dev/null 2>&1; then
  echo "error: kubectl is not on PATH; the registration's shell steps need kubectl 1.{KUBECTL_MIN_MINOR} or newer" >&2
  exit 127
fi
_gm_version=$("$KUBECTL" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"v\\([0-9]*\\)\\.\\([0-9]*\\).*/\\1 \\2/p' | head -n 1)
set -- $_gm_version
if [ "$#" -ne 2 ] || [ "$1" -lt 1 ] || {{ [ "$1" -eq 1 ] && [ "$2" -lt {KUBECTL_MIN_MINOR} ]; }}; then
  echo "error: kubectl 1.{KUBECTL_MIN_MINOR} or newer is required (found: ${{_gm_version:-unknown}}); install a newer kubectl" >&2
  exit 127
fi
if [ -n "${{{ENV_KUBECONFIG}:-}}" ]; then
  if [ -f "${{{ENV_KUBECONFIG}}}" ]; then
    KUBECONFIG="${{{ENV_KUBECONFIG}}}"
  else
    printf '%s\\n' "${{{ENV_KUBECONFIG}}}" > "$_gm_dir/kubeconfig"
    KUBECONFIG="$_gm_dir/kubeconfig"
  fi
  export KUBECONFIG
fi
unset {ENV_KUBECONFIG}
k() {{
  if [ -n "${{{ENV_CONTEXT}:-}}" ]; then "$KUBECTL" --context "${{{ENV_CONTEXT}}}" "$@"; else "$KUBECTL" "$@"; fi
}}
"""


def kubectl_environment(access: ClusterAccess) -> dict[str, pulumi.Input[str]]:
    """Environment for a script that reaches ``access`` with kubectl; kubeconfig contents stay secret."""
    env: dict[str, pulumi.Input[str]] = {}
    if access.context is not None:
        env[ENV_CONTEXT] = access.context
    kubeconfig = access.kubeconfig_input()
    if kubeconfig is not None:
        env[ENV_KUBECONFIG] = kubeconfig
    return env


def secret_manifest(namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """A Secret manifest as JSON (``data`` values already base64), for ``kubectl apply -f -`` on stdin."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": dict(data),
        },
        sort_keys=True,
    )


def b64(text: str) -> str:
    """Base64 of a UTF-8 string, as Secret ``data`` holds it."""
    return b64encode(text.encode()).decode()


@dataclass(frozen=True)
class RemoteIdentity:
    """Names of the agent's identity material on the registered cluster."""

    namespace: str
    token_secret: str
    client_cert_secret: str


def _apply_token() -> str:
    return f"""\
if ! k apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f - >/dev/null 2>&1; then
  echo "error: could not put the bootstrap token in place in namespace $GM_NAMESPACE (kubectl apply failed; kubectl's \
output is not shown because it may echo the token). Check that the remote cluster is reachable with the configured \
context or kubeconfig and that it may create Secrets in $GM_NAMESPACE." >&2
  exit 1
fi
"""


def _names(identity: RemoteIdentity) -> str:
    return (
        f"GM_NAMESPACE={shlex.quote(identity.namespace)}\n"
        f"GM_TOKEN_SECRET={shlex.quote(identity.token_secret)}\n"
        f"GM_CLIENT_CERT_SECRET={shlex.quote(identity.client_cert_secret)}\n"
    )


def place_bootstrap_token_script(identity: RemoteIdentity) -> str:
    """Create script: drop a stale client certificate, then put the token (manifest on stdin) in place."""
    return (
        _PREAMBLE
        + _names(identity)
        + """\
# A client certificate that exists before this registration's agent was installed is stale: the wait below
# would take it for success (meshctl does) while the agent cannot use it.
k delete secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found --wait=false >/dev/null
"""
        + _apply_token()
        + 'echo "bootstrap token in place in namespace $GM_NAMESPACE" >&2\n'
    )


def token_unchanged_script() -> str:
    """Update script of the token step: the registration step (not this one) re-places a rotated token."""
    return 'echo "bootstrap token: nothing to do; the registration step places it whenever it runs" >&2\n'


def forget_remote_identity_script(identity: RemoteIdentity) -> str:
    """Delete script: remove the token and the agent's client certificate; what is already gone is fine."""
    return (
        _PREAMBLE
        + _names(identity)
        + """\
k delete secret "$GM_TOKEN_SECRET" "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null
echo "removed the bootstrap token and the agent's client certificate from namespace $GM_NAMESPACE" >&2
"""
    )


def await_client_certificate_script(
    identity: RemoteIdentity,
    *,
    cluster_name: str,
    timeout_seconds: int,
    remove_token: bool,
    chunk_seconds: int = WAIT_CHUNK_SECONDS,
) -> str:
    """Create/update script: token in place, wait for the client certificate with progress, token removed on exit.

    The relay address and authority for the timeout message come from the environment (``GM_RELAY_ADDRESS``,
    ``GM_RELAY_AUTHORITY``): the address may be discovered, so it is not known when the script text is built.
    """
    removal = (
        """\
_gm_on_exit() {
  if k delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null 2>&1; then
    echo "bootstrap token removed from namespace $GM_NAMESPACE" >&2
  else
    echo "warning: could not remove the bootstrap token from namespace $GM_NAMESPACE; run pulumi up again" >&2
    return 1
  fi
}
"""
        if remove_token
        else ""
    )
    return (
        _PREAMBLE
        + _names(identity)
        + f"GM_CLUSTER={shlex.quote(cluster_name)}\nGM_TIMEOUT={int(timeout_seconds)}\nGM_CHUNK={int(chunk_seconds)}\n"
        + removal
        + _apply_token()
        + """\
# One watch per chunk: the API server first sends ADDED for a secret that exists, then events as they happen.
_gm_watch_for_certificate() {
  rm -f "$_gm_dir/events" && mkfifo "$_gm_dir/events"
  k get --raw "/api/v1/namespaces/$GM_NAMESPACE/secrets?fieldSelector=metadata.name%3D$GM_CLIENT_CERT_SECRET&watch=1&timeoutSeconds=$1" \
    > "$_gm_dir/events" 2> "$_gm_dir/watch-errors" &
  _gm_watch_pid=$!
  _gm_found=1
  if grep -q -m 1 -E '"type": *"(ADDED|MODIFIED)"' < "$_gm_dir/events"; then _gm_found=0; fi
  kill "$_gm_watch_pid" 2>/dev/null || true
  _gm_watch_status=0
  { wait "$_gm_watch_pid"; } 2>/dev/null || _gm_watch_status=$?
  if [ "$_gm_found" -ne 0 ] && [ "$_gm_watch_status" -ne 0 ]; then
    # The watch failed (not merely timed out): say why, and do not spin.
    echo "cluster $GM_CLUSTER: cannot watch secrets in namespace $GM_NAMESPACE: $(head -n 1 "$_gm_dir/watch-errors")" >&2
    sleep 1
  fi
  return "$_gm_found"
}
_gm_start=$(date +%s)
_gm_elapsed=0
while :; do
  _gm_left=$((GM_TIMEOUT - _gm_elapsed))
  if [ "$_gm_left" -le 0 ]; then
    cat >&2 <<GM_TIMEOUT_MESSAGE
error: cluster $GM_CLUSTER: the agent got no client certificate ($GM_CLIENT_CERT_SECRET in namespace $GM_NAMESPACE) \
within ${GM_TIMEOUT}s.
  relay server address: ${GM_RELAY_ADDRESS:-unknown}, authority: ${GM_RELAY_AUTHORITY:-unknown}
  Usual causes: the relay address is not reachable from the remote cluster (LoadBalancer still pending, wrong port,
  firewall); the authority does not match the relay server certificate; a stale root CA copy; an empty or rotated
  bootstrap token on the management cluster; a sidecar injected into namespace $GM_NAMESPACE; an agent version that
  differs from the server's. Check: kubectl logs deploy/enterprise-agent -n $GM_NAMESPACE on the remote cluster.
  The bootstrap token is removed now; the next pulumi up puts it in place again and retries.
GM_TIMEOUT_MESSAGE
    exit 1
  fi
  _gm_step=$GM_CHUNK
  if [ "$_gm_left" -lt "$_gm_step" ]; then _gm_step=$_gm_left; fi
  if _gm_watch_for_certificate "$_gm_step"; then
    _gm_elapsed=$(( $(date +%s) - _gm_start ))
    echo "cluster $GM_CLUSTER: the agent holds its client certificate (after ${_gm_elapsed}s)" >&2
    exit 0
  fi
  _gm_elapsed=$(( $(date +%s) - _gm_start ))
  echo "cluster $GM_CLUSTER: waiting for the agent's client certificate (${_gm_elapsed}s of ${GM_TIMEOUT}s)" >&2
done
"""
    )


def management_secrets_check_script(namespace: str, secret_names: tuple[str, ...]) -> str:
    """Invoke script: print ``<secret> key=length ...`` per secret, or ``<secret> MISSING``; never a value.

    Any other kubectl failure (cluster unreachable, RBAC) ends the script non-zero with kubectl's message, which
    names no secret value.
    """
    template = "go-template={{range $k, $v := .data}}{{$k}}={{len $v}} {{end}}"
    checks = "".join(
        f"""\
if _gm_out=$(k get secret {shlex.quote(name)} -n {shlex.quote(namespace)} -o {shlex.quote(template)} 2>&1); then
  echo {shlex.quote(name)} "$_gm_out"
elif printf '%s' "$_gm_out" | grep -q 'NotFound'; then
  echo {shlex.quote(name)} MISSING
else
  printf '%s\\n' "$_gm_out" | head -n 5 >&2
  exit 1
fi
"""
        for name in secret_names
    )
    return _PREAMBLE + checks


def parse_secrets_report(stdout: str) -> dict[str, dict[str, int] | None]:
    """Parse :func:`management_secrets_check_script` output: secret name -> {key: base64 length} or None if missing."""
    report: dict[str, dict[str, int] | None] = {}
    for line in stdout.splitlines():
        name, _, rest = line.strip().partition(" ")
        if not name:
            continue
        if rest.strip() == "MISSING":
            report[name] = None
            continue
        keys: dict[str, int] = {}
        for item in rest.split():
            key, _, length = item.rpartition("=")
            keys[key] = int(length) if length.isdigit() else 0
        report[name] = keys
    return report
