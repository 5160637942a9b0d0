"""What one kubernetes provider process holds, stage by stage, outside the engine: ``python -m
benchmarks.fleet.provider_memory --bin-dir ...``.

The fleet benchmark shows the providers' memory at the process tree's peak; this probe takes one provider apart. It
starts an API server of its own (``lab.cluster``, with the simulated management plane's CRD, as the benchmark's
management server has), starts ``pulumi-resource-kubernetes`` in attach mode (no engine: the provider serves gRPC and
the probe is its only client), and reads its ``smaps_rollup`` after each stage:

1. started (the binary's pages and what its packages' ``init`` allocates),
2. ``Configure`` with the kubeconfig and context as the component's Provider passes them (the provider reads the
   server version, the discovery documents and the whole OpenAPI v2 document, which it keeps parsed),
3. the same after ``--settle`` seconds (the Go runtime returns freed pages to the kernel in the background).

Each ``--env NAME=VALUE`` setting (``GOGC=50``, ``GOMEMLIMIT=40MiB``...) is a variant, run ``--repeats`` times,
alternating with the default. ``GODEBUG=gctrace=1`` is set in every run, so the Go runtime reports each collection's
heap sizes on stderr; the last line's live heap (after the collection) is shown. ``--crds K`` adds K generated
CustomResourceDefinitions with an OpenAPI schema of ``--crd-properties`` properties each, as a cluster with a
product's CRDs installed has (a real Gloo Mesh cluster holds dozens), to see how the provider's heap follows the
size of the cluster's OpenAPI document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from benchmarks.benchlib import machine_summary, print_table, tools_folder
from benchmarks.fleet.proc import Memory, smaps_rollup
from lab.cluster import ControlPlanes, control_planes
from lab.gloo import install_management_plane

PROVIDER_URN = "urn:pulumi:fleet::gloo-mesh-registration::pulumi:providers:kubernetes::probe"
_GCTRACE = re.compile(r"gc \d+ @[\d.]+s .*?(\d+)->(\d+)->(\d+) MB, (\d+) MB goal")


@dataclass
class Stage:
    """One provider process's memory after each stage, and its Go heap as ``gctrace`` last reported it."""

    env: str
    memory: dict[str, Memory] = field(default_factory=dict)
    live_heap_mb: float = 0.0
    """The live heap after the last collection (``gctrace``: the third of ``a->b->c MB``)."""
    heap_goal_mb: float = 0.0
    collections: int = 0
    configure_s: float = 0.0
    cpu_s: float = 0.0
    """The provider process's CPU seconds until the last stage (user + system)."""


def _read_port(process: subprocess.Popen[str], timeout: float = 60) -> int:
    """The port the provider prints once it serves (the plugin protocol's first line on stdout)."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip().isdigit():
            return int(line)
        if process.poll() is not None:
            break
    raise RuntimeError(f"the provider did not print its port (exit {process.poll()})")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(bin_dir: Path, planes: ControlPlanes, cluster: str, env: Sequence[str], settle: float) -> Stage:
    """One provider process through the stages (see the module's docstring)."""
    settings = dict(item.split("=", 1) for item in env)
    stage = Stage(" ".join(env) or "default")
    with tempfile.TemporaryDirectory(prefix="provider-memory-") as tmp:
        process = subprocess.Popen(
            [str(bin_dir / "pulumi-resource-kubernetes")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": tmp, "HOME": tmp, "GODEBUG": "gctrace=1", **settings},
        )
        trace: list[str] = []
        assert process.stderr is not None
        reader = threading.Thread(target=lambda: trace.extend(process.stderr or []), daemon=True)
        reader.start()
        try:
            port = _read_port(process)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            time.sleep(settle)
            stage.memory["started"] = smaps_rollup(process.pid) or Memory()
            variables = {
                "kubernetes:config:kubeconfig": str(planes.kubeconfig),
                "kubernetes:config:context": planes.clusters[cluster].context,
                "kubernetes:config:enableSecretMutable": "true",
            }
            args = struct_pb2.Struct()
            args.update({"kubeconfig": str(planes.kubeconfig), "context": planes.clusters[cluster].context})
            started = time.monotonic()
            stub.Configure(
                provider_pb2.ConfigureRequest(
                    variables=variables, args=args, acceptSecrets=True, acceptResources=True, urn=PROVIDER_URN
                ),
                timeout=120,
            )
            stage.configure_s = time.monotonic() - started
            stage.memory["configured"] = smaps_rollup(process.pid) or Memory()
            time.sleep(settle)
            stage.memory["settled"] = smaps_rollup(process.pid) or Memory()
            stage.cpu_s = _cpu_seconds(process.pid)
            channel.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(timeout=5)
    collections = [m for line in trace if (m := _GCTRACE.search(line))]
    stage.collections = len(collections)
    if collections:
        stage.live_heap_mb = float(collections[-1].group(3))
        stage.heap_goal_mb = float(collections[-1].group(4))
    return stage


def add_crds(planes: ControlPlanes, cluster: str, count: int, properties: int, first: int = 0) -> None:
    """``count`` CustomResourceDefinitions, each with a schema of ``properties`` string properties (with a
    description each, as generated CRDs have), established on ``cluster``."""
    documents = []
    for i in range(first, first + count):
        props = {
            f"field{j:03d}": {"type": "string", "description": f"Field {j} of kind {i}: " + "text " * 12}
            for j in range(properties)
        }
        documents.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"probes{i:03d}.probe.example.com"},
                "spec": {
                    "group": "probe.example.com",
                    "scope": "Namespaced",
                    "names": {"plural": f"probes{i:03d}", "singular": f"probe{i:03d}", "kind": f"Probe{i:03d}"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {"spec": {"type": "object", "properties": props}},
                                }
                            },
                        }
                    ],
                },
            }
        )
    planes.kubectl(cluster, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(documents))
    planes.kubectl(cluster, "wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")


def wait_for_definitions(planes: ControlPlanes, cluster: str, definitions: int, timeout: float = 300) -> dict[str, int]:
    """The OpenAPI v2 document's sizes once it has ``definitions`` definitions: the server rebuilds the aggregated
    document a while after new CRDs are established (each CRD adds two, its kind and its list)."""
    deadline = time.monotonic() + timeout
    sizes = openapi_sizes(planes, cluster)
    while sizes["definitions"] < definitions and time.monotonic() < deadline:
        time.sleep(2)
        sizes = openapi_sizes(planes, cluster)
    if sizes["definitions"] < definitions:
        raise RuntimeError(f"the OpenAPI document has {sizes['definitions']} definitions, not {definitions}")
    return sizes


def openapi_sizes(planes: ControlPlanes, cluster: str) -> dict[str, int]:
    """The bytes of the cluster's OpenAPI v2 document as JSON (what ``kubectl get --raw`` gets) and the number of its
    definitions."""
    text = planes.kubectl(cluster, "get", "--raw", "/openapi/v2")
    document: dict[str, Any] = json.loads(text)
    return {"json_bytes": len(text.encode()), "definitions": len(document.get("definitions", {}))}


def _mib(value: float) -> str:
    return f"{value:.1f}"


def print_stages(stages: Sequence[Stage], title: str) -> None:
    """Per variant, the median of the repeats: each stage's PSS and anonymous memory, the Go heap, the cost."""
    rows = []
    for env in dict.fromkeys(s.env for s in stages):
        runs = [s for s in stages if s.env == env]

        def median(values: Sequence[float]) -> float:
            return statistics.median(values)

        rows.append(
            [
                env,
                str(len(runs)),
                _mib(median([s.memory["started"].pss for s in runs])),
                _mib(median([s.memory["started"].anonymous for s in runs])),
                _mib(median([s.memory["started"].rss - s.memory["started"].anonymous for s in runs])),
                _mib(median([s.memory["configured"].anonymous for s in runs])),
                _mib(median([s.memory["settled"].anonymous for s in runs])),
                _mib(median([s.memory["settled"].pss for s in runs])),
                f"{median([s.live_heap_mb for s in runs]):.0f}",
                f"{median([s.heap_goal_mb for s in runs]):.0f}",
                f"{median([float(s.collections) for s in runs]):.0f}",
                f"{median([s.configure_s for s in runs]):.2f}",
                f"{median([s.cpu_s for s in runs]):.2f}",
            ]
        )
    print_table(
        title,
        [
            "environment",
            "runs",
            "started: PSS MiB",
            "anon MiB",
            "file RSS MiB",
            "configured: anon MiB",
            "settled: anon MiB",
            "settled: PSS MiB",
            "Go live heap MB",
            "heap goal MB",
            "GCs",
            "Configure s",
            "CPU s",
        ],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parsed = argparse.ArgumentParser(prog="python -m benchmarks.fleet.provider_memory", description=__doc__)
    parsed.add_argument("--bin-dir", help="the tools' folder (scripts/e2e-tools.sh --print-bin-dir)")
    parsed.add_argument("--env", nargs="*", default=[], help="variants, each NAME=VALUE[,NAME=VALUE]")
    parsed.add_argument("--repeats", type=int, default=3)
    parsed.add_argument("--settle", type=float, default=3.0, help="seconds before each reading")
    parsed.add_argument("--crds", type=int, nargs="*", default=[0], help="generated CRDs to add, in steps")
    parsed.add_argument("--crd-properties", type=int, default=200)
    parsed.add_argument("--json", type=Path, help="write every run (JSON)")
    args = parsed.parse_args(argv)
    bin_dir = tools_folder(args.bin_dir)
    print(machine_summary())
    variants = [[], *[v.split(",") for v in args.env]]
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="provider-memory-planes-") as work,
        control_planes(bin_dir, Path(work), ("mgmt",)) as planes,
    ):
        install_management_plane(planes)
        base = openapi_sizes(planes, "mgmt")["definitions"]
        added = 0
        for crds in args.crds:
            if crds > added:
                add_crds(planes, "mgmt", crds - added, args.crd_properties, first=added)
                added = crds
            sizes = wait_for_definitions(planes, "mgmt", base + 2 * added)
            stages = [
                probe(bin_dir, planes, "mgmt", variant, args.settle)
                for _ in range(args.repeats)
                for variant in variants
            ]
            print_stages(
                stages,
                f"One kubernetes provider, Configure against a server with {added} generated CRDs "
                f"(OpenAPI v2: {sizes['definitions']} definitions, {sizes['json_bytes'] / 2**20:.1f} MiB as JSON); "
                f"median of {args.repeats} runs",
            )
            results += [{"crds": added, **sizes, **s.__dict__} for s in stages]
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {**r, "memory": {k: m.__dict__ for k, m in r["memory"].items()}}  # Memory as a plain mapping
                    for r in results
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
