"""Program evaluation on the SDK's mock runtime: the part of `pulumi preview` / `pulumi up` that is this program's
own cost, for fleets of N clusters in one stack, against a flat baseline that declares the same resources by hand.

Variants, each measured in a fresh subprocess per run:

* ``component``: ``__main__.py`` with a stack of N clusters (one management plane, one shared management Provider;
  the agent version and the relay address discovered from it): stack-config validation, one
  ``RemoteClusterRegistration`` per cluster, the discovery reads and the relay secrets read (a kubectl invoke), both
  once per management plane (children of that Provider) since every registration gets the same Provider.
* ``flat``: the same custom resources with the same names, types, inputs, providers and ``depends_on``, declared in
  one loop: no component, no validation, no discovery. The relay secrets are still read, once, by the same invoke
  (the CA copy and the token need ``ca.crt`` and the token).
* ``flat+reads``: ``flat`` plus the component's discovery reads, once, wired the same way: every
  request the component program sends the engine, minus the component resources. Against it, the component's own
  cost.

Before measuring, all three run at N = 2 with the recording monitor and the flat programs are checked to send the
same requests as the component program: custom resources (types, names, providers, inputs, ``depends_on``), reads
(names, types, providers, parents, IDs, secret outputs, ``depends_on``) and invokes (token and arguments). Each run
imports the same modules (the SDK's and ``gloo_mesh_registration``) before the clock starts; the import cost is the
subject of ``startup.py``.
Wall and CPU time cover the program run until every registration has been answered; GC time is the time spent in
the cyclic garbage collector (``gc.callbacks``); peak memory is the process's maximum RSS (and its growth over the
state after the imports). The validation of the stack config is also timed on its own.

    python -m benchmarks.evaluation                      # N = 1, 10, 20, 50, 100, 200; 3 runs each (about 2 min)
    python -m benchmarks.evaluation --quick              # N = 1, one run: the smoke test
    python -m benchmarks.evaluation --plot benchmarks/evaluation.png --json /tmp/evaluation.json
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.benchlib import (
    AGENT_VERSION,
    FLEET_STACK_FILE,
    PROJECT,
    RELAY_ADDRESS,
    Summary,
    cluster_names,
    emit_result,
    fleet_config,
    machine_summary,
    print_table,
    run_worker,
    summarize,
    verdict,
)

MODULE = "benchmarks.evaluation"
"""What ``run_worker`` starts: this benchmark again, in a fresh interpreter."""
VARIANTS = ("component", "flat+reads", "flat")
DEFAULT_SIZES = (1, 10, 20, 50, 100, 200)
RATIO_TARGET = 1.2
RATIO_AT = 100
SCALING_TARGET = 11.0
SCALING_FROM, SCALING_TO = 20, 200

MANAGED_BY_LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "gloo-mesh-registration"}
CHART_REPO = "https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent"
AUTHORITY = "enterprise-networking.gloo-mesh"
NS = "gloo-mesh"


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _image_tag(spec: Any) -> str:
    """The version discovery reads: the tag of the server Deployment's first image."""
    return str(spec.template.spec.containers[0].image).rsplit(":", 1)[1]


def _address_from(service: Any) -> Callable[[Any], Any]:
    """The address discovery reads: the Service's LoadBalancer ingress IP and its first port (nested applies, as
    ``gloo_mesh_registration.discovery`` does)."""

    def from_spec(spec: Any) -> Any:
        return service.status.apply(lambda status: f"{status.load_balancer.ingress[0].ip}:{spec.ports[0].port}")

    return from_spec


# -- the flat baselines -----------------------------------------------------------------------------------------


def flat_program(n: int, *, with_reads: bool = False) -> None:
    """The resources of N registrations written out by hand: what the component declares, without the component.

    The management plane's objects are read once, before the clusters, as the component reads them through the one
    management Provider that ``__main__.py`` shares: children of that Provider, named after it and the object
    (``management-...``). Without ``with_reads`` the version and the relay address are literals (what discovery
    resolves against the test double); only ``ca.crt`` and the token are read, by the one kubectl invoke (the CA copy
    and the token need them). With it, the server Deployment and Service are read as well: the same requests as the
    component program, minus the component resources, and the generation is discovered as the component does. No
    validation either way. The script texts come from
    ``gloo_mesh_registration.lifecycle`` (string functions; a hand-written program would carry them as literals).
    """
    import pulumi
    import pulumi_kubernetes as k8s
    from pulumi_command import local

    from gloo_mesh_registration.lifecycle import (
        CHECK_KUBECTL,
        ENSURE_CERTIFICATE,
        ENV_KUBECTL_CHECKED_BY,
        FIND_EXISTING,
        FORGET_IDENTITY,
        KEEP_TOKEN,
        PLACE_TOKEN,
        READ_RELAY_SECRETS,
        RemoteIdentity,
        client_certificate_step,
        existing_objects_step,
        kubectl_check_step,
        objects_environment,
        parse_kubectl_check,
        parse_relay_secrets_report,
        relay_secrets_environment,
        relay_secrets_step,
        secret_manifest,
        token_step,
    )

    identity = RemoteIdentity(NS, "relay-identity-token-secret", "relay-client-tls-secret")
    # What the stack creates carries its mark (project and stack, as the component writes it).
    owned_labels = {**MANAGED_BY_LABELS, "gloo-mesh-registration/stack": f"{pulumi.get_project()}.{pulumi.get_stack()}"}
    mgmt = k8s.Provider("management", context="mgmt")
    # kubectl checked once (a plain invoke); every step is told so and skips its own check.
    checked_by = parse_kubectl_check(
        local.run(
            command=CHECK_KUBECTL, interpreter=kubectl_check_step().interpreter, logging=local.Logging.NONE
        ).stdout
    )
    kubectl: dict[str, str] = {ENV_KUBECTL_CHECKED_BY: checked_by}
    # Once per management plane: the version, the address and the two relay secret values.
    version: pulumi.Input[str] = AGENT_VERSION
    address: pulumi.Input[str] = RELAY_ADDRESS
    if with_reads:
        # Which generation the management plane runs (a plain invoke, before anything is declared).
        local.run(
            command=FIND_EXISTING,
            interpreter=existing_objects_step().interpreter,
            environment={
                **kubectl,
                "GM_KUBE_CONTEXT": "mgmt",
                **objects_environment(
                    [f"deployments/{NS}/enterprise-networking", f"deployments/{NS}/gloo-mesh-mgmt-server"]
                ),
            },
            logging=local.Logging.NONE,
        )
        on_mgmt = pulumi.ResourceOptions(provider=mgmt, parent=mgmt)
        deployment = k8s.apps.v1.Deployment.get(
            f"management-server-deployment-{NS}.enterprise-networking", f"{NS}/enterprise-networking", opts=on_mgmt
        )
        version = deployment.spec.apply(_image_tag)
        service = k8s.core.v1.Service.get(
            f"management-relay-service-{NS}.enterprise-networking", f"{NS}/enterprise-networking", opts=on_mgmt
        )
        address = service.spec.apply(_address_from(service))
    relay_read = local.run_output(
        command=READ_RELAY_SECRETS,
        interpreter=relay_secrets_step().interpreter,
        environment={
            **kubectl,
            "GM_KUBE_CONTEXT": "mgmt",
            **relay_secrets_environment(
                NS, {"relay-root-tls-secret": "ca.crt", "relay-identity-token-secret": "token"}
            ),
        },
        logging=local.Logging.NONE,
        add_previous_output_in_env=False,
    )
    relay_stdout: pulumi.Output[str] = pulumi.Output.secret(relay_read.stdout)
    relay_values = relay_stdout.apply(lambda out: parse_relay_secrets_report(out).values)
    exported: dict[str, Any] = {}
    for name in cluster_names(n):
        context = f"ctx-{name}"
        remote = k8s.Provider(f"{name}-remote", context=context, enable_secret_mutable=True)
        # Not before the version is known and the relay secrets were read (as the component waits for them).
        labels = pulumi.Output.unsecret(
            pulumi.Output.all(version, relay_values).apply(lambda _: {"istio-injection": "disabled"})
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NS, labels=labels),
            opts=pulumi.ResourceOptions(
                provider=remote, aliases=[pulumi.Alias(type_="kubernetes:core/v1:NamespacePatch")]
            ),
        )
        ca_only: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            relay_values.apply(lambda values: {"ca.crt": values["relay-root-tls-secret"]})
        )
        root_ca = k8s.core.v1.Secret(
            f"{name}-root-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="relay-root-tls-secret", namespace=NS, labels=owned_labels),
            type="Opaque",
            data=ca_only,
            opts=pulumi.ResourceOptions(provider=remote, depends_on=[namespace], delete_before_replace=True),
        )
        token_manifest: pulumi.Output[str] = pulumi.Output.secret(
            relay_values.apply(
                lambda values: secret_manifest(
                    NS,
                    "relay-identity-token-secret",
                    {"token": values["relay-identity-token-secret"]},
                    MANAGED_BY_LABELS,
                )
            )
        )
        token = local.Command(
            f"{name}-bootstrap-token",
            interpreter=token_step(identity).interpreter,
            create=PLACE_TOKEN,
            update=KEEP_TOKEN,
            delete=FORGET_IDENTITY,
            stdin=token_manifest,
            environment={**kubectl, "GM_KUBE_CONTEXT": context},
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                depends_on=[namespace],
                additional_secret_outputs=["stdout", "stderr"],
                ignore_changes=["environment", "stdin"],
            ),
        )

        def values(address_and_version: list[str], name: str = name) -> dict[str, Any]:
            return {
                "relay": {
                    "authority": AUTHORITY,
                    "clientCertSecret": {"name": "relay-client-tls-secret", "namespace": NS},
                    "cluster": name,
                    "rootTlsSecret": {"name": "relay-root-tls-secret", "namespace": NS},
                    "serverAddress": address_and_version[0],
                    "tokenSecret": {"key": "token", "name": "relay-identity-token-secret", "namespace": NS},
                }
            }

        release = k8s.helm.v3.Release(
            f"{name}-agent",
            name="enterprise-agent",
            chart="enterprise-agent",
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NS,
            values=pulumi.Output.all(address, version).apply(values) if with_reads else values([RELAY_ADDRESS]),
            create_namespace=False,
            opts=pulumi.ResourceOptions(provider=remote, depends_on=[namespace, root_ca, token]),
        )
        cluster = k8s.apiextensions.CustomResource(
            f"{name}-kubernetes-cluster",
            api_version="multicluster.solo.io/v1alpha1",
            kind="KubernetesCluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=NS, labels=owned_labels),
            spec={"clusterDomain": "cluster.local"},
            opts=pulumi.ResourceOptions(provider=mgmt, depends_on=[release], delete_before_replace=True),
        )
        certificate = local.run_output(
            command=ENSURE_CERTIFICATE,
            interpreter=client_certificate_step(
                identity, cluster_name=name, agent_deployment="enterprise-agent", timeout_seconds=300, remove_token=True
            ).interpreter,
            stdin=token_manifest,
            environment=pulumi.Output.all(address).apply(partial(_certificate_environment, kubectl, context)),
            logging=local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.InvokeOutputOptions(depends_on=[release, cluster]),
        )
        exported[name] = {
            "relayServerAddress": address,
            "agentVersion": version,
            "remoteNamespace": NS,
            "releaseStatus": release.status.apply(lambda s: s.status),
            "clientCertificateIssued": certificate.stderr.apply(lambda _: True),
        }
    pulumi.export("clusters", exported)


def _certificate_environment(kubectl: dict[str, str], context: str, resolved: list[str]) -> dict[str, str]:
    return {**kubectl, "GM_KUBE_CONTEXT": context, "GM_RELAY_ADDRESS": resolved[0], "GM_RELAY_AUTHORITY": AUTHORITY}


# -- workers ----------------------------------------------------------------------------------------------------


def _import_everything() -> None:
    """What the programs import, before the clock starts (the import cost is the subject of startup.py)."""
    import pulumi
    import pulumi_command.local
    import pulumi_kubernetes.apiextensions
    import pulumi_kubernetes.apps.v1
    import pulumi_kubernetes.core.v1
    import pulumi_kubernetes.helm.v3
    import pulumi_kubernetes.meta.v1

    import gloo_mesh_registration
    import gloo_mesh_registration.stack_config
    import lab.engine_double

    del pulumi, pulumi_command, pulumi_kubernetes, gloo_mesh_registration, lab


def _run(variant: str, n: int, monitor: Any) -> None:
    from lab.engine_double import run_main, run_program

    if variant == "component":
        run_main(FLEET_STACK_FILE, config_override=fleet_config(n, discovery=True), monitor=monitor)
    else:
        run_program(
            lambda: flat_program(n, with_reads=variant == "flat+reads"),
            monitor=monitor,
            project=PROJECT,
            stack="fleet-example",
        )


class _GcClock:
    """Time spent in the cyclic garbage collector (``gc.callbacks``), and the number of full collections."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full_collections += info.get("generation") == 2


def worker_measure(variant: str, n: int) -> None:
    _import_everything()
    from lab.engine_double import FakeClusters, RecordingMonitor

    class CountingMonitor(RecordingMonitor):
        """Counts what the engine would receive instead of keeping it (keeping it is the test harness's cost)."""

        count_registered = 0
        count_read = 0

        def _record(self, op: str, request: Any, properties: Any) -> None:
            if op == "register":
                self.count_registered += 1
            else:
                self.count_read += 1

    monitor = CountingMonitor(FakeClusters())
    gc_clock = _GcClock()
    gc.collect()
    rss_before = _maxrss_mib()
    gc.callbacks.append(gc_clock)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    _run(variant, n, monitor)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    gc.callbacks.remove(gc_clock)
    rss_peak = _maxrss_mib()
    validation = 0.0
    if variant == "component":  # measured apart, after the run: the stack-config validation of every cluster entry
        from gloo_mesh_registration.stack_config import read_stack_config

        config = {key: json.dumps(value) for key, value in fleet_config(n, discovery=True).items()}
        started = time.perf_counter()
        read_stack_config(PROJECT, config)
        validation = time.perf_counter() - started
    emit_result(
        {
            "variant": variant,
            "n": n,
            "wall": wall,
            "cpu": cpu,
            "gc": gc_clock.seconds,
            "full_gc": gc_clock.full_collections,
            "rss_peak_mib": rss_peak,
            "rss_growth_mib": rss_peak - rss_before,
            "registered": monitor.count_registered,
            "read": monitor.count_read,
            "invokes": len(monitor.fake.invokes),
            "validation": validation,
        }
    )


def worker_verify(n: int) -> None:
    """Compare what the component program and each flat baseline send the engine, resource by resource: the custom
    resources (provider, inputs, ``depends_on``), the reads (type, provider, parent, ID, secret outputs,
    ``depends_on``) and the invokes (token and arguments)."""
    _import_everything()
    from lab.engine_double import FakeClusters, RecordingMonitor, plain

    def declared(variant: str) -> tuple[dict[tuple[str, str], Any], dict[str, Any], list[Any]]:
        monitor = RecordingMonitor(FakeClusters())
        _run(variant, n, monitor)
        names = {r.urn: r.name for r in monitor.records}

        def parent(urn: str) -> str:
            return "(stack)" if "::pulumi:pulumi:Stack::" in urn else names.get(urn, urn)

        registered = {
            (r.type, r.name): {
                "provider": names.get(r.provider_urn, ""),
                "inputs": plain(r.inputs),
                "depends_on": sorted(names[d] for d in r.dependencies if d in names),
            }
            for r in monitor.registered()
            if r.custom
        }
        reads = {
            r.name: {
                "type": r.type,
                "provider": names.get(r.provider_urn, ""),
                "parent": parent(r.parent),
                "id": r.resource_id,
                "secret_outputs": sorted(r.additional_secret_outputs),
                "depends_on": sorted(names[d] for d in r.dependencies if d in names),
            }
            for r in monitor.reads()
        }
        if len(reads) != len(monitor.reads()):
            raise RuntimeError(f"{variant}: a read name was declared twice")
        invokes = sorted(
            json.dumps({"token": i.token, "args": plain(i.args)}, sort_keys=True) for i in monitor.fake.invokes
        )
        return registered, reads, invokes

    component, component_reads, component_invokes = declared("component")
    discovery_reads = set(component_reads)  # the server Deployment and Service: all the reads there are
    report: dict[str, Any] = {
        "n": n,
        "custom_resources": len(component),
        "reads": len(component_reads),
        "read_parents": sorted({r["parent"] for r in component_reads.values()}),
        "invokes": len(component_invokes),
    }
    for variant in ("flat", "flat+reads"):
        flat, flat_reads, flat_invokes = declared(variant)
        exact = variant == "flat+reads"
        differences = []
        for key in sorted(component.keys() | flat.keys()):
            mine, theirs = component.get(key), flat.get(key)
            if mine is None or theirs is None:
                differences.append(f"{key}: only in {'the flat one' if mine is None else 'the component'}")
                continue
            if mine["provider"] != theirs["provider"] or mine["inputs"] != theirs["inputs"]:
                differences.append(f"{key}: provider or inputs differ")
            # Without reads, the flat steps do not wait on the discovery reads; everything else is the same.
            expected = [d for d in mine["depends_on"] if exact or d not in discovery_reads]
            if theirs["depends_on"] != expected:
                differences.append(f"{key}: depends_on {mine['depends_on']} vs {theirs['depends_on']}")
        expected_reads = {k: v for k, v in component_reads.items() if exact or k not in discovery_reads}
        if flat_reads.keys() != expected_reads.keys():
            differences.append(f"reads differ: {sorted(flat_reads.keys() ^ expected_reads.keys())}")
        for name in sorted(flat_reads.keys() & expected_reads.keys()):
            if flat_reads[name] != expected_reads[name]:
                differences.append(f"read {name}: {expected_reads[name]} vs {flat_reads[name]}")
        # Both read the relay secrets once; flat knows its generation, flat+reads discovers it too.
        expected_invokes = [i for i in component_invokes if exact or '"deployments/' not in i]
        if flat_invokes != expected_invokes:
            differences.append(f"invokes: {len(flat_invokes)} vs {len(expected_invokes)}, or their arguments differ")
        report[variant] = {"reads": len(flat_reads), "invokes": len(flat_invokes), "differences": differences}
    emit_result(report)


# -- the parent -------------------------------------------------------------------------------------------------


def _ratio(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    return summarize([a / b for a, b in zip(numerators, denominators, strict=True)])


def measure(sizes: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for n in sizes:
            order = VARIANTS if repeat % 2 == 0 else tuple(reversed(VARIANTS))  # no variant always runs first
            for variant in order:
                result = run_worker(MODULE, ["measure", variant, str(n)])
                result["repeat"] = repeat
                runs.append(result)
                print(
                    f"  run {repeat + 1}/{repeats} N={n:<4} {variant:<11} wall {result['wall']:.3f} s",
                    file=sys.stderr,
                )
    return runs


def report(runs: list[dict[str, Any]], sizes: Sequence[int], repeats: int) -> dict[str, Any]:
    def values(variant: str, n: int, key: str) -> list[float]:
        ordered = sorted((r for r in runs if r["variant"] == variant and r["n"] == n), key=lambda r: r["repeat"])
        return [float(r[key]) for r in ordered]

    def one(variant: str, n: int, key: str) -> Any:
        return next(r[key] for r in runs if r["variant"] == variant and r["n"] == n)

    def without_gc(variant: str, n: int) -> list[float]:
        return [w - g for w, g in zip(values(variant, n, "wall"), values(variant, n, "gc"), strict=True)]

    for variant in VARIANTS:
        rows = []
        for n in sizes:
            wall = summarize(values(variant, n, "wall"))
            rows.append(
                [
                    str(n),
                    str(one(variant, n, "registered") + one(variant, n, "read")),
                    f"{one(variant, n, 'registered')} + {one(variant, n, 'read')} + {one(variant, n, 'invokes')}",
                    wall.cell(),
                    summarize(values(variant, n, "cpu")).cell(),
                    f"{1000 * wall.median / n:.1f}",
                    summarize(values(variant, n, "gc")).cell(),
                    summarize(values(variant, n, "rss_peak_mib")).cell(1),
                    summarize(values(variant, n, "rss_growth_mib")).cell(1),
                ]
                + (
                    [summarize([1000 * v for v in values(variant, n, "validation")]).cell(2)]
                    if variant == "component"
                    else []
                )
            )
        print_table(
            f"Evaluation, {variant} (median ±spread of {repeats} runs)",
            [
                "N",
                "resources",
                "registered + read + invokes",
                "wall s",
                "CPU s",
                "wall ms/cluster",
                "GC s",
                "peak RSS MiB",
                "RSS growth MiB",
            ]
            + (["validation ms"] if variant == "component" else []),
            rows,
        )

    ratio_rows = []
    ratios: dict[int, Summary] = {}
    for n in sizes:
        flat_wall = values("flat", n, "wall")
        ratios[n] = _ratio(values("component", n, "wall"), flat_wall)
        ratio_rows.append(
            [
                str(n),
                ratios[n].cell(2),
                _ratio(values("component", n, "cpu"), values("flat", n, "cpu")).cell(2),
                _ratio(values("component", n, "wall"), values("flat+reads", n, "wall")).cell(2),
                _ratio(values("flat+reads", n, "wall"), flat_wall).cell(2),
                _ratio(without_gc("component", n), without_gc("flat", n)).cell(2),
            ]
        )
    print_table(
        "Ratios, per pair of runs (median ±spread)",
        [
            "N",
            "component/flat wall",
            "component/flat CPU",
            "component/flat+reads wall",
            "flat+reads/flat wall",
            "component/flat wall excl. GC",
        ],
        ratio_rows,
    )

    targets: dict[str, Any] = {}
    lines = []
    if RATIO_AT in sizes:
        ratio = ratios[RATIO_AT].median
        structure = _ratio(values("component", RATIO_AT, "wall"), values("flat+reads", RATIO_AT, "wall")).median
        targets["ratio_at_100"] = ratio
        targets["structure_ratio_at_100"] = structure
        lines.append(
            f"component/flat wall at N={RATIO_AT}: {ratio:.2f} (target <= {RATIO_TARGET}): "
            f"{verdict(ratio <= RATIO_TARGET)}; the component alone (component/flat+reads): {structure:.2f}"
        )
    if SCALING_FROM in sizes and SCALING_TO in sizes:
        for variant in VARIANTS:
            scaling = _ratio(values(variant, SCALING_TO, "wall"), values(variant, SCALING_FROM, "wall"))
            scaling_no_gc = _ratio(without_gc(variant, SCALING_TO), without_gc(variant, SCALING_FROM))
            targets[f"scaling_{variant}"] = scaling.median
            lines.append(
                f"{variant}: time(N={SCALING_TO})/time(N={SCALING_FROM}) = {scaling.cell(2)} "
                f"(target <= {SCALING_TARGET:g}): {verdict(scaling.median <= SCALING_TARGET)}; "
                f"excluding GC time: {scaling_no_gc.cell(2)}"
            )
    if lines:
        print("\nTargets\n")
        for line in lines:
            print(f"- {line}")
    return targets


def plot(runs: list[dict[str, Any]], sizes: Sequence[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "component": "component program (discovery on)",
        "flat+reads": "flat, same reads",
        "flat": "flat baseline (same resources by hand)",
    }
    figure, axes = plt.subplots(figsize=(7.5, 4.6), dpi=120)
    for variant, marker in zip(VARIANTS, ("o", "s", "^"), strict=True):
        medians, lows, highs = [], [], []
        for n in sizes:
            s = summarize([float(r["wall"]) for r in runs if r["variant"] == variant and r["n"] == n])
            medians.append(s.median)
            lows.append(s.median - s.low)
            highs.append(s.high - s.median)
        axes.errorbar(list(sizes), medians, yerr=[lows, highs], marker=marker, capsize=3, label=labels[variant])
    axes.set_xlabel("clusters in one stack (N)")
    axes.set_ylabel("program evaluation, wall time (s)")
    axes.set_title(
        "Program evaluation on the Pulumi SDK's mock runtime vs. fleet size\n(median of runs; bars: min to max)",
        fontsize=10,
    )
    axes.grid(True, alpha=0.3)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"\nplot written to {path}")


def verify(n: int = 2) -> bool:
    result = run_worker(MODULE, ["verify", str(n)])
    same = True
    for variant in ("flat", "flat+reads"):
        differences: list[str] = result[variant]["differences"]
        same = same and not differences
        print(
            f"baseline check, {variant} vs component (N={n}): {result['custom_resources']} custom resources, "
            f"reads {result[variant]['reads']} of {result['reads']}, invokes {result[variant]['invokes']} of "
            f"{result['invokes']}: "
            + ("same types, names, providers, inputs and depends_on" if not differences else "DIFFERENT")
        )
        for difference in differences:
            print(f"  - {difference}")
    print(f"the component's reads are children of: {', '.join(result['read_parents'])}")
    return same


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="fleet sizes N")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size and variant (fresh process each)")
    parser.add_argument("--quick", action="store_true", help="N = 1, one run: the smoke test")
    parser.add_argument("--plot", type=Path, help="write a PNG of wall time against N (needs matplotlib)")
    parser.add_argument("--json", type=Path, help="write every run's raw figures to this file")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        dispatch: dict[str, Callable[[], None]] = {
            "measure": lambda: worker_measure(rest[0], int(rest[1])),
            "verify": lambda: worker_verify(int(rest[0])),
        }
        dispatch[kind]()
        return 0

    sizes = [1] if args.quick else sorted(set(args.sizes))
    repeats = 1 if args.quick else args.repeats
    print(machine_summary())
    same = verify()
    runs = measure(sizes, repeats)
    targets = report(runs, sizes, repeats)
    if args.json:
        args.json.write_text(json.dumps({"sizes": sizes, "repeats": repeats, "runs": runs, "targets": targets}))
    if args.plot:
        plot(runs, sizes, args.plot)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
