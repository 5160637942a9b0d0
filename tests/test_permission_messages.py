"""A permission RBAC refuses is named, with the fix, where the registration's own steps meet it (issue 25, item 3).

Before, the shell steps reported a refused read as a cluster that does not answer (the preview's look for objects left
behind then only warned, and the generation discovery said "not reachable"), and the relay secrets read failed the
program with a traceback. Now each step prints the refused permission, as the API server names it, and the program
fails with it and the role of ``rbac/`` that grants it. The steps run here as text on the engine double, and as shell
with a stand-in kubectl that answers as the real one does when RBAC refuses (``tests/e2e/test_least_privilege.py``
shows the same with the real kubectl, API server and CLI).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
from builders import registration_args, run_registrations

from gloo_mesh_registration import RemoteClusterRegistration
from gloo_mesh_registration.lifecycle import (
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_KUBECTL_CHECKED_BY,
    FIND_EXISTING,
    READ_RELAY_SECRETS,
    ForbiddenError,
    RemoteIdentity,
    ShellStep,
    client_certificate_step,
    existing_objects_step,
    parse_existing,
    parse_relay_secrets_report,
    relay_secrets_environment,
    relay_secrets_step,
)
from lab.engine_double import FakeClusters, run_program

MGMT, REMOTE = "kind-mgmt-cluster", "kind-remote-cluster"
REFUSED_SECRET = (
    'secrets "relay-root-tls-secret" is forbidden: User "ci" cannot get resource "secrets" in API group "" in the '
    'namespace "gloo-mesh"'
)
REFUSED_LIST = (
    'secrets is forbidden: User "ci" cannot list resource "secrets" in API group "" in the namespace "gloo-mesh"'
)


def registration(fake: FakeClusters, *, preview: bool = False, **inputs: Any) -> None:
    run_registrations(
        ("remote-cluster", registration_args("remote-cluster", MGMT, REMOTE, **inputs)), fake=fake, preview=preview
    )


def test_a_refused_relay_secrets_read_names_the_permission_and_the_role_that_grants_it() -> None:
    fake = FakeClusters()
    fake.forbidden_secrets["relay-root-tls-secret"] = REFUSED_SECRET
    with pytest.raises(ForbiddenError) as raised:
        registration(fake)
    assert str(raised.value) == (
        f"the relay secrets in namespace 'gloo-mesh' of the management cluster (context '{MGMT}') cannot be read: "
        f"{REFUSED_SECRET}. Fix: grant get on the secrets relay-root-tls-secret and relay-identity-token-secret in "
        "that namespace (the management role, rbac/management-1x.yaml in the gloo-mesh-registration repository, "
        "docs/rbac.md)."
    )


def test_a_refused_look_for_objects_left_behind_fails_the_preview_instead_of_warning() -> None:
    def program() -> pulumi.Output[Any]:
        args = registration_args("remote-cluster", MGMT, REMOTE, agent_generation="gloo-platform-2")
        return RemoteClusterRegistration("remote-cluster", args).client_certificate_issued

    platform = FakeClusters(platform=True)
    platform.forbidden[REMOTE] = REFUSED_LIST
    with pytest.raises(ForbiddenError) as raised:
        run_program(program, platform, preview=True)
    assert str(raised.value) == (
        f"cluster remote-cluster (context '{REMOTE}'): the preview cannot look for objects an earlier registration "
        f"left: {REFUSED_LIST}. Fix: grant that read (the workload role, rbac/workload-2x.yaml, or for previews alone "
        "rbac/preview-workload-2x.yaml, in the gloo-mesh-registration repository, docs/rbac.md)."
    )


def test_a_refused_look_for_the_server_names_both_deployments_and_the_other_fix() -> None:
    refused = (
        'deployments.apps "enterprise-networking" is forbidden: User "ci" cannot get resource "deployments" in API '
        'group "apps" in the namespace "gloo-mesh"'
    )
    fake = FakeClusters()
    fake.forbidden[MGMT] = refused
    with pytest.raises(ForbiddenError) as raised:
        registration(fake)
    assert str(raised.value) == (
        f"the management cluster (context '{MGMT}') refused the look for the server Deployment in namespace "
        f"'gloo-mesh': {refused}, so the agent generation cannot be discovered. Fix: grant get on the Deployments "
        "enterprise-networking and gloo-mesh-mgmt-server in that namespace (the management role, "
        "rbac/management-1x.yaml or rbac/management-2x.yaml in the gloo-mesh-registration repository, docs/rbac.md), "
        "or set agent_generation to one of gloo-mesh-enterprise-1, gloo-platform-2."
    )


# -- the shell steps, with a stand-in kubectl --------------------------------------------------------------------

STAND_IN_KUBECTL = """#!/bin/sh
# Answers as kubectl does against an API server that holds nothing and whose RBAC refuses $REFUSE (get: reads of
# secrets; patch: applies), or that does not answer (down); records each call.
echo "$*" >> "$CALLS"
case "$*" in
  *" delete "*) exit 0 ;;
  *"get namespace "*) exit 0 ;;  # with --ignore-not-found, a namespace that does not exist prints nothing
  *" apply "*)
    cat >/dev/null
    if [ "$REFUSE" = patch ]; then
      echo 'Error from server (Forbidden): secrets "relay-identity-token-secret" is forbidden: User "ci" cannot \
patch resource "secrets" in API group "" in the namespace "gloo-mesh"' >&2
      exit 1
    fi
    exit 0 ;;
esac
case "$REFUSE" in
  get) echo 'Error from server (Forbidden): secrets "relay-root-tls-secret" is forbidden: User "ci" cannot get \
resource "secrets" in API group "" in the namespace "gloo-mesh"' >&2 ;;
  down) echo 'error: dial tcp 127.0.0.1:6443: connect: connection refused' >&2 ;;
  *) exit 0 ;;
esac
exit 1
"""


def run(
    step: ShellStep, verb: str, tmp_path: Path, refuse: str, env: dict[str, str], stdin: str = ""
) -> tuple[str, str, list[str]]:
    """``verb`` of ``step`` as pulumi-command runs it, with the stand-in kubectl; (stdout, stderr, kubectl calls)."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(STAND_IN_KUBECTL)
    kubectl.chmod(0o755)
    calls = tmp_path / "calls"
    environment = {
        "PATH": os.environ["PATH"],
        "KUBECTL": str(kubectl),
        "CALLS": str(calls),
        "REFUSE": refuse,
        ENV_KUBECTL_CHECKED_BY: str(os.getpid()),  # the version check is skipped, as after the run's one check
        ENV_CONTEXT: "ctx",
        **env,
    }
    done = subprocess.run(step.argv(verb), input=stdin, capture_output=True, text=True, env=environment, timeout=60)
    return done.stdout, done.stderr, calls.read_text().splitlines() if calls.exists() else []


def test_the_relay_secrets_read_reports_a_refused_read_as_such(tmp_path: Path) -> None:
    env = relay_secrets_environment("gloo-mesh", {"relay-root-tls-secret": "ca.crt"})
    stdout, _, _ = run(relay_secrets_step(), READ_RELAY_SECRETS, tmp_path, "get", env)
    assert parse_relay_secrets_report(stdout).forbidden == {"relay-root-tls-secret": REFUSED_SECRET}


def test_the_look_for_objects_tells_a_refused_look_from_a_cluster_that_does_not_answer(tmp_path: Path) -> None:
    env = {"GM_OBJECTS": "secret/gloo-mesh/relay-root-tls-secret"}
    refused = parse_existing(run(existing_objects_step(), FIND_EXISTING, tmp_path, "get", env)[0])
    assert (refused.forbidden, refused.unreachable, refused.refs) == (REFUSED_SECRET, None, frozenset())
    down = parse_existing(run(existing_objects_step(), FIND_EXISTING, tmp_path, "down", env)[0])
    assert (down.forbidden, down.unreachable) == (None, "error: dial tcp 127.0.0.1:6443: connect: connection refused")


def test_nothing_is_looked_for_in_a_namespace_that_does_not_exist(tmp_path: Path) -> None:
    """A registration that creates its namespace: a preview-only role cannot be bound in it yet, and need not be."""
    env = {
        "GM_OBJECTS": "namespace/agents secret/agents/relay-root-tls-secret@owned helm-release/agents/enterprise-agent"
    }
    stdout, _, calls = run(existing_objects_step(), FIND_EXISTING, tmp_path, "get", env)
    assert parse_existing(stdout) == parse_existing("")
    assert [call for call in calls if "namespace agents" not in call] == []


def test_a_refused_token_names_the_permission_and_never_the_token(tmp_path: Path) -> None:
    """The token is put in place by the certificate step (and the token step); kubectl's output stays hidden (it may
    echo the token), but the clause that names the refused permission is shown."""
    identity = RemoteIdentity("gloo-mesh", "relay-identity-token-secret", "relay-client-tls-secret")
    step = client_certificate_step(
        identity, cluster_name="c", agent_deployment="enterprise-agent", timeout_seconds=5, remove_token=True
    )
    manifest = '{"apiVersion": "v1", "kind": "Secret", "data": {"token": "c2VjcmV0LXRva2Vu"}}'
    _, stderr, calls = run(step, ENSURE_CERTIFICATE, tmp_path, "patch", {}, stdin=manifest)
    assert "c2VjcmV0LXRva2Vu" not in stderr and "secret-token" not in stderr
    assert (
        "error: could not put the bootstrap token in place in namespace gloo-mesh: secrets "
        '"relay-identity-token-secret" is forbidden: User "ci" cannot patch resource "secrets" in API group "" in the '
        'namespace "gloo-mesh". Fix: grant it to this identity; the roles in rbac/ of the gloo-mesh-registration '
        "repository hold every permission the registration needs (docs/rbac.md)."
    ) in stderr
    assert any(" delete secret relay-identity-token-secret " in f" {call} " for call in calls), "no token left"
