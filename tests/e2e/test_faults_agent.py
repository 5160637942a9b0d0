"""Agent faults with the real engine: an agent that never connects, a destroy half way, a Ctrl-C, moved cluster access,
a rotated token.

Each scenario has its own stack, cluster name and namespace on ``remote``, and a simulated agent of its own whose
``mode`` the test switches ("never": the agent cannot reach the relay). After each step both servers are asked what is
there. Secret watches start from a list's resourceVersion, so a token that exists for a moment is still seen.

Failures that name a bug raise an exception type of their own (a different failure of the same test is a real
failure), each named in its message.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE
from lab.cluster import ControlPlanes
from lab.gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane, SimulatedAgent
from lab.pulumi_cli import ROOT, PulumiProject, project_copy
from lab.registration_checks import get_json
from lab.scenarios import Lab, one_cluster_config

TOKEN = "relay-identity-token-secret"
CLIENT_CERT = "relay-client-tls-secret"
ROOT_CA = "relay-root-tls-secret"
RELEASE_V1 = "sh.helm.release.v1.enterprise-agent.v1"
AUTHORITY = "enterprise-networking.gloo-mesh"
KUBERNETES_CLUSTERS = "kubernetesclusters.multicluster.solo.io"
CTRL_C_CANCELS = "^C received; cancelling. If you would like to terminate immediately, press ^C again."
TOKEN_GONE_SECONDS = 30.0
"""How long after ``pulumi`` exits the token may still be there. The guard checks once a second; the rest is room for
a loaded machine's kubectl start-ups (without a guard the token would stay for good, so the bound still tells)."""


# -- bugs this module caught (each was a strict xfail until it was fixed; a failure names the bug again) -------------


class TokenLeftAfterCtrlCError(AssertionError):
    """The bootstrap token is still on the remote cluster after an interrupted ``pulumi up``."""


class AccessChangeIsAChangeError(AssertionError):
    """Moving the kubeconfig file is a change for the engine (``--expect-no-changes`` fails)."""


class PhantomTokenRemovalError(AssertionError):
    """The CLI output reports removing a bootstrap token that was not there."""


# -- helpers -----------------------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def secret_names(planes: ControlPlanes, namespace: str) -> set[str]:
    out = planes.kubectl("remote", "get", "secrets", "-n", namespace, "-o", "name")
    return {line.removeprefix("secret/") for line in out.split()}


def management_token(planes: ControlPlanes) -> str:
    encoded = planes.kubectl("mgmt", "get", "secret", TOKEN, "-n", MGMT_NAMESPACE, "-o", "jsonpath={.data.token}")
    return base64.b64decode(encoded).decode()


def set_management_token(planes: ControlPlanes, token: str) -> None:
    patch = json.dumps({"data": {"token": base64.b64encode(token.encode()).decode()}})
    planes.kubectl("mgmt", "patch", "secret", TOKEN, "-n", MGMT_NAMESPACE, "--type=merge", "-p", patch)


def assert_management_plane(
    planes: ControlPlanes, plane: ManagementPlane, cluster: str, *, registered: bool, token: str | None = None
) -> None:
    """The management server: the KubernetesCluster there iff ``registered``; the CRD and both relay secrets as the
    management plane has them (never touched by a registration)."""
    found = get_json(planes, "mgmt", KUBERNETES_CLUSTERS, cluster, "-n", MGMT_NAMESPACE)
    assert (found is not None) == registered, f"KubernetesCluster {cluster}: {found}"
    assert get_json(planes, "mgmt", "crd", KUBERNETES_CLUSTERS) is not None
    root = get_json(planes, "mgmt", "secret", ROOT_CA, "-n", MGMT_NAMESPACE)
    assert root is not None
    decoded = {key: base64.b64decode(value).decode() for key, value in root["data"].items()}
    assert decoded == {"ca.crt": plane.ca_crt, "tls.crt": plane.tls_crt, "tls.key": plane.ca_key}
    assert management_token(planes) == (plane.token if token is None else token)


@dataclass(frozen=True)
class StepProcess:
    pid: int
    what: str


def step_processes(planes: ControlPlanes, namespace: str) -> list[StepProcess]:
    """Processes of this session's registration scripts for ``namespace`` (a step, its kubectl, its token guard):
    found by the kubeconfig they were given and the namespace in their script or environment."""
    kubeconfig = str(planes.kubeconfig).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if not {b"KUBECONFIG=" + kubeconfig, b"GM_KUBECONFIG_FILE=" + kubeconfig} & set(environ):
            continue
        mine = f"GM_NAMESPACE={namespace}".encode()
        if mine in environ or mine + b"\n" in cmdline:
            args = cmdline.split(b"\0")
            found.append(StepProcess(int(entry.name), b" ".join(a[:40] for a in args[-3:]).decode(errors="replace")))
    return found


class SecretWatch:
    """Every event on the secrets of one namespace of ``remote`` from the moment it starts: one watch from a list's
    resourceVersion (events the server sends in order, none missed however brief), read by a thread as it comes."""

    SENTINEL = "faults-watch-sentinel"

    def __init__(self, planes: ControlPlanes, namespace: str) -> None:
        self._planes = planes
        self._namespace = namespace
        self.events: list[tuple[str, str]] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _kubectl(self) -> list[str]:
        planes = self._planes
        return [
            str(planes.bin_dir / "kubectl"),
            "--kubeconfig",
            str(planes.kubeconfig),
            "--context",
            planes.clusters["remote"].context,
        ]

    def start(self) -> SecretWatch:
        path = f"/api/v1/namespaces/{self._namespace}/secrets"
        listed = json.loads(self._planes.kubectl("remote", "get", "--raw", f"{path}?limit=1"))
        since = listed["metadata"]["resourceVersion"]
        self._process = subprocess.Popen(
            [*self._kubectl(), "get", "--raw", f"{path}?watch=1&resourceVersion={since}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if not line.strip():
                continue
            event = json.loads(line)
            with self._changed:
                self.events.append((event["type"], event["object"]["metadata"].get("name", "")))
                self._changed.notify_all()

    def wait_for(self, kind: str, name: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: (kind, name) in self.events, timeout=timeout)

    def stop(self) -> list[tuple[str, str]]:
        """Ends the watch once every event before now has arrived (a sentinel secret created now came through), and
        returns the events, the sentinel's left out."""
        try:
            sentinel = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": self.SENTINEL}}
            self._planes.kubectl("remote", "create", "-n", self._namespace, "-f", "-", input=json.dumps(sentinel))
            assert self.wait_for("ADDED", self.SENTINEL, timeout=30), "the secret watch ended early"
        finally:
            if self._process is not None:
                self._process.terminate()
                self._process.wait(timeout=10)
            if self._reader is not None:
                self._reader.join(timeout=10)
            self._planes.kubectl(
                "remote", "delete", "secret", self.SENTINEL, "-n", self._namespace, "--ignore-not-found", "--wait=false"
            )
        return [event for event in self.events if event[1] != self.SENTINEL]

    def token_events(self) -> list[str]:
        return [kind for kind, name in self.events if name == TOKEN]


@dataclass
class Registration:
    """One scenario's stack (its own project folder and state), cluster name, namespace and simulated agent."""

    cli: PulumiProject
    folder: Path
    planes: ControlPlanes
    chart_repo: ChartRepository
    plane: ManagementPlane
    agent: SimulatedAgent
    cluster: str
    settings: dict[str, Any]

    @property
    def namespace(self) -> str:
        return self.cluster

    def write_config(self, **changes: Any) -> None:
        """Rewrites the stack file with ``changes`` to the cluster entry (what a user edits)."""
        self.settings = {**self.settings, **changes}
        config = one_cluster_config(
            self.planes, self.chart_repo, name=self.cluster, namespace=self.namespace, **self.settings
        )
        project_copy(ROOT, self.folder, self.cli.stack, config)

    def secrets(self) -> set[str]:
        return secret_names(self.planes, self.namespace)

    def token_present(self) -> bool:
        return TOKEN in self.secrets()

    def issued(self) -> bool | None:
        outputs = self.cli.outputs()
        value = outputs.get("clusters", {}).get(self.cluster, {}).get("clientCertificateIssued")
        return None if value is None else bool(value)

    def assert_registered(self, token: str | None = None) -> None:
        """Both servers as after a successful ``pulumi up``: certificate there, token gone, KubernetesCluster there."""
        secrets = self.secrets()
        assert {ROOT_CA, CLIENT_CERT, RELEASE_V1} <= secrets, secrets
        assert TOKEN not in secrets, secrets
        assert_management_plane(self.planes, self.plane, self.cluster, registered=True, token=token)
        assert self.issued() is True

    def up_in_background(self, output: Path) -> subprocess.Popen[str]:
        with output.open("w") as handle:
            return self.cli.start("up", "--yes", "--skip-preview", stdout=handle, stderr=subprocess.STDOUT)


@contextmanager
def registration(
    lab: Lab, plane: ManagementPlane, cluster: str, *, mode: str, destroy_at_end: bool = True, **settings: Any
) -> Iterator[Registration]:
    agent = lab.agent(cluster, cluster, mode=mode, delay_seconds=0.5)
    cli = lab.project(cluster, lab.one_cluster_config(name=cluster, namespace=cluster, **settings))
    agent.start()
    try:
        yield Registration(cli, cli.project_dir, lab.planes, lab.chart_repo, plane, agent, cluster, dict(settings))
        if destroy_at_end:
            cli.run("destroy", "--yes", "--skip-preview").check()
    finally:
        agent.stop()


def timeout_failure(result_output: str, cluster: str, namespace: str, timeout: int, address: str) -> None:
    """The certificate step's timeout message: the cluster, the secret and namespace, the relay address, the authority."""
    assert (
        f"error: cluster {cluster}: the agent got no client certificate ({CLIENT_CERT} in namespace {namespace}) "
        f"within {timeout}s." in result_output
    ), result_output[-6000:]
    assert f"relay server address: {address}, authority: {AUTHORITY}" in result_output


def final_diagnostics(output: str) -> str:
    """The "Diagnostics:" section the CLI prints once a run is over, up to the next section (``Outputs:``,
    ``Resources:``, ``Duration:``). The command provider's ephemeral status messages never reach it (pulumi/pulumi
    ``pkg/backend/display/progress.go`` ``printDiagnostics`` skips them), so what users must read after the run has to
    be there: the program's own ``pulumi.log`` messages and its errors."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.rstrip() == "Diagnostics:"]
    assert starts, f"no Diagnostics section in the output:\n{output[-6000:]}"
    section: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if re.match(r"(Outputs|Resources|Duration):", line):
            break
        section.append(line)
    return "\n".join(section)


def no_pending_operations_nor_lock(reg: Registration) -> None:
    deployment = json.loads(reg.cli.export())["deployment"]
    assert not deployment.get("pending_operations"), deployment.get("pending_operations")
    locks = reg.cli.home / "state" / ".pulumi" / "locks"
    assert not [p for p in locks.rglob("*") if p.is_file()], "the stack is still locked"


def ctrl_c(reg: Registration, e2e_dir: Path, *, on: tuple[str, str], settle: float = 0.0) -> tuple[str, float]:
    """``pulumi up`` in the background; ``settle`` seconds after the secret event ``on`` in the namespace, one Ctrl-C
    (SIGINT to the CLI's process group: the CLI cancels, its providers get Cancel). Returns the CLI's output and when
    it exited."""
    watch = SecretWatch(reg.planes, reg.namespace).start()
    output = e2e_dir / f"{reg.cluster}-{time.monotonic_ns()}.out"
    process = reg.up_in_background(output)
    try:
        assert watch.wait_for(*on, timeout=180), output.read_text()[-6000:]
        time.sleep(settle)
        assert process.poll() is None, output.read_text()[-6000:]
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        watch.stop()
    exited = time.monotonic()
    text = output.read_text()
    print(f"--- pulumi up, Ctrl-C ({reg.cluster}) ---\n{text}")
    assert process.returncode != 0
    assert CTRL_C_CANCELS in text, text[-6000:]
    return text, exited


# -- 1. The agent never connects ---------------------------------------------------------------------------------

NEVER = "faults-never"
NEVER_TIMEOUT = 20


@pytest.fixture(scope="class")
def never_reg(lab: Lab, management_plane: ManagementPlane) -> Iterator[Registration]:
    with registration(
        lab,
        management_plane,
        NEVER,
        mode="never",
        clientCertTimeoutSeconds=NEVER_TIMEOUT,
    ) as created:
        yield created


class TestAgentNeverConnects:
    @pytest.fixture
    def reg(self, never_reg: Registration) -> Registration:
        return never_reg

    def test_up_fails_after_the_timeout_with_progress_and_no_token_left(self, reg: Registration) -> None:
        started = time.monotonic()
        result = reg.cli.run("up", "--yes", "--skip-preview")
        assert result.returncode != 0, result.output
        assert time.monotonic() - started >= NEVER_TIMEOUT
        # What a user reads once the run is over: the failed step's whole output, in the program's error.
        diagnostics = final_diagnostics(result.output)
        timeout_failure(diagnostics, NEVER, reg.namespace, NEVER_TIMEOUT, reg.plane.relay_address)
        assert f'exit status 1: running "{ENSURE_CERTIFICATE}":' in diagnostics, diagnostics
        assert "The bootstrap token is removed now; the next pulumi up puts it in place again and retries." in (
            diagnostics
        )
        assert f"bootstrap token removed from namespace {reg.namespace}" in diagnostics, diagnostics
        progress = re.findall(
            rf"cluster {NEVER}: waiting for the agent's client certificate \((\d+)s of {NEVER_TIMEOUT}s\)",
            diagnostics,
        )
        assert any(int(seconds) < NEVER_TIMEOUT for seconds in progress), diagnostics
        # The remote cluster: the release and the CA copy, neither the token nor a certificate.
        assert reg.secrets() == {ROOT_CA, RELEASE_V1}
        namespace = get_json(reg.planes, "remote", "namespace", reg.namespace)
        assert namespace is not None and namespace["metadata"]["labels"]["istio-injection"] == "disabled"
        # The management cluster: the KubernetesCluster was declared before the wait.
        assert_management_plane(reg.planes, reg.plane, NEVER, registered=True)
        assert reg.agent.certificates_written == 0
        assert reg.cli.outputs() == {}

    def test_the_next_up_completes_once_the_agent_answers(self, reg: Registration) -> None:
        reg.agent.mode = "answers"
        result = reg.cli.run("up", "--yes", "--skip-preview").check()
        # Re-issued by the program (step_report.py): pulumi-command's own lines are gone once the run is over.
        diagnostics = final_diagnostics(result.output)
        assert re.search(rf"cluster {NEVER}: the agent holds its client certificate \(after \d+s\)", diagnostics), (
            diagnostics
        )
        assert f"bootstrap token removed from namespace {reg.namespace}" in diagnostics, diagnostics
        reg.assert_registered()
        assert reg.agent.tokens_seen == [reg.plane.token]


# -- 2. Destroy from a half-registered state ---------------------------------------------------------------------

HALF = "faults-half"
HALF_TIMEOUT = 5


def test_destroy_after_a_failed_first_up_leaves_nothing_of_the_registration(
    lab: Lab, management_plane: ManagementPlane
) -> None:
    planes = lab.planes
    with registration(
        lab,
        management_plane,
        HALF,
        mode="never",
        destroy_at_end=False,
        clientCertTimeoutSeconds=HALF_TIMEOUT,
    ) as reg:
        failed = reg.cli.run("up", "--yes", "--skip-preview")
        assert failed.returncode != 0
        timeout_failure(failed.output, HALF, reg.namespace, HALF_TIMEOUT, management_plane.relay_address)
        assert reg.secrets() == {ROOT_CA, RELEASE_V1}
        assert_management_plane(planes, management_plane, HALF, registered=True)

        destroyed = reg.cli.run("destroy", "--yes", "--skip-preview").check()
        assert f"removed the bootstrap token and the agent's client certificate from namespace {HALF}" in (
            destroyed.output
        )
        assert get_json(planes, "remote", "namespace", reg.namespace) is None
        assert reg.secrets() == set()  # CA copy, token, client certificate, Helm's release records
        helm_records = planes.kubectl(
            "remote", "get", "secrets", "-A", "-l", "owner=helm", "-o", "jsonpath={.items[*].metadata.namespace}"
        )
        assert reg.namespace not in helm_records.split()
        assert_management_plane(planes, management_plane, HALF, registered=False)
        assert json.loads(reg.cli.export())["deployment"].get("resources") in (None, [])


# -- 3. Ctrl-C ---------------------------------------------------------------------------------------------------

INTERRUPT = "faults-interrupt"


@pytest.fixture(scope="class")
def interrupt_reg(lab: Lab, management_plane: ManagementPlane) -> Iterator[Registration]:
    with registration(
        lab,
        management_plane,
        INTERRUPT,
        mode="never",
        clientCertTimeoutSeconds=120,
    ) as created:
        yield created


class TestCtrlC:
    """A user's Ctrl-C: SIGINT to the CLI's process group, once (the CLI cancels; a second one terminates)."""

    @pytest.fixture
    def reg(self, interrupt_reg: Registration) -> Registration:
        return interrupt_reg

    def test_ctrl_c_as_soon_as_the_token_exists_leaves_no_token(self, reg: Registration, e2e_dir: Path) -> None:
        text, exited = ctrl_c(reg, e2e_dir, on=("ADDED", TOKEN))
        assert wait_until(lambda: not step_processes(reg.planes, reg.namespace), 10), step_processes(
            reg.planes, reg.namespace
        )
        assert reg.agent.certificates_written == 0
        # The KubernetesCluster comes after the release: not there.
        assert_management_plane(reg.planes, reg.plane, INTERRUPT, registered=False)
        gone = wait_until(lambda: not reg.token_present(), TOKEN_GONE_SECONDS - (time.monotonic() - exited))
        if not gone:
            in_state = "command:local:Command" in reg.cli.export()
            errors = sorted({line.strip() for line in text.splitlines() if "error:" in line})
            raise TokenLeftAfterCtrlCError(
                f"{TOKEN} is still in namespace {reg.namespace} {TOKEN_GONE_SECONDS:.0f} s after the interrupted "
                f"pulumi up exited (remote secrets: {sorted(reg.secrets())}; the token Command is "
                f"{'' if in_state else 'not '}in the state; the CLI's errors: {errors})"
            )

    def test_after_a_ctrl_c_the_next_up_converges(self, reg: Registration) -> None:
        """What a user does next with the file backend: nothing is pending and the stack is not locked, so just
        ``pulumi up`` (with its preview, as a user runs it)."""
        no_pending_operations_nor_lock(reg)
        reg.agent.mode = "answers"
        result = reg.cli.run("up", "--yes").check()
        assert "pending operations" not in result.output
        reg.assert_registered()
        reg.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes").check()
        assert not reg.token_present()

    def test_ctrl_c_during_the_certificate_wait_the_guard_removes_the_token(
        self, reg: Registration, e2e_dir: Path
    ) -> None:
        reg.agent.mode = "never"
        reg.planes.kubectl("remote", "delete", "secret", CLIENT_CERT, "-n", reg.namespace)
        # Only the certificate step puts the token in place now (the token Command exists): interrupt its wait.
        text, exited = ctrl_c(reg, e2e_dir, on=("ADDED", TOKEN), settle=2.0)
        assert wait_until(lambda: not reg.token_present(), TOKEN_GONE_SECONDS - (time.monotonic() - exited)), (
            f"{TOKEN} is still there {TOKEN_GONE_SECONDS:.0f} s after pulumi exited: {sorted(reg.secrets())}"
        )
        # Killed (pulumi-command's cancel is a SIGKILL of the script), so its own clean-up did not run: the guard did.
        assert "bootstrap token removed from namespace" not in text
        assert wait_until(lambda: not step_processes(reg.planes, reg.namespace), 10), step_processes(
            reg.planes, reg.namespace
        )
        assert {name for name in reg.secrets() if not name.startswith("sh.helm.release.v1.")} == {ROOT_CA}
        assert_management_plane(reg.planes, reg.plane, INTERRUPT, registered=True)
        no_pending_operations_nor_lock(reg)

        reg.agent.mode = "answers"
        result = reg.cli.run("up", "--yes").check()
        assert "pending operations" not in result.output
        reg.assert_registered()


# -- 4 and 5. A registered cluster: cluster access moved, token rotated ------------------------------------------

STEADY = "faults-steady"


@pytest.fixture(scope="class")
def steady_reg(lab: Lab, management_plane: ManagementPlane) -> Iterator[Registration]:
    with registration(
        lab,
        management_plane,
        STEADY,
        mode="answers",
        clientCertTimeoutSeconds=60,
    ) as created:
        created.cli.run("up", "--yes", "--skip-preview").check()
        created.assert_registered()
        yield created


class TestRegisteredCluster:
    @pytest.fixture
    def reg(self, steady_reg: Registration) -> Registration:
        return steady_reg

    def test_a_no_change_up_reports_no_token_removal(self, reg: Registration) -> None:
        watch = SecretWatch(reg.planes, reg.namespace).start()
        try:
            result = reg.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes")
        finally:
            watch.stop()
        assert result.returncode == 0, result.output[-6000:]
        assert watch.token_events() == [], watch.events
        assert f"cluster {STEADY}: the agent holds its client certificate" in final_diagnostics(result.output)
        reg.assert_registered()
        claims = sorted({line.strip() for line in result.output.splitlines() if "bootstrap token removed" in line})
        if claims:
            raise PhantomTokenRemovalError(f"no token existed during the run (secret watch: no event), yet: {claims}")

    def test_the_same_stack_file_on_another_runner_changes_nothing_and_places_no_token(
        self, reg: Registration, e2e_dir: Path
    ) -> None:
        """A kubeconfig given as `~/...` reaches the Provider and the steps as written, so another machine (another
        CI runner, another home) with the same stack file changes no input. Switching the stack file to that form is
        itself an edit: a Provider update, and nothing else."""
        runners = {name: e2e_dir / f"{STEADY}-{name}" for name in ("runner-a", "runner-b")}
        for home in runners.values():
            home.mkdir(parents=True, exist_ok=True)
            shutil.copy(reg.planes.kubeconfig, home / "kubeconfig")
        reg.cli.extra_env["HOME"] = str(runners["runner-a"])
        try:
            reg.write_config(kubeconfig="~/kubeconfig")
            edit = reg.cli.run("up", "--yes", "--skip-preview").check()
            changed = [line.strip() for line in edit.stdout.splitlines() if re.match(r"\s*[~+-]\s+[a-z-]+:", line)]
            assert changed and all("pulumi:providers:kubernetes" in line for line in changed), changed
            reg.cli.extra_env["HOME"] = str(runners["runner-b"])
            watch = SecretWatch(reg.planes, reg.namespace).start()
            try:
                preview = reg.cli.run("preview", "--diff", "--expect-no-changes")
                up = reg.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes")
            finally:
                events = watch.stop()
            assert watch.token_events() == [], events  # not even for a moment
            if preview.returncode != 0 or up.returncode != 0:
                changes = [
                    line.strip()
                    for line in (preview.stdout + up.output).splitlines()
                    if re.search(r"~ (pulumi:providers|kubeconfig)|no changes were expected", line)
                ]
                raise AccessChangeIsAChangeError(
                    f"preview exited {preview.returncode}, up --expect-no-changes exited {up.returncode}: {changes}"
                )
            reg.assert_registered()
        finally:
            reg.cli.extra_env.pop("HOME", None)
            reg.write_config(kubeconfig=str(reg.planes.kubeconfig))
            reg.cli.run("up", "--yes", "--skip-preview").check()

    def test_a_rotated_token_changes_nothing_until_the_certificate_is_lost_then_bootstraps_with_it(
        self, reg: Registration
    ) -> None:
        original = management_token(reg.planes)
        assert original == reg.plane.token
        rotated = f"e2e-rotated-token-{time.time_ns()}"
        set_management_token(reg.planes, rotated)
        try:
            watch = SecretWatch(reg.planes, reg.namespace).start()
            try:
                quiet = reg.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes")
            finally:
                watch.stop()
            assert quiet.returncode == 0, quiet.output[-6000:]
            assert watch.token_events() == [], watch.events  # the registered cluster never gets the new token
            reg.assert_registered(token=rotated)

            # The agent lost its certificate: the next up bootstraps again, with the token the server has now.
            written = reg.agent.certificates_written
            reg.planes.kubectl("remote", "delete", "secret", CLIENT_CERT, "-n", reg.namespace)
            watch = SecretWatch(reg.planes, reg.namespace).start()
            try:
                again = reg.cli.run("up", "--yes", "--skip-preview", "--expect-no-changes")
            finally:
                watch.stop()
            assert again.returncode == 0, again.output[-6000:]
            assert watch.token_events() == ["ADDED", "DELETED"], watch.events
            assert reg.agent.certificates_written == written + 1
            assert reg.agent.tokens_seen[-1] == rotated
            reg.assert_registered(token=rotated)
        finally:
            set_management_token(reg.planes, original)
        assert management_token(reg.planes) == reg.plane.token
