"""Day-2 operations of docs/operations.md, run as the page says, with the real CLI and engine.

- Deregistering one cluster of a stack: its entry removed from the stack file, the preview plans deletes of that
  cluster's resources only, and ``pulumi up`` leaves no trace of it (KubernetesCluster, agent release, namespace,
  token, client certificate) while the other cluster stays registered, unchanged.
- Credentials from an exec credential plugin, as CI runners reach EKS (``aws eks get-token``) or GKE
  (``gke-gcloud-auth-plugin``): a kubeconfig whose user runs a command that prints an ``ExecCredential``. The stand-in
  plugin here prints the suite's client certificate (what the real plugins print is a bearer token for the cloud's
  authenticator, which the local API servers do not have); the kubeconfig itself holds no credential. Both the kubernetes
  provider and the kubectl steps must run the plugin.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.cluster import ControlPlanes
from lab.gloo import ManagementPlane, SimulatedAgent
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import (
    TOKEN,
    assert_registered,
    get_json,
    has_secret,
    helm_releases,
    kubernetes_cluster,
    planned_steps,
    up,
    wait_until,
)
from lab.scenarios import Lab

STAYS = ("ops-stays", "ops-stays-agent")
LEAVES = ("ops-leaves", "ops-leaves-agent")
EXEC = ("ops-exec", "ops-exec-agent")


@pytest.fixture(scope="module")
def agents(lab: Lab) -> Iterator[list[SimulatedAgent]]:
    started = [lab.agent(name, namespace).start() for name, namespace in (STAYS, LEAVES, EXEC)]
    yield started
    for agent in started:
        agent.stop()


class TwoClusters:
    """A stack of two clusters on the ``remote`` server, and a way to rewrite its stack file."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.cli = lab.project("ops", self.config([STAYS, LEAVES]))

    def config(self, clusters: list[tuple[str, str]]) -> dict[str, Any]:
        return self.lab.stack_config([self.lab.cluster_entry(name, namespace) for name, namespace in clusters])

    def keep_only(self, clusters: list[tuple[str, str]]) -> None:
        project_copy(ROOT, self.cli.project_dir, "ops", self.config(clusters))


@pytest.fixture(scope="module")
def two(lab: Lab, management_plane: ManagementPlane, agents: list[SimulatedAgent]) -> Iterator[TwoClusters]:
    stack = TwoClusters(lab)
    yield stack
    stack.cli.run("destroy", "--yes", "--skip-preview")


def test_removing_one_entry_plans_deletes_of_that_cluster_only(
    two: TwoClusters, lab: Lab, management_plane: ManagementPlane
) -> None:
    up(two.cli).check()
    for name, namespace in (STAYS, LEAVES):
        assert_registered(lab.planes, "remote", name, namespace, management_plane.agent_version)
    two.keep_only([STAYS])
    steps = planned_steps(two.cli.run("preview", "--diff").check().stdout)
    assert steps, "the preview plans nothing"
    assert {operation for operation, _ in steps} == {"delete"}, steps
    assert all(name.startswith(LEAVES[0]) for _, name in steps), steps


def test_up_deregisters_it_and_leaves_the_other_cluster_as_it_was(
    two: TwoClusters, lab: Lab, management_plane: ManagementPlane
) -> None:
    stays_release = helm_releases(lab.planes, "remote", STAYS[1])
    up(two.cli).check()
    name, namespace = LEAVES
    assert kubernetes_cluster(lab.planes, name) is None
    wait_until(lambda: get_json(lab.planes, "remote", "namespace", namespace) is None, f"namespace {namespace} gone")
    assert helm_releases(lab.planes, "remote", namespace) == []
    assert_registered(lab.planes, "remote", *STAYS, management_plane.agent_version)
    assert helm_releases(lab.planes, "remote", STAYS[1]) == stays_release
    up(two.cli, "--expect-no-changes").check()


def _exec_plugin_kubeconfig(planes: ControlPlanes, folder: Path) -> tuple[Path, Path]:
    """A kubeconfig of every server whose one user is an exec credential plugin (a stand-in of ``aws eks get-token``
    that prints the suite's client certificate as an ``ExecCredential``, and logs each run), and the plugin's log."""
    admin = yaml.safe_load(planes.kubeconfig.read_text())
    user = admin["users"][0]["user"]
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": base64.b64decode(user["client-certificate-data"]).decode(),
            "clientKeyData": base64.b64decode(user["client-key-data"]).decode(),
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "credential.json").write_text(json.dumps(credential))
    (folder / "credential.json").chmod(0o600)
    log = folder / "runs.log"
    plugin = folder / "get-token"
    plugin.write_text(f'#!/bin/sh\necho run >> "{log}"\ncat "{folder / "credential.json"}"\n')
    plugin.chmod(0o700)
    config = {
        **admin,
        "users": [
            {
                "name": "ci-runner",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": str(plugin),
                        "args": ["--cluster", "any"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [
            {**context, "context": {**context["context"], "user": "ci-runner"}} for context in admin["contexts"]
        ],
    }
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    return kubeconfig, log


def test_a_kubeconfig_with_an_exec_credential_plugin_registers_and_destroys(
    lab: Lab, management_plane: ManagementPlane, agents: list[SimulatedAgent], e2e_dir: Path
) -> None:
    kubeconfig, log = _exec_plugin_kubeconfig(lab.planes, e2e_dir / "exec-plugin")
    assert not {"client-key-data", "token"} & {
        key for user in yaml.safe_load(kubeconfig.read_text())["users"] for key in user["user"]
    }
    name, namespace = EXEC
    config = lab.stack_config(
        [{**lab.cluster_entry(name, namespace), "kubeconfig": str(kubeconfig)}], kubeconfig=str(kubeconfig)
    )
    cli: PulumiProject = lab.project("ops-exec", config)
    try:
        up(cli).check()
        assert_registered(lab.planes, "remote", name, namespace, management_plane.agent_version)
        runs_after_up = len(log.read_text().splitlines())
        # kubectl (the relay secrets read, the token and certificate steps) and the provider, per cluster role.
        assert runs_after_up >= 4, runs_after_up
        cli.run("destroy", "--yes", "--skip-preview").check()
        assert kubernetes_cluster(lab.planes, name) is None
        assert helm_releases(lab.planes, "remote", namespace) == []
        assert not has_secret(lab.planes, "remote", namespace, TOKEN)
    finally:
        cli.run("destroy", "--yes", "--skip-preview")
