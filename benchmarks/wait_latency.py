"""Client-certificate wait: latency and API load, with the real kubectl against a real Kubernetes API server.

The benchmark starts its own control plane (``lab.cluster.control_planes``: etcd, a kube-apiserver and its
controller manager on 127.0.0.1, built by ``scripts/e2e-tools.sh``; ``--bin-dir`` or ``GLOO_E2E_BIN_DIR`` names the
tools' folder, else the script asks ``scripts/e2e-tools.sh --print-bin-dir``). Each run takes a fresh namespace, runs
a wait script as pulumi-command would (``/bin/sh -c``, the token manifest on stdin, ``GM_KUBECONFIG_FILE`` /
``GM_KUBE_CONTEXT``, the kubectl built with the server as ``KUBECTL``), and makes the agent's client certificate
(``relay-client-tls-secret``) appear a fixed time after the token did. Measured:

* detect latency: from the secret's creation (the create request returned) to the token's removal, seen by the
  benchmark's own watch on the namespace's secrets (the script has seen the certificate by then);
* finish latency: from the secret's creation to the script's exit;
* requests per minute while waiting: the API server's own counts (``apiserver_request_total`` in ``/metrics``) of
  requests for secrets in a namespace between the token appearing and the secret being created: GETs, LISTs and
  watches started (a watch is counted when it ends, so those still open are taken from
  ``apiserver_longrunning_requests``). The controller manager's cluster-wide informer requests are not counted;
  nothing else asks the server for namespaced secrets (see ``lab/observe.py``).

Methods, each putting the token in place first and removing it last:

* ``watch``: this project's script (``gloo_mesh_registration.lifecycle.client_certificate_step``): one
  ``kubectl get --raw ...?watch=1&timeoutSeconds=<chunk>`` per chunk (15 s by default);
* ``kubectl wait``: ``kubectl wait --for=create secret/relay-client-tls-secret`` (kubectl 1.31+), which the watch
  replaced;
* ``poll 5 s``: meshctl 1.x's ``waitForClientCert``: one GET of the secret, then 5 s of sleep, until it exists
  (emulated with ``kubectl get --raw`` of the secret, one request per poll).

The secret appears ``--appear-after`` seconds (default 20) after the token, plus 0, 1.7, 3.4 ... s in successive
runs, so that a polling method is caught at different points of its period. After each run, what the script left
running in its process group is counted ("left running") and stopped, so that it cannot add to the next run's
counts. A second table times the other kubectl step of every preview and up: the relay secrets read (an invoke),
which runs once per management plane (per management Provider shared by the registrations, as in ``__main__.py``),
else once per registration.

    python -m benchmarks.wait_latency            # 3 runs per method, 20 s waits, 15 s chunks (about 5 minutes)
    python -m benchmarks.wait_latency --quick    # 1.5 s waits, 1 s chunks, one run: the smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.benchlib import (
    machine_summary,
    print_table,
    summarize,
    tools_folder,
    verdict,
)
from gloo_mesh_registration.lifecycle import (
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_KUBECONFIG_FILE,
    FIELD_MANAGER,
    READ_RELAY_SECRETS,
    RemoteIdentity,
    client_certificate_step,
    relay_secrets_environment,
    relay_secrets_step,
    secret_manifest,
)
from lab.cluster import control_planes
from lab.engine_double import BOOTSTRAP_TOKEN, b64
from lab.observe import ApiClient, SecretWatch

TOKEN_SECRET = "relay-identity-token-secret"
CERT_SECRET = "relay-client-tls-secret"
CERT = {"tls.crt": b"cert", "tls.key": b"key", "ca.crt": b"ca"}
CLUSTER = "bench"
CONTEXT = "bench-remote"
MESHCTL_POLL_SECONDS = 5
METHODS = ("watch", "kubectl wait", "poll 5 s")
LATENCY_TARGET = 1.0
RATE_TARGET = 60.0  # requests per minute: one per second


def identity(namespace: str) -> RemoteIdentity:
    return RemoteIdentity(namespace, TOKEN_SECRET, CERT_SECRET)


def _kubectl_prelude() -> str:
    """What the comparison scripts share with the project's: kubeconfig and context from the environment."""
    return f"""\
set -eu
export KUBECONFIG="${ENV_KUBECONFIG_FILE}"
k() {{ "$KUBECTL" --context "${ENV_CONTEXT}" "$@"; }}
k apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f - >/dev/null
"""


def _remove_token(namespace: str) -> str:
    return f"k delete secret {TOKEN_SECRET} -n {namespace} --ignore-not-found >/dev/null\n"


def argv_for(method: str, namespace: str, *, timeout: int, chunk: int) -> list[str]:
    """The process of one wait method, as pulumi-command would start it."""
    if method == "watch":
        return client_certificate_step(
            identity(namespace),
            cluster_name="bench",
            agent_deployment="enterprise-agent",
            timeout_seconds=timeout,
            remove_token=True,
            chunk_seconds=chunk,
        ).argv(ENSURE_CERTIFICATE)
    return ["/bin/sh", "-c", _comparison_script(method, namespace, timeout=timeout)]


def _comparison_script(method: str, namespace: str, *, timeout: int) -> str:
    if method == "kubectl wait":
        return (
            _kubectl_prelude()
            + f"k wait --for=create secret/{CERT_SECRET} -n {namespace} --timeout={timeout}s >/dev/null\n"
            + _remove_token(namespace)
        )
    if method == "poll 5 s":
        path = shlex.quote(f"/api/v1/namespaces/{namespace}/secrets/{CERT_SECRET}")
        return (
            _kubectl_prelude()
            + f"until k get --raw {path} >/dev/null 2>&1; do sleep {MESHCTL_POLL_SECONDS}; done\n"
            + _remove_token(namespace)
        )
    raise ValueError(method)


class Bench:
    """The control plane of the benchmark and how its scripts reach it."""

    def __init__(self, api: ApiClient, kubectl: Path, kubeconfig: Path, work: Path) -> None:
        self.api = api
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.work = work
        self._namespaces = 0

    def namespace(self, prefix: str) -> str:
        self._namespaces += 1
        name = f"{prefix}-{self._namespaces}"
        self.api.create_namespace(name)
        return name

    def environment(self, home: str) -> dict[str, str]:
        """Each script with a HOME of its own (no kubectl discovery cache from an earlier run)."""
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBECTL")}
        env.update(
            {
                ENV_KUBECONFIG_FILE: str(self.kubeconfig),
                ENV_CONTEXT: CONTEXT,
                "HOME": home,
                "KUBECTL": str(self.kubectl),
            }
        )
        return env


def _left_running(pgid: int) -> int:
    """Live processes of the process group ``pgid`` (from /proc)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            count += 1
    return count


def run_wait(bench: Bench, method: str, *, appear_after: float, timeout: int, chunk: int) -> dict[str, Any]:
    """One wait: start the script, create the certificate ``appear_after`` s after the token appeared, measure."""
    api = bench.api
    namespace = bench.namespace("wait")
    with tempfile.TemporaryDirectory(dir=bench.work) as scratch, SecretWatch(api, namespace) as watch:
        stdin, stderr = Path(scratch) / "stdin", Path(scratch) / "stderr"
        stdin.write_text(secret_manifest(namespace, TOKEN_SECRET, {"token": b64(BOOTSTRAP_TOKEN)}, {}))
        before = api.settled_counts(own_watches=1)
        with stdin.open() as stdin_file, stderr.open("w") as stderr_file:
            process = subprocess.Popen(
                argv_for(method, namespace, timeout=timeout, chunk=chunk),
                stdin=stdin_file,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                env=bench.environment(scratch),
                start_new_session=True,
            )
            try:
                applied = watch.wait_for(TOKEN_SECRET, ("ADDED",), timeout=120)
            except AssertionError:
                process.kill()
                process.wait()
                raise RuntimeError(f"{method}: the script never put the token in place: {stderr.read_text()}") from None
            at_apply = api.counts()
            time.sleep(max(0.0, applied.at + appear_after - time.monotonic()))
            at_appear = api.counts()
            api.create_secret(namespace, CERT_SECRET, CERT, secret_type="kubernetes.io/tls")
            appeared = time.monotonic()
            returncode = process.wait(timeout=timeout + 60)
            finished = time.monotonic()
        left_running = _left_running(process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if returncode != 0:
            raise RuntimeError(f"{method}: the wait failed (exit {returncode}): {stderr.read_text()}")
        try:
            removal = watch.wait_for(TOKEN_SECRET, ("DELETED",), timeout=60)
        except AssertionError:
            raise RuntimeError(f"{method}: the token was not removed after the certificate appeared") from None
    waiting = at_appear.since(at_apply)
    watches = at_appear.since(before).watches_started("secrets")
    gets = waiting.requests("secrets", "GET")
    lists = waiting.requests("secrets", "LIST")
    window = appeared - applied.at
    requests = watches + gets + lists
    return {
        "method": method,
        "window": window,
        "requests": requests,
        "watches": watches,
        "gets": gets,
        "lists": lists,
        "per_minute": 60 * requests / window,
        "detect": removal.at - appeared,
        "finish": finished - appeared,
        "left_running": left_running,
    }


def run_relay_secrets_read(bench: Bench) -> dict[str, Any]:
    """The relay secrets read (an invoke; once per management plane in every preview and up)."""
    api = bench.api
    namespace = bench.namespace("read")
    api.create_secret(namespace, "relay-root-tls-secret", {"ca.crt": b"CA", "tls.key": b"KEY"})
    api.create_secret(namespace, TOKEN_SECRET, {"token": BOOTSTRAP_TOKEN.encode()})
    with tempfile.TemporaryDirectory(dir=bench.work) as home:
        environment = {
            **bench.environment(home),
            **relay_secrets_environment(namespace, {"relay-root-tls-secret": "ca.crt", TOKEN_SECRET: "token"}),
        }
        before = api.counts()
        started_cpu = os.times()
        started = time.monotonic()
        completed = subprocess.run(
            relay_secrets_step().argv(READ_RELAY_SECRETS), capture_output=True, text=True, env=environment, check=False
        )
        wall = time.monotonic() - started
        ended_cpu = os.times()
        after = api.counts()
    if completed.returncode != 0:
        raise RuntimeError(f"relay secrets read failed: {completed.stderr}")
    cpu = (ended_cpu.children_user - started_cpu.children_user) + (
        ended_cpu.children_system - started_cpu.children_system
    )
    served = after.since(before)
    gets = served.requests("secrets")
    discovery = served.discovery()
    return {"wall": wall, "cpu": cpu, "requests": gets + discovery, "gets": gets, "discovery": discovery}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method")
    parser.add_argument("--appear-after", type=float, default=20.0, help="seconds from the token to the secret")
    parser.add_argument("--chunk", type=int, default=15, help="seconds per watch of the project's script")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--quick", action="store_true", help="1.5 s waits, 1 s chunks, one run: the smoke test")
    parser.add_argument("--bin-dir", help="the tools' folder (scripts/e2e-tools.sh --print-bin-dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.appear_after, args.chunk = 1, 1.5, 1
    bin_dir = tools_folder(args.bin_dir)
    kubectl = bin_dir / "kubectl"
    version = subprocess.run([str(kubectl), "version", "--client"], capture_output=True, text=True, check=False)
    print(machine_summary())
    timeout = int(args.appear_after + 4 * MESHCTL_POLL_SECONDS + 30)

    with (
        tempfile.TemporaryDirectory(prefix="wait-latency-") as work,
        control_planes(bin_dir, Path(work) / "planes", (CLUSTER,)) as planes,
    ):
        kubeconfig = Path(work) / "kubeconfig"
        kubeconfig.write_text(planes.kubeconfig_text(CLUSTER, CONTEXT))
        kubeconfig.chmod(0o600)
        bench = Bench(ApiClient(planes, CLUSTER), kubectl, kubeconfig, Path(work))
        _, server = bench.api.request("GET", "/version")
        client = version.stdout.splitlines()[0] if version.stdout else "unknown"
        print(f"kubectl: {client} (built with the server); kube-apiserver {server.get('gitVersion', '?')}")

        runs: list[dict[str, Any]] = []
        for repeat in range(args.repeats):
            offset = (repeat * 1.7) % MESHCTL_POLL_SECONDS
            for method in args.methods:
                appear_after = args.appear_after + offset
                run = run_wait(bench, method, appear_after=appear_after, timeout=timeout, chunk=args.chunk)
                runs.append(run)
                print(
                    f"  run {repeat + 1}/{args.repeats} {method:<12} detect {run['detect']:.3f} s, "
                    f"{run['requests']} requests in {run['window']:.1f} s",
                    file=sys.stderr,
                )
        checks = [run_relay_secrets_read(bench) for _ in range(args.repeats)]

    def column(method: str, key: str) -> list[float]:
        return [float(r[key]) for r in runs if r["method"] == method]

    rows = []
    verdicts: dict[str, bool] = {}
    for method in args.methods:
        detect, finish = summarize(column(method, "detect")), summarize(column(method, "finish"))
        rate = summarize(column(method, "per_minute"))
        verdicts[method] = finish.median < LATENCY_TARGET and rate.median <= RATE_TARGET
        rows.append(
            [
                method,
                summarize(column(method, "window")).cell(1),
                summarize(column(method, "requests")).cell(0),
                f"{summarize(column(method, 'watches')).median:.0f} / {summarize(column(method, 'gets')).median:.0f}"
                f" / {summarize(column(method, 'lists')).median:.0f}",
                rate.cell(1),
                detect.cell(),
                finish.cell(),
                f"{summarize(column(method, 'left_running')).median:.0f}",
                verdict(verdicts[method]),
            ]
        )
    print_table(
        f"Client-certificate wait (median ±spread of {args.repeats} runs; watch chunks of {args.chunk} s)",
        [
            "method",
            "wait s",
            "requests while waiting",
            "watches / GETs / LISTs",
            "requests/min",
            "detect latency s",
            "finish latency s",
            "left running",
            f"latency < {LATENCY_TARGET:g} s, <= 1 request/s",
        ],
        rows,
    )
    print(
        f"\nmeshctl 1.x by construction: one GET every {MESHCTL_POLL_SECONDS} s = "
        f"{60 // MESHCTL_POLL_SECONDS} GET/min; latency up to {MESHCTL_POLL_SECONDS} s "
        f"({MESHCTL_POLL_SECONDS / 2:g} s on average)"
    )
    print(
        "requests: the API server's own counts (apiserver_request_total) of requests for secrets in a namespace, "
        "between the token appearing and the certificate's creation; watches are those started in that time. "
        "left running: processes of the script's process group still alive when the script had exited."
    )

    check_column: Callable[[str], list[float]] = lambda key: [float(c[key]) for c in checks]  # noqa: E731
    print_table(
        f"Relay secrets read, once per management plane per preview/up (median ±spread of {args.repeats} runs)",
        ["step", "wall s", "CPU s (kubectl)", "requests", "secrets GETs / discovery"],
        [
            [
                "relay secrets read (invoke)",
                summarize(check_column("wall")).cell(),
                summarize(check_column("cpu")).cell(),
                summarize(check_column("requests")).cell(0),
                f"{summarize(check_column('gets')).median:.0f} / {summarize(check_column('discovery')).median:.0f}",
            ]
        ],
    )
    print(
        "discovery: kubectl's requests for the server's API list (/api, /apis), with an empty discovery cache (a HOME "
        "of its own per run); the controller manager's discovery every 30 s can add to one run."
    )
    watch_holds = verdicts.get("watch", True)
    print(f"\nTarget (watch): latency < {LATENCY_TARGET:g} s with <= 1 request/s: {verdict(watch_holds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
