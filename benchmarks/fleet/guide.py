"""The guide's Helm path as a shell script per cluster (``GUIDE_STEPS``), for N clusters through ``xargs``: what the
Pulumi runs are measured against, on the same servers, with the same chart and the same agents.

The guide's ``helm install`` has no ``--wait``, and is left so: the script does not wait for the agent's Deployment
(the program's Helm release does, as the real chart has no ``skipAwait``); it waits for the agent after the
KubernetesCluster, in ``kubectl wait --for=create secret/relay-client-tls-secret``. So the agent's wait W is paid by
both, the script in its certificate wait, the program in its Helm release (then its certificate wait finds the
certificate there)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence

from benchmarks.fleet.bench import Bench, Registration, fleet, server_pids
from benchmarks.fleet.proc import cpu_of, tree_cpu
from benchmarks.fleet.runs import SCRIPT_OPS, Run
from lab.gloo import MGMT_NAMESPACE
from lab.guide import GUIDE_STEPS, guide_environment

CLUSTERS_RESOURCE = "kubernetesclusters.multicluster.solo.io"

REGISTER_ONE = """\
#!/bin/sh
# register-one.sh NAMESPACE CLUSTER CONTEXT: the guide's Helm steps for one cluster (lab/guide.py)
NS=$1 CLUSTER=$2 REMOTE=$3 WORK="$SCRIPTS_WORK/$2"
export NS CLUSTER REMOTE WORK
mkdir -p "$WORK"
exec /bin/sh "$SCRIPTS_WORK/guide-steps.sh"
"""


def run_script(bench: Bench, op: str, n: int, repeat: int) -> Run:
    """The guide's steps for N clusters through ``xargs``: one at a time, or ``--xargs-parallel`` at once."""
    prefix = "s" if op == SCRIPT_OPS[0] else "p"
    registrations = fleet(n, bench.remotes, prefix)
    bench.expect(registrations)
    folder = bench.work / "scripts" / f"{prefix}-{n}-{repeat}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guide-steps.sh").write_text(GUIDE_STEPS)
    (folder / "register-one.sh").write_text(REGISTER_ONE)
    (folder / "clusters").write_text(
        "".join(f"{r.namespace} {r.name} {bench.planes.clusters[r.server].context}\n" for r in registrations)
    )
    width = 1 if prefix == "s" else bench.xargs_parallel
    environment = {
        **guide_environment(bench.planes, bench.repo, bench.plane, home=bench.work / "operator-home"),
        "SCRIPTS_WORK": str(folder),
    }
    certificates, marks = bench.certificates(), bench.answer_marks()
    servers = server_pids(bench)
    cpu_before, servers_before = os.times(), cpu_of(servers)
    command = f"xargs -P {width} -L 1 /bin/sh {shlex.quote(str(folder / 'register-one.sh'))} < clusters"
    started = time.monotonic()
    done = subprocess.run(
        ["/bin/sh", "-c", command], cwd=folder, env=environment, capture_output=True, text=True, timeout=3600
    )
    seconds = time.monotonic() - started
    cpu_after, servers_after = os.times(), cpu_of(servers)
    if done.returncode != 0:
        raise RuntimeError(f"{op} (N={n}) exited {done.returncode}:\n{done.stderr[-6000:]}")
    run = Run(op, n, repeat, seconds, variant=f"xargs -P {width}")
    run.tree_cpu = tree_cpu(cpu_before, cpu_after)
    run.server_cpu = servers_after - servers_before
    run.certificates = bench.certificates() - certificates
    run.waits = [answer.wait_seconds for answer in bench.answers_since(marks)]
    if run.certificates != n:
        raise RuntimeError(f"{op} (N={n}): the agents wrote {run.certificates} certificates, not {n}")
    bench.log(f"  N={n} repeat {repeat + 1} {op:<13} {run.variant:<13} {seconds:7.1f} s")
    remove_registrations(bench, registrations)
    return run


def remove_registrations(bench: Bench, registrations: Sequence[Registration]) -> None:
    """What a script registered, gone (the KubernetesClusters, the agent namespaces), before the next measurement."""
    planes = bench.planes
    names = [r.name for r in registrations]
    planes.kubectl("mgmt", "delete", CLUSTERS_RESOURCE, "-n", MGMT_NAMESPACE, "--ignore-not-found", *names)
    for server in bench.remotes:
        namespaces = [r.namespace for r in registrations if r.server == server]
        if namespaces:
            planes.kubectl(server, "delete", "namespace", "--ignore-not-found", "--timeout=300s", *namespaces)
