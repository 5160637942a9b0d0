"""What the real-engine modules ask about a registration: questions to the servers about one
registration (is it complete, is nothing of it there, is a token left behind), and the check that no secret value
leaks into an output.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .cluster import ControlPlanes
from .gloo import MGMT_NAMESPACE, ManagementPlane
from .pulumi_cli import PulumiProject, Result

KUBERNETES_CLUSTERS = "kubernetesclusters.multicluster.solo.io"
TOKEN = "relay-identity-token-secret"
CLIENT_CERT = "relay-client-tls-secret"
ROOT_CA = "relay-root-tls-secret"


def secret_values(plane: ManagementPlane) -> list[str]:
    """Every secret value the run handles, plain and base64-encoded: none may appear outside a secret."""
    values = [plane.ca_crt, plane.ca_key, plane.tls_crt, plane.token]
    return values + [base64.b64encode(v.encode()).decode() for v in values]


def assert_no_secret_in(text: str, plane: ManagementPlane, where: str) -> None:
    for value in secret_values(plane):
        for line in value.strip().splitlines()[1:2] or [value]:  # a PEM's first body line is enough to spot it
            assert line not in text, f"a secret value appears in {where}"


def get_json(planes: ControlPlanes, cluster: str, *args: str) -> dict[str, Any] | None:
    out = planes.kubectl(cluster, "get", *args, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def helm_releases(planes: ControlPlanes, server: str, namespace: str) -> list[tuple[str, str, str]]:
    """``(name, chart, status)`` of every Helm release in ``namespace`` of ``server``, as the real helm lists them."""
    listed = subprocess.run(
        [
            str(planes.bin_dir / "helm"),
            "--kubeconfig",
            str(planes.kubeconfig),
            "--kube-context",
            planes.clusters[server].context,
            "list",
            "--all",
            "-n",
            namespace,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [(r["name"], r["chart"], r["status"]) for r in json.loads(listed.stdout)]


def helm_uninstall(planes: ControlPlanes, server: str, namespace: str, release: str = "enterprise-agent") -> str:
    """``helm uninstall`` by hand, with the suite's helm."""
    done = subprocess.run(
        [
            str(planes.bin_dir / "helm"),
            "--kubeconfig",
            str(planes.kubeconfig),
            "--kube-context",
            planes.clusters[server].context,
            "uninstall",
            release,
            "-n",
            namespace,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def secret(planes: ControlPlanes, server: str, namespace: str, name: str) -> dict[str, Any] | None:
    return get_json(planes, server, "secret", name, "-n", namespace)


def has_secret(planes: ControlPlanes, server: str, namespace: str, name: str) -> bool:
    """Whether the secret exists (a bool, so a failed assertion never prints its data)."""
    return secret(planes, server, namespace, name) is not None


def kubernetes_cluster(planes: ControlPlanes, name: str, namespace: str = MGMT_NAMESPACE) -> dict[str, Any] | None:
    return get_json(planes, "mgmt", KUBERNETES_CLUSTERS, name, "-n", namespace)


def assert_registered(planes: ControlPlanes, server: str, name: str, namespace: str, agent_version: str) -> None:
    """The registration of ``name`` is complete: release deployed, KubernetesCluster, client certificate, no token."""
    assert helm_releases(planes, server, namespace) == [
        ("enterprise-agent", f"enterprise-agent-{agent_version}", "deployed")
    ], f"{name}: the agent release is not deployed"
    assert kubernetes_cluster(planes, name) is not None, f"{name}: no KubernetesCluster on the management cluster"
    root_ca = secret(planes, server, namespace, ROOT_CA)
    keys = sorted(root_ca["data"]) if root_ca is not None else None
    assert keys == ["ca.crt"], f"{name}: the CA copy holds {keys} (None: there is none), not ca.crt only"
    assert has_secret(planes, server, namespace, CLIENT_CERT), f"{name}: the agent has no client certificate"
    assert not has_secret(planes, server, namespace, TOKEN), f"{name}: the bootstrap token was left behind"


def assert_nothing_registered(planes: ControlPlanes, server: str, name: str, namespace: str) -> None:
    """Nothing of the registration of ``name`` is on either server."""
    assert get_json(planes, server, "namespace", namespace) is None, f"{name}: namespace {namespace} was created"
    assert kubernetes_cluster(planes, name) is None, f"{name}: a KubernetesCluster was created"


def error_lines(result: Result, *words: str) -> list[str]:
    """The lines of a run's output that hold any of ``words`` (case-insensitive), without duplicates."""
    seen: dict[str, None] = {}
    for line in result.output.splitlines():
        if any(word.lower() in line.lower() for word in words):
            seen.setdefault(line.strip(), None)
    return list(seen)


_STEP = re.compile(r"^\s*(?:[-+~<>]+\s?)?(?P<type>[\w.-]+:[\w./-]+:[\w.-]+): \((?P<op>[\w-]+)\)\s*$")
_URN = re.compile(r"^\s*\[urn=(?P<urn>[^\]]+)\]\s*$")


def planned_steps(diff_output: str) -> list[tuple[str, str]]:
    """``(operation, resource name)`` of every step a ``--diff`` output shows, reads and unchanged ones left out."""
    steps: list[tuple[str, str]] = []
    lines = diff_output.splitlines()
    for index, line in enumerate(lines):
        match = _STEP.match(line)
        if match is None or match["op"] in ("same", "read"):
            continue
        urn = next((m["urn"] for m in map(_URN.match, lines[index + 1 : index + 4]) if m is not None), "")
        steps.append((match["op"], urn.rsplit("::", 1)[-1]))
    return steps


def in_background(run: Callable[[], Result]) -> tuple[ThreadPoolExecutor, Future[Result]]:
    """A CLI run on a thread of its own, so a test can act on the servers while it runs."""
    pool = ThreadPoolExecutor(max_workers=1)
    return pool, pool.submit(run)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def up(cli: PulumiProject, *flags: str) -> Result:
    """``pulumi up --yes`` with ``flags`` (a preview first unless ``--skip-preview`` is among them)."""
    return cli.run("up", "--yes", *flags)


def assert_adoption_preview(preview_stdout: str, cluster_type: str) -> None:
    """A ``preview --diff`` of an adoption: the namespace, the CA copy, the release(s) and the KubernetesCluster
    (``cluster_type``) imported; nothing of the registration created, deleted or replaced."""
    for kind in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:Secret", "kubernetes:helm.sh/v3:Release"):
        assert f"= {kind}: (import)" in preview_stdout, preview_stdout[-6000:]
        assert f"+ {kind}: (create)" not in preview_stdout
    assert f"= {cluster_type}: (import)" in preview_stdout
    assert "(delete)" not in preview_stdout and "(replace)" not in preview_stdout
