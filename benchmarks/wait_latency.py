"""Client-certificate wait: latency and API load, with the real kubectl against the local fake Kubernetes API server.

Each run starts a fake API server (``tests/fakekube``), runs a wait script as pulumi-command would (``/bin/sh -c``,
the token manifest on stdin, ``GM_KUBECONFIG`` / ``GM_KUBE_CONTEXT``), and makes the agent's client certificate
(``relay-client-tls-secret``) appear a fixed time after the wait started (the token apply). Measured:

* detect latency: from the secret appearing to the script's next request, the token removal (the script has seen
  the certificate by then);
* finish latency: from the secret appearing to the script's exit;
* requests per minute while waiting: every API request between the token apply and the secret appearing (also
  without the ``GET /version`` that a version-dispatching kubectl, such as this machine's, makes at every start).

Methods, each putting the token in place first and removing it last:

* ``watch``: this project's script (``components.lifecycle.client_certificate_step``): one
  ``kubectl get --raw ...?watch=1&timeoutSeconds=<chunk>`` per chunk (15 s by default);
* ``kubectl wait``: ``kubectl wait --for=create secret/relay-client-tls-secret`` (kubectl 1.31+), which the watch
  replaced;
* ``poll 5 s``: meshctl 1.x's ``waitForClientCert``: one GET of the secret, then 5 s of sleep, until it exists
  (emulated with ``kubectl get --raw`` of the secret, one request per poll).

The secret appears ``--appear-after`` seconds (default 20) after the wait starts, plus 0, 1.7, 3.4 ... s in
successive runs, so that a polling method is caught at different points of its period. A second table times the
other kubectl step of every preview and up: the relay secrets read (an invoke), which runs once per management
plane (per management Provider shared by the registrations, as in ``__main__.py``), else once per registration.

    python benchmarks/wait_latency.py            # 3 runs per method, 20 s waits, 15 s chunks (about 4 minutes)
    python benchmarks/wait_latency.py --quick    # 1.5 s waits, 1 s chunks, one run: the smoke test
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks` and `components`

from benchmarks.benchlib import machine_summary, print_table, summarize, use_project_paths, verdict

use_project_paths()

from engine_double import BOOTSTRAP_TOKEN, b64  # noqa: E402 (after the path set-up)
from fakekube import FakeKubeApiServer, RecordedRequest  # noqa: E402

from components.lifecycle import (  # noqa: E402
    ENSURE_CERTIFICATE,
    ENV_CONTEXT,
    ENV_KUBECONFIG,
    FIELD_MANAGER,
    READ_RELAY_SECRETS,
    RemoteIdentity,
    client_certificate_step,
    relay_secrets_environment,
    relay_secrets_step,
    secret_manifest,
)

NS = "gloo-mesh"
IDENTITY = RemoteIdentity(NS, "relay-identity-token-secret", "relay-client-tls-secret")
TOKEN_MANIFEST = secret_manifest(NS, IDENTITY.token_secret, {"token": b64(BOOTSTRAP_TOKEN)}, {})
CERT = {"tls.crt": b"cert", "tls.key": b"key", "ca.crt": b"ca"}
CONTEXT = "bench-remote"
MESHCTL_POLL_SECONDS = 5
METHODS = ("watch", "kubectl wait", "poll 5 s")
LATENCY_TARGET = 1.0
RATE_TARGET = 60.0  # requests per minute: one per second


def _kubectl_prelude() -> str:
    """What the comparison scripts share with the project's: kubeconfig and context from the environment."""
    return f"""\
set -eu
export KUBECONFIG="${ENV_KUBECONFIG}"
k() {{ kubectl --context "${ENV_CONTEXT}" "$@"; }}
k apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f - >/dev/null
"""


def _remove_token() -> str:
    return f"k delete secret {IDENTITY.token_secret} -n {NS} --ignore-not-found >/dev/null\n"


def argv_for(method: str, *, timeout: int, chunk: int) -> list[str]:
    """The process of one wait method, as pulumi-command would start it."""
    if method == "watch":
        return client_certificate_step(
            IDENTITY, cluster_name="bench", timeout_seconds=timeout, remove_token=True, chunk_seconds=chunk
        ).argv(ENSURE_CERTIFICATE)
    return ["/bin/sh", "-c", _comparison_script(method, timeout=timeout)]


def _comparison_script(method: str, *, timeout: int) -> str:
    if method == "kubectl wait":
        return (
            _kubectl_prelude()
            + f"k wait --for=create secret/{IDENTITY.client_cert_secret} -n {NS} --timeout={timeout}s >/dev/null\n"
            + _remove_token()
        )
    if method == "poll 5 s":
        path = shlex.quote(f"/api/v1/namespaces/{NS}/secrets/{IDENTITY.client_cert_secret}")
        return (
            _kubectl_prelude()
            + f"until k get --raw {path} >/dev/null 2>&1; do sleep {MESHCTL_POLL_SECONDS}; done\n"
            + _remove_token()
        )
    raise ValueError(method)


def _environment(kubeconfig: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update({ENV_KUBECONFIG: str(kubeconfig), ENV_CONTEXT: CONTEXT, "HOME": str(kubeconfig.parent)})
    return env


def _is_token_apply(request: RecordedRequest) -> bool:
    return request.method == "PATCH" and request.path.endswith(f"/secrets/{IDENTITY.token_secret}")


def _is_token_delete(request: RecordedRequest) -> bool:
    return request.method == "DELETE" and request.path.endswith(f"/secrets/{IDENTITY.token_secret}")


def run_wait(method: str, *, appear_after: float, timeout: int, chunk: int) -> dict[str, Any]:
    """One wait: start the script, make the certificate appear ``appear_after`` s after the token apply, measure."""
    with tempfile.TemporaryDirectory() as scratch, FakeKubeApiServer() as api:
        api.put_namespace(NS)
        kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig", context=CONTEXT)
        stdin, stderr = Path(scratch) / "stdin", Path(scratch) / "stderr"
        stdin.write_text(TOKEN_MANIFEST)
        with stdin.open() as stdin_file, stderr.open("w") as stderr_file:
            process = subprocess.Popen(
                argv_for(method, timeout=timeout, chunk=chunk),
                stdin=stdin_file,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                env=_environment(kubeconfig),
            )
            applied = api.wait_for_request(_is_token_apply, timeout=60)
            if applied is None:
                process.kill()
                process.wait()
                raise RuntimeError(f"{method}: the script never put the token in place: {stderr.read_text()}")
            time.sleep(max(0.0, applied.time + appear_after - time.monotonic()))
            appeared = time.monotonic()
            api.put_secret(NS, IDENTITY.client_cert_secret, CERT)
            returncode = process.wait(timeout=timeout + 60)
            finished = time.monotonic()
        if returncode != 0:
            raise RuntimeError(f"{method}: the wait failed (exit {returncode}): {stderr.read_text()}")
        requests = api.requests
    waiting = [r for r in requests if applied.time < r.time <= appeared]
    removal = next((r for r in requests if r.time > appeared and _is_token_delete(r)), None)
    if removal is None:
        raise RuntimeError(f"{method}: the token was not removed after the certificate appeared")
    window = appeared - applied.time
    return {
        "method": method,
        "window": window,
        "requests": len(waiting),
        "watches": sum(r.is_watch for r in waiting),
        "version_probes": sum(r.path == "/version" for r in waiting),
        "gets": sum(r.method == "GET" and not r.is_watch and r.path != "/version" for r in waiting),
        "per_minute": 60 * len(waiting) / window,
        "per_minute_no_probes": 60 * sum(r.path != "/version" for r in waiting) / window,
        "detect": removal.time - appeared,
        "finish": finished - appeared,
    }


def run_relay_secrets_read() -> dict[str, Any]:
    """The relay secrets read (an invoke; once per management plane in every preview and up)."""
    with tempfile.TemporaryDirectory() as scratch, FakeKubeApiServer() as api:
        api.put_secret(NS, "relay-root-tls-secret", {"ca.crt": b"CA", "tls.key": b"KEY"})
        api.put_secret(NS, IDENTITY.token_secret, {"token": BOOTSTRAP_TOKEN.encode()})
        kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig", context=CONTEXT)
        environment = {
            **_environment(kubeconfig),
            **relay_secrets_environment(NS, {"relay-root-tls-secret": "ca.crt", IDENTITY.token_secret: "token"}),
        }
        started_cpu = os.times()
        started = time.monotonic()
        completed = subprocess.run(
            relay_secrets_step().argv(READ_RELAY_SECRETS), capture_output=True, text=True, env=environment, check=False
        )
        wall = time.monotonic() - started
        ended_cpu = os.times()
        if completed.returncode != 0:
            raise RuntimeError(f"relay secrets read failed: {completed.stderr}")
        cpu = (ended_cpu.children_user - started_cpu.children_user) + (
            ended_cpu.children_system - started_cpu.children_system
        )
        return {"wall": wall, "cpu": cpu, "requests": len(api.requests)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method")
    parser.add_argument("--appear-after", type=float, default=20.0, help="seconds from the wait's start to the secret")
    parser.add_argument("--chunk", type=int, default=15, help="seconds per watch of the project's script")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--quick", action="store_true", help="1.5 s waits, 1 s chunks, one run: the smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.appear_after, args.chunk = 1, 1.5, 1
    if shutil.which("kubectl") is None:
        print("error: kubectl is not on PATH", file=sys.stderr)
        return 2
    version = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True, check=False)
    print(machine_summary())
    print(f"kubectl: {version.stdout.splitlines()[0] if version.stdout else 'unknown'}")
    timeout = int(args.appear_after + 4 * MESHCTL_POLL_SECONDS + 30)

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        offset = (repeat * 1.7) % MESHCTL_POLL_SECONDS
        for method in args.methods:
            run = run_wait(method, appear_after=args.appear_after + offset, timeout=timeout, chunk=args.chunk)
            runs.append(run)
            print(
                f"  run {repeat + 1}/{args.repeats} {method:<12} detect {run['detect']:.3f} s, "
                f"{run['requests']} requests in {run['window']:.1f} s",
                file=sys.stderr,
            )

    def column(method: str, key: str) -> list[float]:
        return [float(r[key]) for r in runs if r["method"] == method]

    rows = []
    verdicts: dict[str, bool] = {}
    for method in args.methods:
        detect, finish, rate = summarize(column(method, "detect")), summarize(column(method, "finish")), None
        rate = summarize(column(method, "per_minute"))
        verdicts[method] = finish.median < LATENCY_TARGET and rate.median <= RATE_TARGET
        rows.append(
            [
                method,
                summarize(column(method, "window")).cell(1),
                summarize(column(method, "requests")).cell(0),
                f"{summarize(column(method, 'watches')).median:.0f} / {summarize(column(method, 'gets')).median:.0f}"
                f" / {summarize(column(method, 'version_probes')).median:.0f}",
                rate.cell(1),
                summarize(column(method, "per_minute_no_probes")).cell(1),
                detect.cell(),
                finish.cell(),
                verdict(verdicts[method]),
            ]
        )
    print_table(
        f"Client-certificate wait (median ±spread of {args.repeats} runs; watch chunks of {args.chunk} s)",
        [
            "method",
            "wait s",
            "requests while waiting",
            "watches / GETs / version probes",
            "requests/min",
            "requests/min without probes",
            "detect latency s",
            "finish latency s",
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
        "version probes: this machine's kubectl is a version dispatcher (Google Cloud SDK) that GETs /version at every "
        "start to pick a kubectl matching the server; a plain kubectl does not. Counted in requests/min, left out of "
        "the column without probes."
    )

    checks = [run_relay_secrets_read() for _ in range(args.repeats)]
    check_column: Callable[[str], list[float]] = lambda key: [float(c[key]) for c in checks]  # noqa: E731
    print_table(
        f"Relay secrets read, once per management plane per preview/up (median ±spread of {args.repeats} runs)",
        ["step", "wall s", "CPU s (kubectl)", "requests"],
        [
            [
                "relay secrets read (invoke)",
                summarize(check_column("wall")).cell(),
                summarize(check_column("cpu")).cell(),
                summarize(check_column("requests")).cell(0),
            ]
        ],
    )
    watch_holds = verdicts.get("watch", True)
    print(f"\nTarget (watch): latency < {LATENCY_TARGET:g} s with <= 1 request/s: {verdict(watch_holds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
