"""The shell steps as files (components/gloo_mesh_registration/shell/*.sh) and the scripts made of them.

The scripts run with the real kubectl in tests/e2e/test_lifecycle_kubectl.py; here: each script as a step sends it
is clean shell by shellcheck (the files are checked one by one in scripts/test.sh, this checks them put together),
every file is part of a step, and the steps are told path or contents by the program's rule."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pulumi
import pytest

from gloo_mesh_registration.args import ClusterAccess
from gloo_mesh_registration.lifecycle import (
    ENV_KUBECONFIG_CONTENTS,
    ENV_KUBECONFIG_FILE,
    KubectlError,
    RemoteIdentity,
    ShellStep,
    client_certificate_step,
    existing_objects_step,
    kubeconfig_variable,
    kubectl_check_step,
    kubectl_environment,
    parse_kubectl_check,
    relay_secrets_step,
    step_file,
    token_step,
)
from lab.engine_double import KUBECONFIG_CONTENTS

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
IDENTITY = RemoteIdentity("gloo-mesh", "relay-identity-token-secret", "relay-client-tls-secret")


def every_step() -> dict[str, ShellStep]:
    def certificate(remove_token: bool) -> ShellStep:
        return client_certificate_step(
            IDENTITY,
            cluster_name="c",
            agent_deployment="enterprise-agent",
            timeout_seconds=300,
            remove_token=remove_token,
        )

    return {
        "token": token_step(IDENTITY),
        "certificate-removing": certificate(True),
        "certificate-keeping": certificate(False),
        "find-existing": existing_objects_step(),
        "relay-secrets": relay_secrets_step(),
        "kubectl-check": kubectl_check_step(),
    }


@pytest.mark.parametrize("name", sorted(every_step()))
def test_each_script_as_sent_is_clean_shell(name: str) -> None:
    """SC2016: the token guard's program is single-quoted on purpose (a setting, run by ``/bin/sh -c``); SC2329:
    ``_gm_on_exit`` is called by the EXIT trap's handler, which shellcheck does not follow."""
    script = every_step()[name].interpreter[2]
    checked = subprocess.run(
        [str(SHELLCHECK), "--shell=sh", "--exclude=SC2016,SC2329", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_step_file_is_in_a_step_without_its_documentation() -> None:
    files = sorted(
        p.name for p in (resources.files("gloo_mesh_registration") / "shell").iterdir() if p.name.endswith(".sh")
    )
    assert len(files) >= 10
    scripts = [step.interpreter[2] for step in every_step().values()]
    for name in files:
        body = step_file(name)
        assert body and not body.startswith("#"), f"{name}: its leading comment block is not left out"
        quoted = "'" + body + "'"  # the token guard is a setting of the scripts that place a token
        assert any(body in script or quoted in script for script in scripts), f"{name} is in no step's script"


def test_a_step_whose_verb_has_no_branch_is_refused() -> None:
    step = existing_objects_step()
    with pytest.raises(ValueError, match="no case branch for the step"):
        ShellStep(interpreter=step.interpreter, verbs=("no-such-step",))


@pytest.mark.parametrize(
    ("kubeconfig", "variable"),
    [
        ("/home/me/.kube/config", ENV_KUBECONFIG_FILE),
        ("~/.kube/remote", ENV_KUBECONFIG_FILE),
        (KUBECONFIG_CONTENTS, ENV_KUBECONFIG_CONTENTS),
        ("  " + json.dumps({"apiVersion": "v1", "kind": "Config"}), ENV_KUBECONFIG_CONTENTS),
        ("\t{}", ENV_KUBECONFIG_CONTENTS),
        ("apiVersion: v1", ENV_KUBECONFIG_CONTENTS),
    ],
)
def test_the_step_is_told_path_or_contents_as_the_program_reads_it(kubeconfig: str, variable: str) -> None:
    access = ClusterAccess("remote", "ctx", kubeconfig, None)
    assert kubeconfig_variable(kubeconfig) == variable
    assert (variable == ENV_KUBECONFIG_FILE) == access.describe().startswith("context 'ctx' in kubeconfig file")
    environment = kubectl_environment(access)
    assert set(environment) == {"GM_KUBE_CONTEXT", variable}
    assert isinstance(environment[variable], pulumi.Output) == (variable == ENV_KUBECONFIG_CONTENTS)


def test_the_kubectl_check_is_read_strictly() -> None:
    """``CHECKED <pid>`` is the one success; ``PROBLEM <message>`` is the message, as the error; anything else (an
    empty line, a PID missing) is an error that shows what was printed."""
    assert parse_kubectl_check("CHECKED 123\n") == "123"
    with pytest.raises(KubectlError, match=r"^error: kubectl is not on PATH; install it$"):
        parse_kubectl_check("PROBLEM error: kubectl is not on PATH; install it\n")
    for printed in ("", "CHECKED", "OK 123"):
        with pytest.raises(KubectlError, match=f"^the kubectl check printed {printed!r}$"):
            parse_kubectl_check(printed)
