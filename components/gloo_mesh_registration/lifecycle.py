"""The registration's shell steps, run with ``kubectl`` by pulumi-command: their Python side.

Why shell steps at all: the bootstrap token must exist only while the agent bootstraps, the client certificate is
written by the agent (not by Pulumi), and the wait for it is an action, not a desired state. Pulumi's kubernetes
resources cannot express those. The scripts, each run by pulumi-command:

* :func:`token_step` (a ``local.Command`` before the agent release): its create removes a stale client certificate
  left by an earlier registration and puts the bootstrap token in place for the agent's first start; its delete
  is the destroy clean-up of the agent's identity on the remote cluster (the token and the client certificate).
* :func:`client_certificate_step` (a ``local.run`` invoke after the KubernetesCluster, on every ``pulumi up``): when
  the agent holds its client certificate, removes a token left behind (by an interrupted run) and ends; otherwise
  puts the token in place, watches for the certificate while printing progress, and removes the token on every
  exit, success, failure or a kill (a guard process outlives the script for that).
* :func:`existing_objects_step` (a ``local.run`` invoke, in preview only): which of the objects a preview is about to
  create exist already, so the preview fails where ``pulumi up`` would (see :mod:`gloo_mesh_registration.preflight`).
* :func:`kubectl_check_step` (a plain ``local.run`` invoke, once per program run, before the first step that needs
  kubectl): kubectl is there and new enough; later steps of the run skip their own check (:func:`checked_kubectl`).
* :func:`relay_secrets_step` (a ``local.run`` invoke, also during preview): reports which keys the management relay
  secrets hold, with their lengths, and the value of the one key of each that the registration copies (``ca.crt``,
  the token). Invoke results are not stored in the state, so the rest of those secrets (the CA's private key) never
  reaches Pulumi at all.

The shell itself is in ``shell/*.sh`` (package data, checked by shellcheck in scripts/test.sh). A script is its
settings (``NAME=value`` lines made here), then those files, inlined: each script is the program of an explicit
``/bin/sh -c`` interpreter, because a Command's delete runs the script recorded in the state, not a file of whatever
version is installed then. The pulumi-command ``command`` is a short verb (:data:`PLACE_TOKEN`, ...), so a failure
reads ``running "place-bootstrap-token": <the cause>`` instead of the whole script first (pulumi-command prints the
command before the output). Secrets never appear in a script or an argument list: the token manifest arrives on
stdin, kubeconfig contents in the environment (written to a private temporary directory that is removed on exit).
"""

from __future__ import annotations

import functools
import json
import shlex
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, cast

import pulumi

from .args import ClusterAccess, kubeconfig_is_path
from .program_run import run_state

if TYPE_CHECKING:
    from pulumi_command.local import RunResult

WAIT_CHUNK_SECONDS = 15
"""The wait watches in chunks of this many seconds, printing progress between them.

A watch, not ``kubectl wait --for=create``: kubectl 1.37 implements that by polling (a GET every 0.5 s, about 120
requests a minute, measured against a real kube-apiserver 1.37 in benchmarks/wait_latency.py), while one watch per
chunk answers as soon as the agent writes its certificate (about 0.1 s after it), with one request per chunk."""

TOKEN_GUARD_SECONDS = 600
"""How long a token guard keeps trying to remove the token from a cluster that does not answer."""
TOKEN_GUARD_RETRY_SECONDS = 5

FIELD_MANAGER = "gloo-mesh-registration"

ENV_KUBECONFIG_FILE = "GM_KUBECONFIG_FILE"
"""A kubeconfig file path (plain: messages may name it)."""
ENV_KUBECONFIG_CONTENTS = "GM_KUBECONFIG_CONTENTS"
"""Kubeconfig contents (always a secret). Which of the two: :func:`~gloo_mesh_registration.args.kubeconfig_is_path`."""
ENV_CONTEXT = "GM_KUBE_CONTEXT"
ENV_NAMESPACE = "GM_NAMESPACE"
ENV_RELAY_SECRETS = "GM_RELAY_SECRETS"

PLACE_TOKEN = "place-bootstrap-token"
KEEP_TOKEN = "keep-bootstrap-token"
FORGET_IDENTITY = "forget-agent-identity"
ENSURE_CERTIFICATE = "ensure-client-certificate"
READ_RELAY_SECRETS = "read-relay-secrets"
FIND_EXISTING = "find-existing-objects"
CHECK_KUBECTL = "check-kubectl"
ENV_KUBECTL_CHECKED_BY = "GM_KUBECTL_CHECKED_BY"
"""The PID of the process that ran :data:`CHECK_KUBECTL` in this program run (pulumi-command's provider): a step
started by that same process skips the kubectl version check (a kubectl run each); any other checks again."""

SHELL = "/bin/sh"
"""POSIX shell of every step (pulumi-command's default would be ``cmd /C`` on Windows)."""

_REACH_THE_CLUSTER = ("preamble.sh", "require_kubectl.sh", "cluster_access.sh")
"""What every script starts with (after its settings): strict mode and clean-up, the kubectl check, the access."""


@functools.cache
def step_file(name: str) -> str:
    """A file of ``shell/`` as a script holds it: without the file's leading comment block (its documentation and
    shellcheck directives), which would only lengthen every script recorded in a state."""
    text = (resources.files(__package__) / "shell" / name).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return "".join(lines[start:])


def _settings(values: Mapping[str, str | int]) -> str:
    """The script's first lines: ``NAME=value`` for each of the step's settings, quoted for the shell."""
    return "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())


def _interpreter(settings: Mapping[str, str | int], *files: str) -> list[str]:
    """``/bin/sh -c <program> <name>``: pulumi-command appends the step's verb, which the program reads as ``$1``."""
    return [SHELL, "-c", _settings(settings) + "".join(step_file(name) for name in files), FIELD_MANAGER]


@dataclass(frozen=True)
class ShellStep:
    """A script as pulumi-command runs it: ``interpreter`` plus one of ``verbs`` as the command."""

    interpreter: list[str]
    verbs: tuple[str, ...]

    def __post_init__(self) -> None:
        # The verbs are the case labels of a shell/*.sh file; a constant and its file must not drift apart.
        missing = [verb for verb in self.verbs if f"\n  {verb})\n" not in self.interpreter[2]]
        if missing:
            raise ValueError(f"the script has no case branch for the step(s) {', '.join(missing)} (shell/*.sh)")

    def argv(self, verb: str) -> list[str]:
        """The process pulumi-command starts for ``verb`` (``run`` in pulumi-command's ``local`` package)."""
        if verb not in self.verbs:
            raise ValueError(f"{verb!r} is not a step of this script ({', '.join(self.verbs)})")
        return [*self.interpreter, verb]


def kubeconfig_variable(kubeconfig: str) -> str:
    """The variable that tells a script about ``kubeconfig``: :data:`ENV_KUBECONFIG_FILE` for a path,
    :data:`ENV_KUBECONFIG_CONTENTS` for contents, by the program's rule (the script never guesses)."""
    return ENV_KUBECONFIG_FILE if kubeconfig_is_path(kubeconfig) else ENV_KUBECONFIG_CONTENTS


class ForbiddenError(pulumi.RunError):
    """The API server refused a read a step needs (RBAC): the message names the permission, as the API server names
    it, and the role in ``rbac/`` that grants it (a ``RunError``: no traceback)."""


class KubectlError(pulumi.RunError):
    """The machine's kubectl cannot run the registration's steps (missing, or older than they need): the check's own
    message, which names the fix (a ``RunError``: no traceback)."""


def kubectl_check_step() -> ShellStep:
    """:data:`CHECK_KUBECTL`: kubectl is there and new enough (``require_kubectl.sh``, the check every step's script
    holds, here in a subshell); prints ``CHECKED <PID of the process that started the step>`` or ``PROBLEM
    <the check's message>`` and ends well either way (:func:`parse_kubectl_check`)."""
    interpreter = _interpreter({}, "preamble.sh")
    checked = "if _gm_problem=$( (\n" + step_file("require_kubectl.sh") + ") 2>&1 >/dev/null ); then _gm_problem=; fi\n"
    interpreter[2] += checked + step_file("kubectl_check.sh")
    return ShellStep(interpreter=interpreter, verbs=(CHECK_KUBECTL,))


def parse_kubectl_check(stdout: str) -> str:
    """The PID :func:`kubectl_check_step` printed; :class:`KubectlError` with the check's message if it failed."""
    verdict, _, detail = stdout.strip().partition(" ")
    if verdict != "CHECKED" or not detail:
        raise KubectlError(detail if verdict == "PROBLEM" else f"the kubectl check printed {stdout.strip()!r}")
    return detail


def checked_kubectl(parent: pulumi.Resource | None = None) -> dict[str, str]:
    """kubectl checked once per program run, the first time a step needs it, by a plain (blocking) invoke on the
    command provider of ``parent`` (the default one without): the environment that lets this run's later steps
    skip their own check. Each skipped check is a kubectl run saved, about 55 ms of CPU: two per cluster on a first
    registration, one on every later ``pulumi up``. A failed check (no kubectl, one too old) fails the run there,
    with the fix. Every step's environment starts with it."""
    run = run_state("kubectl-check")
    if "by" not in run:
        from pulumi_command import local

        ran = local.run(
            command=CHECK_KUBECTL,
            interpreter=kubectl_check_step().interpreter,
            logging=local.Logging.NONE,
            opts=pulumi.InvokeOptions(parent=parent),
        )
        run["by"] = parse_kubectl_check(ran.stdout)
    return {ENV_KUBECTL_CHECKED_BY: run["by"]}


def kubectl_environment(access: ClusterAccess) -> dict[str, pulumi.Input[str]]:
    """Environment for a script that reaches ``access`` with kubectl; kubeconfig contents stay secret. A kubeconfig
    that is an output is read only when it resolves: both variables are set then, the one that does not apply empty."""
    env: dict[str, pulumi.Input[str]] = {}
    if access.context is not None:
        env[ENV_CONTEXT] = access.context
    kubeconfig = access.kubeconfig
    if isinstance(kubeconfig, str):
        variable = kubeconfig_variable(kubeconfig)
        env[variable] = kubeconfig if variable == ENV_KUBECONFIG_FILE else pulumi.Output.secret(kubeconfig)
    elif kubeconfig is not None:
        given: pulumi.Output[str] = pulumi.Output.secret(kubeconfig)
        env[ENV_KUBECONFIG_FILE] = given.apply(lambda text: text if kubeconfig_is_path(text) else "")
        env[ENV_KUBECONFIG_CONTENTS] = given.apply(lambda text: "" if kubeconfig_is_path(text) else text)
    return env


def run_step(
    step: ShellStep,
    verb: str,
    access: ClusterAccess,
    environment: Mapping[str, pulumi.Input[str]],
    opts: pulumi.InvokeOutputOptions,
    *,
    stdin: pulumi.Input[str] | None = None,
    show_progress: bool = False,
) -> pulumi.Output[RunResult]:
    """Run ``verb`` of ``step`` once, as a ``command:local:run`` invoke (not stored in the state), on the cluster of
    ``access`` with ``environment`` added. ``show_progress``: stream the step's stderr lines to the progress display
    (pulumi-command's ``logging``); otherwise nothing is streamed. A run has no previous output to pass on, which
    ``add_previous_output_in_env`` says (benchmarks/evaluation.py's flat programs make the same invokes)."""
    from pulumi_command import local

    step.argv(verb)  # a verb of this script
    full: dict[str, pulumi.Input[str]] = {
        **checked_kubectl(opts.parent),
        **kubectl_environment(access),
        **environment,
    }
    return local.run_output(
        command=verb,
        interpreter=step.interpreter,
        stdin=stdin,
        environment=cast("pulumi.Output[Mapping[str, str]]", pulumi.Output.from_input(full)),
        logging=local.Logging.STDERR if show_progress else local.Logging.NONE,
        add_previous_output_in_env=False,
        opts=opts,
    )


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


def _identity_settings(identity: RemoteIdentity) -> dict[str, str | int]:
    return {
        "GM_NAMESPACE": identity.namespace,
        "GM_TOKEN_SECRET": identity.token_secret,
        "GM_CLIENT_CERT_SECRET": identity.client_cert_secret,
    }


def _token_settings() -> dict[str, str | int]:
    """What the steps that place a token need besides the identity: the field manager and the token guard."""
    return {
        "GM_FIELD_MANAGER": FIELD_MANAGER,
        "GM_GUARD_SECONDS": TOKEN_GUARD_SECONDS,
        "GM_GUARD_RETRY_SECONDS": TOKEN_GUARD_RETRY_SECONDS,
        "GM_TOKEN_GUARD": step_file("token_guard.sh"),
    }


def token_step(identity: RemoteIdentity) -> ShellStep:
    """The token Command's steps: :data:`PLACE_TOKEN` (create; a token guard on the provider removes the token if the
    run ends before the agent holds its certificate), :data:`KEEP_TOKEN` (update, nothing to do: the certificate
    step places a token whenever the agent needs one), :data:`FORGET_IDENTITY` (delete: the token and the client
    certificate; what is already gone is fine).

    The Command ignores later changes of its environment and stdin (how the cluster is reached, a rotated token), so
    its delete runs with the access recorded at registration; if that kubeconfig file is gone by then (another CI
    runner, say), the delete falls back to the ambient kubeconfig and the recorded context, and says so. Stacks
    registered before the program told the steps path or contents recorded ``GM_KUBECONFIG``, which this script
    alone still reads (``shell/recorded_kubeconfig.sh``).
    """
    settings = {**_identity_settings(identity), **_token_settings(), "_gm_ambient_fallback": "yes"}
    files = ("preamble.sh", "require_kubectl.sh", "recorded_kubeconfig.sh", "cluster_access.sh")
    return ShellStep(
        interpreter=_interpreter(settings, *files, "apply_token.sh", "start_guard.sh", "token_step.sh"),
        verbs=(PLACE_TOKEN, KEEP_TOKEN, FORGET_IDENTITY),
    )


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
    settings: dict[str, str | int] = {
        **_identity_settings(identity),
        "GM_CLUSTER": cluster_name,
        "GM_AGENT_DEPLOYMENT": agent_deployment,
        "GM_TIMEOUT": int(timeout_seconds),
        "GM_CHUNK": int(chunk_seconds),
        "GM_REMOVE_TOKEN": "yes" if remove_token else "no",
        **_token_settings(),
    }
    return ShellStep(
        interpreter=_interpreter(
            settings, *_REACH_THE_CLUSTER, "apply_token.sh", "start_guard.sh", "client_certificate.sh"
        ),
        verbs=(ENSURE_CERTIFICATE,),
    )


@dataclass(frozen=True)
class ExistingObjects:
    """What :func:`existing_objects_step` printed: the references that exist, or why the cluster could not be asked."""

    refs: frozenset[str]
    unreachable: str | None
    details: Mapping[str, str] = field(default_factory=dict)
    """Per reference, what the step printed after it."""
    forbidden: str | None = None
    """The permission the API server refused the look (RBAC), as it names it: the cluster answered, but not this."""


def parse_existing(stdout: str) -> ExistingObjects:
    """Parse the output of :func:`existing_objects_step`: a line per existing object, its reference first and what
    was found of it after (``helm-crds``: the ``<namespace>/<crd>`` that conflict)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]

    def reason(verdict: str) -> str | None:
        return next((line.removeprefix(verdict).strip() for line in lines if line.startswith(verdict)), None)

    found = [line.split(maxsplit=1) for line in lines if not line.startswith(("UNREACHABLE", "FORBIDDEN"))]
    return ExistingObjects(
        refs=frozenset(words[0] for words in found),
        details={words[0]: words[1] for words in found if len(words) == 2},
        unreachable=reason("UNREACHABLE"),
        forbidden=reason("FORBIDDEN"),
    )


def existing_objects_step() -> ShellStep:
    """:data:`FIND_EXISTING`: which of the objects named in ``GM_OBJECTS`` exist (see :func:`objects_environment`)."""
    return ShellStep(interpreter=_interpreter({}, *_REACH_THE_CLUSTER, "find_existing.sh"), verbs=(FIND_EXISTING,))


def objects_environment(refs: list[str], owner_label: str | None = None) -> dict[str, str]:
    """Environment of :func:`existing_objects_step`: the object references and the stack's own label (``key=value``)
    that marks an ``@owned`` object as the stack's."""
    environment = {"GM_OBJECTS": " ".join(refs)}
    if owner_label is not None:
        environment["GM_OWNER_LABEL"] = owner_label
    return environment


def relay_secrets_step() -> ShellStep:
    """:data:`READ_RELAY_SECRETS`: the key lengths of each management relay secret and the value of the one key it
    needs. Names come from the environment (:func:`relay_secrets_environment`). A read RBAC refuses is reported, for
    the program to say which permission is missing; any other kubectl failure (cluster unreachable) ends the script
    non-zero with kubectl's message, which holds no secret value."""
    return ShellStep(
        interpreter=_interpreter({}, *_REACH_THE_CLUSTER, "read_relay_secrets.sh"), verbs=(READ_RELAY_SECRETS,)
    )


def relay_secrets_environment(namespace: str, wanted: Mapping[str, str]) -> dict[str, str]:
    """Environment of :func:`relay_secrets_step`: the namespace and each ``secret=key`` to read."""
    return {ENV_NAMESPACE: namespace, ENV_RELAY_SECRETS: " ".join(f"{name}={key}" for name, key in wanted.items())}


@dataclass(frozen=True)
class RelaySecretsReport:
    """What :func:`relay_secrets_step` printed: per secret, key -> base64 length (None: no such secret), and the
    base64 value of the key the registration copies, where present; per secret whose read RBAC refused, the
    permission refused, as the API server names it."""

    keys: Mapping[str, Mapping[str, int] | None]
    values: Mapping[str, str]
    forbidden: Mapping[str, str] = field(default_factory=dict)


def parse_relay_secrets_report(stdout: str) -> RelaySecretsReport:
    """Parse the output of :func:`relay_secrets_step`."""
    keys: dict[str, dict[str, int] | None] = {}
    values: dict[str, str] = {}
    forbidden: dict[str, str] = {}
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
        elif what == "FORBIDDEN":
            forbidden[name] = detail.strip()
    return RelaySecretsReport(keys=keys, values=values, forbidden=forbidden)
