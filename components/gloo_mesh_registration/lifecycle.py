"""The registration's shell steps, run with ``kubectl`` by pulumi-command.

Why shell steps at all: the bootstrap token must exist only while the agent bootstraps, the client certificate is
written by the agent (not by Pulumi), and the wait for it is an action, not a desired state. Pulumi's kubernetes
resources cannot express those. Four scripts, each run by pulumi-command:

* :func:`token_step` (a ``local.Command`` before the agent release): its create removes a stale client certificate
  left by an earlier registration and puts the bootstrap token in place for the agent's first start; its delete
  is the destroy clean-up of the agent's identity on the remote cluster (the token and the client certificate).
* :func:`client_certificate_step` (a ``local.run`` invoke after the KubernetesCluster, on every ``pulumi up``): when
  the agent holds its client certificate, removes a token left behind (by an interrupted run) and ends; otherwise
  puts the token in place, watches for the certificate while printing progress, and removes the token on every
  exit, success, failure or a kill (a guard process outlives the script for that).
* :func:`existing_objects_step` (a ``local.run`` invoke, in preview only): which of the objects a preview is about to
  create exist already, so the preview fails where ``pulumi up`` would (see :mod:`gloo_mesh_registration.preflight`).
* :func:`relay_secrets_step` (a ``local.run`` invoke, also during preview): reports which keys the management relay
  secrets hold, with their lengths, and the value of the one key of each that the registration copies (``ca.crt``,
  the token). Invoke results are not stored in the state, so the rest of those secrets (the CA's private key) never
  reaches Pulumi at all.

Each script is the program of an explicit ``/bin/sh -c`` interpreter and the pulumi-command ``command`` is a short
verb (:data:`PLACE_TOKEN`, ...), so a failure reads ``running "place-bootstrap-token": <the cause>`` instead of the
whole script first (pulumi-command prints the command before the output). Secrets never appear in a script or an
argument list: the token manifest arrives on stdin, kubeconfig contents in the environment (written to a private
temporary directory that is removed on exit).
"""

from __future__ import annotations

import json
import shlex
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from .args import ClusterAccess

KUBECTL_MIN_MINOR = 31
"""``kubectl`` 1.31 is the oldest the steps are tested with (and within the version skew of current clusters)."""

WAIT_CHUNK_SECONDS = 15
"""The wait watches in chunks of this many seconds, printing progress between them.

A watch, not ``kubectl wait --for=create``: kubectl 1.37 implements that by polling (a GET every 0.5 s, about 120
requests a minute, measured against a real kube-apiserver 1.37 in benchmarks/wait_latency.py), while one watch per
chunk answers as soon as the agent writes its certificate (about 0.1 s after it), with one request per chunk."""

TOKEN_GUARD_SECONDS = 600
"""How long a token guard keeps trying to remove the token from a cluster that does not answer."""
TOKEN_GUARD_RETRY_SECONDS = 5

FIELD_MANAGER = "gloo-mesh-registration"

ENV_KUBECONFIG = "GM_KUBECONFIG"
ENV_CONTEXT = "GM_KUBE_CONTEXT"
ENV_NAMESPACE = "GM_NAMESPACE"
ENV_RELAY_SECRETS = "GM_RELAY_SECRETS"

PLACE_TOKEN = "place-bootstrap-token"
KEEP_TOKEN = "keep-bootstrap-token"
FORGET_IDENTITY = "forget-agent-identity"
ENSURE_CERTIFICATE = "ensure-client-certificate"
READ_RELAY_SECRETS = "read-relay-secrets"
FIND_EXISTING = "find-existing-objects"

SHELL = "/bin/sh"
"""POSIX shell of every step (pulumi-command's default would be ``cmd /C`` on Windows)."""

_PREAMBLE = f"""\
set -eu
_gm_step=${{1:-}}
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
  # Contents or a path: the rule of ClusterAccess (args.py): contents have a line break, or start with "{{" or
  # "apiVersion" after leading blanks; anything else is a path (which error messages may name; contents never).
  _gm_lead=${{{ENV_KUBECONFIG}%%[![:space:]]*}}
  case "${{{ENV_KUBECONFIG}}}" in
    *'
'*|"$_gm_lead"'{{'*|"$_gm_lead"apiVersion*)
      printf '%s\\n' "${{{ENV_KUBECONFIG}}}" > "$_gm_dir/kubeconfig"
      KUBECONFIG="$_gm_dir/kubeconfig"
      export KUBECONFIG
      ;;
    *)
      case "${{{ENV_KUBECONFIG}}}" in "~/"*) {ENV_KUBECONFIG}="$HOME/${{{ENV_KUBECONFIG}#"~/"}}" ;; esac
      if [ -f "${{{ENV_KUBECONFIG}}}" ]; then
        KUBECONFIG="${{{ENV_KUBECONFIG}}}"
        export KUBECONFIG
      elif [ "${{_gm_ambient_fallback:-}}" = yes ]; then
        echo "warning: the kubeconfig file ${{{ENV_KUBECONFIG}}} recorded at registration is gone; using the ambient \
kubeconfig${{{ENV_CONTEXT}:+ with context ${ENV_CONTEXT}}}" >&2
      else
        echo "error: the kubeconfig file ${{{ENV_KUBECONFIG}}} does not exist" >&2
        exit 1
      fi
      ;;
  esac
fi
unset {ENV_KUBECONFIG}
# _gm_cause FILE: kubectl's reason from its stderr: the first line that is not a client-go log line (E1202 ...).
_gm_cause() {{
  grep -v -E '^[EWI][0-9]{{4}} ' "$1" | head -n 1 | grep . || tail -n 1 "$1"
}}
k() {{
  if [ -n "${{{ENV_CONTEXT}:-}}" ]; then "$KUBECTL" --context "${{{ENV_CONTEXT}}}" "$@"; else "$KUBECTL" "$@"; fi
}}
"""

_UNKNOWN_STEP = """\
  *)
    echo "error: unknown step '$_gm_step'" >&2
    exit 2
    ;;
esac
"""


def _interpreter(program: str, *, ambient_fallback: bool = False) -> list[str]:
    """``/bin/sh -c <program> <name>``: pulumi-command appends the step's verb, which the program reads as ``$1``.

    ``ambient_fallback``: a recorded kubeconfig file that is gone is replaced by the ambient kubeconfig (with a
    warning) instead of failing the step."""
    prelude = "_gm_ambient_fallback=yes\n" if ambient_fallback else ""
    return [SHELL, "-c", prelude + _PREAMBLE + program, FIELD_MANAGER]


@dataclass(frozen=True)
class ShellStep:
    """A script as pulumi-command runs it: ``interpreter`` plus one of ``verbs`` as the command."""

    interpreter: list[str]
    verbs: tuple[str, ...]

    def argv(self, verb: str) -> list[str]:
        """The process pulumi-command starts for ``verb`` (``run`` in pulumi-command's ``local`` package)."""
        if verb not in self.verbs:
            raise ValueError(f"{verb!r} is not a step of this script ({', '.join(self.verbs)})")
        return [*self.interpreter, verb]


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


def _names(identity: RemoteIdentity) -> str:
    return (
        f"GM_NAMESPACE={shlex.quote(identity.namespace)}\n"
        f"GM_TOKEN_SECRET={shlex.quote(identity.token_secret)}\n"
        f"GM_CLIENT_CERT_SECRET={shlex.quote(identity.client_cert_secret)}\n"
    )


_APPLY_TOKEN = f"""\
_gm_apply_token() {{
  if ! k apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f - >/dev/null 2>&1; then
    echo "error: could not put the bootstrap token in place in namespace $GM_NAMESPACE (kubectl apply failed; \
kubectl's output is not shown because it may echo the token). Check that the remote cluster is reachable with the \
configured context or kubeconfig and that it may create Secrets in $GM_NAMESPACE." >&2
    exit 1
  fi
}}
"""


def token_step(identity: RemoteIdentity) -> ShellStep:
    """The token Command's steps: :data:`PLACE_TOKEN` (create; a token guard on the provider removes the token if the
    run ends before the agent holds its certificate), :data:`KEEP_TOKEN` (update, nothing to do: the certificate
    step places a token whenever the agent needs one), :data:`FORGET_IDENTITY` (delete: the token and the client
    certificate; what is already gone is fine).

    The Command ignores later changes of its environment and stdin (how the cluster is reached, a rotated token), so
    its delete runs with the access recorded at registration; if that kubeconfig file is gone by then (another CI
    runner, say), the delete falls back to the ambient kubeconfig and the recorded context, and says so.
    """
    program = (
        _names(identity)
        + _APPLY_TOKEN
        + _START_GUARD
        + f"""\
case "$_gm_step" in
  {PLACE_TOKEN})
    if [ -n "${{GM_ADOPT:-}}" ]; then
      # Taking over a registered agent: its identity stays as it is (the certificate step checks it).
      echo "adopting the agent in namespace $GM_NAMESPACE: its identity is left as it is" >&2
      exit 0
    fi
    # A client certificate that exists before this registration's agent was installed is stale: the certificate
    # step would take it for success (meshctl does) while the agent cannot use it.
    k delete secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found --wait=false >/dev/null
    # Watch the provider (this step's parent, alive for the whole run): if the run ends before the agent holds its
    # certificate (cancelled during the release, say), the token goes with it.
    _gm_start_guard "$PPID"
    _gm_apply_token
    echo "bootstrap token in place in namespace $GM_NAMESPACE" >&2
    ;;
  {KEEP_TOKEN})
    echo "bootstrap token: nothing to do; the client certificate step places it whenever the agent needs it" >&2
    ;;
  {FORGET_IDENTITY})
    if ! k delete secret "$GM_TOKEN_SECRET" "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null
    then
      echo "error: could not remove the bootstrap token and the agent's client certificate from namespace \
$GM_NAMESPACE with the cluster access recorded at registration. Restore that access (context, kubeconfig) and run \
pulumi destroy again, or delete the secrets $GM_TOKEN_SECRET and $GM_CLIENT_CERT_SECRET yourself." >&2
      exit 1
    fi
    echo "removed the bootstrap token and the agent's client certificate from namespace $GM_NAMESPACE" >&2
    ;;
"""
        + _UNKNOWN_STEP
    )
    return ShellStep(
        interpreter=_interpreter(program, ambient_fallback=True), verbs=(PLACE_TOKEN, KEEP_TOKEN, FORGET_IDENTITY)
    )


# The token guard: runs detached (its own session, so neither a kill of the step nor the kill of the provider's process
# group at the end of a run reaches it) while the token is in place. Once the process it watches is gone, it removes the
# token unless the agent holds its client certificate by then: a token without a certificate never outlives the run
# that placed it, whether that run ended well, failed, or was cancelled (pulumi-command's cancel is a SIGKILL, which
# skips a step's EXIT trap). With a certificate, the token's fate is the certificate step's (removed, or kept for 2.x).
# Arguments: the PID to watch, its own private directory (a copy of the kubeconfig in use, and the PID of the step's
# watch, if any), and the step's private directory: a killed step leaves both behind, with a kubeconfig in them.
_TOKEN_GUARD = f"""\\
while kill -0 "$1" 2>/dev/null; do sleep 1; done
_gm_own=$2
rm -rf "$3"
if [ -f "$_gm_own/watch" ]; then kill "$(cat "$_gm_own/watch")" 2>/dev/null || true; fi
if [ -f "$_gm_own/kubeconfig" ]; then KUBECONFIG="$_gm_own/kubeconfig"; export KUBECONFIG; fi
if [ -n "${{GM_KUBE_CONTEXT:-}}" ]; then set -- --context "$GM_KUBE_CONTEXT"; else set --; fi
# The cluster may be unreachable right now (that may be why the run failed): keep trying for a while.
_gm_deadline=$(( $(date +%s) + {TOKEN_GUARD_SECONDS} ))
while :; do
  if _gm_cert=$("$KUBECTL" "$@" get secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name); then
    if [ -n "$_gm_cert" ]; then break; fi
    if "$KUBECTL" "$@" delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null; then break; fi
  fi
  if [ "$(date +%s)" -ge "$_gm_deadline" ]; then break; fi
  sleep {TOKEN_GUARD_RETRY_SECONDS}
done
rm -rf "$_gm_own"
"""

_START_GUARD = f"""\
_gm_guard_pid=
# _gm_start_guard PID: start the token guard watching PID (see _TOKEN_GUARD).
_gm_start_guard() {{
  _gm_guard_dir=$(umask 077 && mktemp -d)
  if [ -n "${{KUBECONFIG:-}}" ] && [ -f "$KUBECONFIG" ]; then cp "$KUBECONFIG" "$_gm_guard_dir/kubeconfig"; fi
  export KUBECTL GM_TOKEN_SECRET GM_CLIENT_CERT_SECRET GM_NAMESPACE
  if [ -n "${{GM_KUBE_CONTEXT:-}}" ]; then export GM_KUBE_CONTEXT; fi
  if command -v setsid >/dev/null 2>&1; then
    setsid {SHELL} -c {shlex.quote(_TOKEN_GUARD)} gm-token-guard "$1" "$_gm_guard_dir" "$_gm_dir" </dev/null >/dev/null 2>&1 &
  else
    {SHELL} -c {shlex.quote(_TOKEN_GUARD)} gm-token-guard "$1" "$_gm_guard_dir" "$_gm_dir" </dev/null >/dev/null 2>&1 &
  fi
  _gm_guard_pid=$!
}}
# _gm_stop_guard: the step cleaned up after itself; its guard has nothing left to do.
_gm_stop_guard() {{
  if [ -n "$_gm_guard_pid" ]; then kill "$_gm_guard_pid" 2>/dev/null || true; rm -rf "$_gm_guard_dir"; fi
}}
# _gm_remove_token: remove the token, saying so only when there was one. If the cluster does not answer, the guard
# (still running) keeps trying.
_gm_remove_token() {{
  if _gm_removed=$(k delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name 2>/dev/null); then
    _gm_stop_guard
    if [ -n "$_gm_removed" ]; then echo "bootstrap token removed from namespace $GM_NAMESPACE" >&2; fi
  else
    echo "warning: could not remove the bootstrap token from namespace $GM_NAMESPACE now; a guard keeps trying for \
{TOKEN_GUARD_SECONDS // 60} minutes, and the next pulumi up removes it" >&2
    return 1
  fi
}}
"""


def client_certificate_step(
    identity: RemoteIdentity,
    *,
    cluster_name: str,
    agent_deployment: str,
    timeout_seconds: int,
    remove_token: bool,
    chunk_seconds: int = WAIT_CHUNK_SECONDS,
) -> ShellStep:
    """:data:`ENSURE_CERTIFICATE`: the agent holds its client certificate when this step ends well.

    If the certificate exists, a token left behind is removed (with ``remove_token``) and nothing else happens, so a
    rotated token is never put back on a registered cluster. Otherwise the token (manifest on stdin) is put in
    place, the certificate is watched for with progress lines, and the token is removed when the step ends: on
    success only with ``remove_token``, on a failure always, on a kill by the token guard. The relay
    address and authority for the timeout message come from the environment (``GM_RELAY_ADDRESS``,
    ``GM_RELAY_AUTHORITY``): the address may be discovered, so it is not known when the script text is built. The
    timeout message names ``agent_deployment``, whose logs say why (the generation's agent Deployment).
    """
    keep = (
        ""
        if remove_token
        else 'if [ "$_gm_status" -eq 0 ]; then _gm_stop_guard; return 0; fi  # registered: the token stays\n  '
    )
    removal = f"""\
_gm_token_placed=
_gm_on_exit() {{
  if [ -z "$_gm_token_placed" ]; then _gm_stop_guard; return 0; fi  # this run put no token in place
  {keep}_gm_remove_token
}}
"""
    leftover = (
        """\
    if k get secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name 2>/dev/null | grep -q .; then
      k delete secret "$GM_TOKEN_SECRET" -n "$GM_NAMESPACE" --ignore-not-found >/dev/null
      echo "cluster $GM_CLUSTER: removed a bootstrap token left behind by an earlier run" >&2
    fi
"""
        if remove_token
        else ""
    )
    program = (
        _names(identity)
        + f"GM_CLUSTER={shlex.quote(cluster_name)}\nGM_AGENT_DEPLOYMENT={shlex.quote(agent_deployment)}\n"
        + f"GM_TIMEOUT={int(timeout_seconds)}\nGM_CHUNK={int(chunk_seconds)}\n"
        + _APPLY_TOKEN
        + _START_GUARD
        + removal
        + """\
# One watch per chunk: the API server first sends ADDED for a secret that exists, then events as they happen.
_gm_watch_for_certificate() {
  _gm_seconds=$1
  rm -f "$_gm_dir/events" && mkfifo "$_gm_dir/events"
  # kubectl itself in the background (not the function k, which would run in a subshell): $! must be kubectl, so
  # that the kill below ends the watch instead of orphaning it.
  if [ -n "${GM_KUBE_CONTEXT:-}" ]; then set -- --context "$GM_KUBE_CONTEXT"; else set --; fi
  "$KUBECTL" "$@" get --raw "/api/v1/namespaces/$GM_NAMESPACE/secrets?fieldSelector=metadata.name%3D$GM_CLIENT_CERT_SECRET&watch=1&timeoutSeconds=$_gm_seconds" \\
    > "$_gm_dir/events" 2> "$_gm_dir/watch-errors" &
  _gm_watch_pid=$!
  if [ -n "$_gm_guard_pid" ]; then echo "$_gm_watch_pid" > "$_gm_guard_dir/watch"; fi  # the guard ends it on a kill
  _gm_found=1
  if grep -q -m 1 -E '"type": *"(ADDED|MODIFIED)"' < "$_gm_dir/events"; then _gm_found=0; fi
  kill "$_gm_watch_pid" 2>/dev/null || true
  _gm_watch_status=0
  { wait "$_gm_watch_pid"; } 2>/dev/null || _gm_watch_status=$?
  if [ "$_gm_found" -ne 0 ] && [ "$_gm_watch_status" -ne 0 ]; then
    # The watch failed (not merely timed out): say why, and do not spin.
    echo "cluster $GM_CLUSTER: cannot watch secrets in namespace $GM_NAMESPACE: $(_gm_cause "$_gm_dir/watch-errors")" >&2
    sleep 1
  fi
  return "$_gm_found"
}
"""
        + f"""\
case "$_gm_step" in
  {ENSURE_CERTIFICATE})
    if ! _gm_present=$(k get secret "$GM_CLIENT_CERT_SECRET" -n "$GM_NAMESPACE" --ignore-not-found -o name \
2>"$_gm_dir/errors"); then
      echo "error: cluster $GM_CLUSTER is not reachable: $(_gm_cause "$_gm_dir/errors")" >&2
      exit 1
    fi
    if [ -n "$_gm_present" ]; then
{leftover}      echo "cluster $GM_CLUSTER: the agent holds its client certificate" >&2
      exit 0
    fi
    ;;
"""
        + _UNKNOWN_STEP
        + """\
_gm_start_guard "$$"
_gm_token_placed=yes
_gm_apply_token
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
  differs from the server's. Check: kubectl logs deploy/$GM_AGENT_DEPLOYMENT -n $GM_NAMESPACE on the remote cluster.
  The bootstrap token is removed now; the next pulumi up puts it in place again and retries.
GM_TIMEOUT_MESSAGE
    exit 1
  fi
  _gm_step_seconds=$GM_CHUNK
  if [ "$_gm_left" -lt "$_gm_step_seconds" ]; then _gm_step_seconds=$_gm_left; fi
  if _gm_watch_for_certificate "$_gm_step_seconds"; then
    _gm_elapsed=$(( $(date +%s) - _gm_start ))
    echo "cluster $GM_CLUSTER: the agent holds its client certificate (after ${_gm_elapsed}s)" >&2
    exit 0
  fi
  _gm_elapsed=$(( $(date +%s) - _gm_start ))
  if [ "$_gm_elapsed" -lt "$GM_TIMEOUT" ]; then
    echo "cluster $GM_CLUSTER: waiting for the agent's client certificate (${_gm_elapsed}s of ${GM_TIMEOUT}s)" >&2
  fi
done
"""
    )
    return ShellStep(interpreter=_interpreter(program), verbs=(ENSURE_CERTIFICATE,))


# Each word of $GM_OBJECTS is `namespace/<name>`, `helm-release/<ns>/<name>` (Helm's release secrets, labelled
# owner=helm) or `<resource>/<ns>/<name>` of any other namespaced kind, the last optionally suffixed `@owned`: such an
# object counts only if it lacks the label $GM_OWNER_LABEL (`key=value`), the stack's own mark. Each object that counts
# is printed, one per line. A cluster that cannot be asked prints `UNREACHABLE <kubectl's reason>` and nothing else.
_FIND_EXISTING = f"""\
case "$_gm_step" in
  {FIND_EXISTING})
    ;;
{_UNKNOWN_STEP}\
for _gm_ref in $GM_OBJECTS; do
  _gm_object=${{_gm_ref%@owned}}
  _gm_kind=${{_gm_object%%/*}}
  _gm_rest=${{_gm_object#*/}}
  _gm_ns=${{_gm_rest%%/*}}
  _gm_name=${{_gm_rest#*/}}
  case "$_gm_kind" in
    helm-crds)
      # CRDs that Helm installed for a release of this name in another namespace: Helm refuses to take them over
      # (its ownership check compares meta.helm.sh/release-namespace). Printed: the ref, then <namespace>/<crd>.
      if ! _gm_owned=$(k get crd -o "jsonpath={{range .items[*]}}{{.metadata.annotations.meta\\.helm\\.sh/release-name}} \\
{{.metadata.annotations.meta\\.helm\\.sh/release-namespace}} {{.metadata.name}}{{'\\n'}}{{end}}" 2>"$_gm_dir/errors"); then
        echo "UNREACHABLE $(_gm_cause "$_gm_dir/errors")"
        exit 0
      fi
      _gm_found=$(printf '%s\\n' "$_gm_owned" | awk -v r="$_gm_name" -v n="$_gm_ns" \\
        'NF == 3 && $1 == r && $2 != n {{ printf " %s/%s", $2, $3 }}')
      if [ -n "$_gm_found" ]; then echo "$_gm_ref$_gm_found"; fi
      continue ;;
    namespace) set -- namespace "$_gm_rest" ;;
    helm-release) set -- secrets -n "$_gm_ns" -l "owner=helm,name=$_gm_name" ;;
    *) set -- "$_gm_kind" "$_gm_name" -n "$_gm_ns" ;;
  esac
  if ! _gm_found=$(k get "$@" --ignore-not-found -o name 2>"$_gm_dir/errors"); then
    echo "UNREACHABLE $(_gm_cause "$_gm_dir/errors")"
    exit 0
  fi
  if [ -n "$_gm_found" ] && [ "$_gm_ref" != "$_gm_object" ] && [ -n "${{GM_OWNER_LABEL:-}}" ]; then
    # Ours (a replacement in this preview, not a leftover): it carries the stack's mark.
    _gm_found=$(k get "$_gm_kind" -n "$_gm_ns" --field-selector "metadata.name=$_gm_name" -l "$GM_OWNER_LABEL" -o name \
      2>/dev/null | grep -q . || echo "$_gm_found")
  fi
  if [ -n "$_gm_found" ]; then echo "$_gm_ref"; fi
done
"""


@dataclass(frozen=True)
class ExistingObjects:
    """What :func:`existing_objects_step` printed: the references that exist, or why the cluster could not be asked."""

    refs: frozenset[str]
    unreachable: str | None
    details: Mapping[str, str] = field(default_factory=dict)
    """Per reference, what the step printed after it."""


def parse_existing(stdout: str) -> ExistingObjects:
    """Parse the output of :func:`existing_objects_step`: a line per existing object, its reference first and what
    was found of it after (``helm-crds``: the ``<namespace>/<crd>`` that conflict)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    unreachable = next(
        (line.removeprefix("UNREACHABLE").strip() for line in lines if line.startswith("UNREACHABLE")), None
    )
    found = [line.split(maxsplit=1) for line in lines if not line.startswith("UNREACHABLE")]
    return ExistingObjects(
        refs=frozenset(words[0] for words in found),
        details={words[0]: words[1] for words in found if len(words) == 2},
        unreachable=unreachable,
    )


def existing_objects_step() -> ShellStep:
    """:data:`FIND_EXISTING`: which of the objects named in ``GM_OBJECTS`` exist (see :func:`objects_environment`)."""
    return ShellStep(interpreter=_interpreter(_FIND_EXISTING), verbs=(FIND_EXISTING,))


def objects_environment(refs: list[str], owner_label: str | None = None) -> dict[str, str]:
    """Environment of :func:`existing_objects_step`: the object references and the stack's own label (``key=value``)
    that marks an ``@owned`` object as the stack's."""
    environment = {"GM_OBJECTS": " ".join(refs)}
    if owner_label is not None:
        environment["GM_OWNER_LABEL"] = owner_label
    return environment


# Per secret named in $GM_RELAY_SECRETS (``name=key`` words): a line ``<name> keys <key>=<base64 length> ...``, then
# ``<name> value <base64 of key>`` when that key is there, or one line ``<name> MISSING``. The template prints no
# other key's value, so the CA's private key is never on stdout.
_READ_RELAY_SECRETS = f"""\
case "$_gm_step" in
  {READ_RELAY_SECRETS})
    ;;
{_UNKNOWN_STEP}\
for _gm_pair in $GM_RELAY_SECRETS; do
  _gm_name=${{_gm_pair%%=*}}
  _gm_key=${{_gm_pair#*=}}
  _gm_template="go-template={{{{with .data}}}}keys {{{{range \\$k, \\$v := .}}}}{{{{\\$k}}}}={{{{len \\$v}}}} {{{{end}}}}
{{{{with index . \\"$_gm_key\\"}}}}value {{{{.}}}}{{{{end}}}}{{{{else}}}}keys{{{{end}}}}"
  if _gm_out=$(k get secret "$_gm_name" -n "$GM_NAMESPACE" -o "$_gm_template" 2>"$_gm_dir/errors"); then
    printf '%s\\n' "$_gm_out" | sed "s/^/$_gm_name /"
  elif grep -q 'NotFound' "$_gm_dir/errors"; then
    echo "$_gm_name MISSING"
  else
    echo "error: cannot read secret $_gm_name in namespace $GM_NAMESPACE: $(_gm_cause "$_gm_dir/errors")" >&2
    exit 1
  fi
done
"""


def relay_secrets_step() -> ShellStep:
    """:data:`READ_RELAY_SECRETS`: the key lengths of each management relay secret and the value of the one key it
    needs. Names come from the environment (:func:`relay_secrets_environment`). Any other kubectl failure (cluster
    unreachable, RBAC) ends the script non-zero with kubectl's message, which holds no secret value."""
    return ShellStep(interpreter=_interpreter(_READ_RELAY_SECRETS), verbs=(READ_RELAY_SECRETS,))


def relay_secrets_environment(namespace: str, wanted: Mapping[str, str]) -> dict[str, str]:
    """Environment of :func:`relay_secrets_step`: the namespace and each ``secret=key`` to read."""
    return {ENV_NAMESPACE: namespace, ENV_RELAY_SECRETS: " ".join(f"{name}={key}" for name, key in wanted.items())}


@dataclass(frozen=True)
class RelaySecretsReport:
    """What :func:`relay_secrets_step` printed: per secret, key -> base64 length (None: no such secret), and the
    base64 value of the key the registration copies, where present."""

    keys: Mapping[str, Mapping[str, int] | None]
    values: Mapping[str, str]


def parse_relay_secrets_report(stdout: str) -> RelaySecretsReport:
    """Parse the output of :func:`relay_secrets_step`."""
    keys: dict[str, dict[str, int] | None] = {}
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        name, _, rest = line.strip().partition(" ")
        what, _, detail = rest.partition(" ")
        if not name:
            continue
        if what == "MISSING":
            keys[name] = None
        elif what == "keys":
            lengths: dict[str, int] = {}
            for item in detail.split():
                key, _, length = item.rpartition("=")
                lengths[key] = int(length) if length.isdigit() else 0
            keys[name] = lengths
        elif what == "value":
            values[name] = detail.strip()
    return RelaySecretsReport(keys=keys, values=values)
