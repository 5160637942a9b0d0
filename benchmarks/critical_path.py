"""Critical path: the longest chain of dependent steps in the recorded dependency graph, for fleets of N clusters.

The program runs on the mock runtime (``__main__.py``, a stack of N clusters, version and address discovered) with
the recording monitor of ``lab/engine_double.py``. Every custom resource the engine would create or read is a
step; a step waits on its recorded ``dependencies`` (a component in them stands for its steps) and on its provider.
The relay secrets read (``ca.crt`` and the token, by kubectl) is an invoke, not a resource, so it is not in the
recorded graph; the root CA copy and the token placement take their values from it (``discovery.py``), so
it is added as a step before them. With the one management Provider of ``__main__.py``, the reads and that
invoke are made once per management plane and belong to the stack, not to a registration: they are "shared" steps,
and every cluster's steps wait on them.

meshctl 1.x registers one cluster per invocation in 7 sequential steps (agent version, relay address, namespace,
root CA, token, agent install, KubernetesCluster and the wait), so a fleet of N clusters is 7·N steps in a row.

The figures are counts (the same on every run), not timings.

    python -m benchmarks.critical_path               # N = 1, 10, 50, 100, 200
    python -m benchmarks.critical_path --quick       # N = 1 and 2: the smoke test
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

from benchmarks.benchlib import (
    FLEET_STACK_FILE,
    emit_result,
    fleet_config,
    machine_summary,
    print_table,
    run_worker,
    verdict,
)

MODULE = "benchmarks.critical_path"
"""What ``run_worker`` starts: this benchmark again, in a fresh interpreter."""
DEFAULT_SIZES = (1, 10, 50, 100, 200)
MESHCTL_STEPS_PER_CLUSTER = 7
COMPONENT_TYPE = "gloo-mesh-relay:index:RemoteClusterRegistration"
CLUSTER_TYPE = "multicluster.solo.io/v1alpha1:KubernetesCluster"


def worker(n: int) -> None:
    from lab.engine_double import run_main

    monitor = run_main(FLEET_STACK_FILE, config_override=fleet_config(n, discovery=True))
    records = {r.urn: r for r in monitor.records}
    components = {urn for urn, r in records.items() if r.type == COMPONENT_TYPE}
    steps = {urn for urn, r in records.items() if r.custom}
    labels = {
        urn: f"{records[urn].name} ({'read' if records[urn].op == 'read' else records[urn].type})" for urn in steps
    }

    def owner(urn: str) -> str | None:
        """The registration (component URN) a record belongs to, None for what the stack shares."""
        while urn and urn not in components:
            parent = records[urn].parent if urn in records else ""
            urn = parent
        return urn or None

    children: dict[str, set[str]] = {}
    for urn in steps:
        component = owner(urn)
        if component is not None:
            children.setdefault(component, set()).add(urn)

    waits_on: dict[str, set[str]] = {urn: set() for urn in steps}
    for urn in steps:
        record = records[urn]
        for dependency in record.dependencies:
            waits_on[urn] |= children.get(dependency, set()) if dependency in components else {dependency} & steps
        if record.provider_urn in steps:
            waits_on[urn].add(record.provider_urn)

    # The relay secrets read: one invoke per management plane when the registrations share the management Provider
    # (it is then the stack's), else one per registration. Each registration's root CA copy and token placement
    # take their values from it; the invoke itself waits on nothing in the graph.
    from gloo_mesh_registration.lifecycle import ENSURE_CERTIFICATE, READ_RELAY_SECRETS

    relay_reads = monitor.invoked(READ_RELAY_SECRETS)
    consumers: dict[str | None, list[str]] = {}
    for urn in steps:
        record = records[urn]
        if record.op == "register" and record.name.endswith(("-root-ca", "-bootstrap-token")):
            consumers.setdefault(owner(urn), []).append(urn)
    one_read = len(relay_reads) == 1 and len(consumers) > 1
    if not one_read and len(relay_reads) != len(consumers):
        raise RuntimeError(f"{len(relay_reads)} relay secrets reads for {len(consumers)} registrations")
    check_owner: dict[str, str | None] = {}
    for reads_owner, waiting in consumers.items():
        read = "stack::relay-secrets" if one_read else f"{reads_owner}::relay-secrets"
        prefix = "management" if one_read else records[reads_owner].name if reads_owner else "stack"
        if read not in steps:
            steps.add(read)
            waits_on[read] = set()
            labels[read] = f"{prefix}-relay-secrets (invoke)"
            check_owner[read] = None if one_read else reads_owner
        for urn in waiting:
            waits_on[urn].add(read)

    # The certificate step (steps 8 and 9): one invoke per registration, sent once its Release and KubernetesCluster
    # are in place (``after`` lists what was registered before it).
    certificate_steps = monitor.invoked(ENSURE_CERTIFICATE)
    if len(certificate_steps) != len(components):
        raise RuntimeError(f"{len(certificate_steps)} certificate steps for {len(components)} registrations")
    for component in sorted(components):
        mine = children.get(component, set())
        waited = {
            urn for urn in mine if records[urn].type in ("kubernetes:helm.sh/v3:Release", f"kubernetes:{CLUSTER_TYPE}")
        }
        step = f"{component}::client-certificate"
        steps.add(step)
        waits_on[step] = waited
        labels[step] = f"{records[component].name}-client-certificate (invoke)"
        check_owner[step] = component

    @cache
    def longest(urn: str) -> tuple[int, tuple[str, ...]]:
        """Length (in steps) and steps of the longest chain ending at ``urn``."""
        best: tuple[int, tuple[str, ...]] = (0, ())
        for dependency in waits_on[urn]:
            best = max(best, longest(dependency))
        return best[0] + 1, (*best[1], urn)

    sys.setrecursionlimit(10_000)
    length, chain = max(longest(urn) for urn in steps)

    def cluster_of(urn: str) -> str | None:
        return check_owner[urn] if urn in check_owner else owner(urn)

    cross = sum(
        1
        for urn in steps
        for dependency in waits_on[urn]
        if cluster_of(urn) is not None
        and cluster_of(dependency) is not None
        and cluster_of(urn) != cluster_of(dependency)
    )
    shared = sorted(labels[urn] for urn in steps if cluster_of(urn) is None)
    emit_result(
        {
            "n": n,
            "steps": len(steps),
            "registered": len(monitor.registered()),
            "reads": len(monitor.reads()),
            "checks": len(relay_reads),
            "critical_path": length,
            "chain": [labels[urn] for urn in chain],
            "cross_cluster_waits": cross,
            "shared_steps": shared,
        }
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="fleet sizes N")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 2: the smoke test")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return 0

    sizes = [1, 2] if args.quick else sorted(set(args.sizes))
    print(machine_summary())
    results: list[dict[str, Any]] = [run_worker(MODULE, [str(n)]) for n in sizes]
    rows = [
        [
            str(r["n"]),
            str(r["steps"]),
            str(r["critical_path"]),
            str(MESHCTL_STEPS_PER_CLUSTER * r["n"]),
            f"{MESHCTL_STEPS_PER_CLUSTER * r['n'] / r['critical_path']:.1f}",
            str(r["cross_cluster_waits"]),
        ]
        for r in results
    ]
    print_table(
        "Critical path (steps in a row) against meshctl's sequential flow",
        ["N", "steps in the graph", "critical path", "meshctl 7·N", "meshctl/this", "cross-cluster waits"],
        rows,
    )
    lengths = {r["critical_path"] for r in results}
    constant = len(lengths) == 1
    print(f"\nlongest chain (N={results[0]['n']}): " + " -> ".join(results[0]["chain"]))
    print(f"shared by every cluster: {', '.join(results[-1]['shared_steps'])}")
    print(
        f"\nTarget: critical path constant in N: {sorted(lengths)} over N = {', '.join(str(n) for n in sizes)}: "
        f"{verdict(constant)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
