"""Where the time of a traced ``pulumi up`` goes, from its OTel trace (``--otel-traces``): the spans of the CLI and the
kubernetes provider, sorted into kinds of work (:data:`BREAKDOWN_KINDS`) with the intervals each kind ran in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_URN = re.compile(r'urn:pulumi:[^"\\ ]*')


@dataclass(frozen=True)
class Span:
    """One span of the trace: who made it, what, when (seconds since the epoch), to whom, for which resource."""

    service: str
    name: str
    start: float
    end: float
    peer: str
    urn: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


def read_spans(path: Path) -> list[Span]:
    """Every span of an ``--otel-traces`` file (OTLP JSON, one export per line), with the URN its request names."""
    spans: list[Span] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            attributes = resource_spans.get("resource", {}).get("attributes", [])
            service = next((a["value"].get("stringValue", "") for a in attributes if a["key"] == "service.name"), "")
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    values: dict[str, Any] = {}
                    for attribute in span.get("attributes", []):  # the first "Msg" is the request, with the URN
                        values.setdefault(attribute["key"], next(iter(attribute["value"].values()), ""))
                    message = str(values.get("Msg", ""))
                    urn = _URN.search(message)
                    spans.append(
                        Span(
                            service,
                            span["name"],
                            int(span["startTimeUnixNano"]) / 1e9,
                            int(span["endTimeUnixNano"]) / 1e9,
                            str(values.get("net.peer.name", "")),
                            urn.group(0) if urn else "",
                        )
                    )
    return spans


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """The time covered by at least one of the intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


BREAKDOWN_KINDS = (
    "kubernetes provider start-up (Configure)",
    "management reads (Deployment, Service)",
    "management invokes (generation, relay secrets)",
    "kubectl check (invoke, once per run)",
    "Namespace create",
    "CA copy create (Secret)",
    "bootstrap token (Command)",
    "Helm release: Check (chart download)",
    "Helm release: Create (install)",
    "KubernetesCluster create",
    "certificate wait (invoke)",
    "checkpoint writes (state file)",
)


def breakdown(spans: Sequence[Span]) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The run's wall time and, per kind of work, the intervals it ran in (see :data:`BREAKDOWN_KINDS`), in seconds
    from the run's start (to the microsecond: what ``--json`` keeps, so a saved run prints the same table).

    The engine's Invoke spans carry no request (no token, no arguments): the command provider's invokes are told
    apart by order. The program makes the generation discovery and the relay secrets read before it declares
    anything, and each certificate wait only after its release, so the first two are the management invokes, after
    the run's one kubectl check, which comes before the first step that needs kubectl (saved runs keep their kinds:
    those from before the check have none)."""
    root = next(s for s in spans if s.service == "pulumi-cli" and s.name == "pulumi")
    kinds: dict[str, list[tuple[float, float]]] = {kind: [] for kind in BREAKDOWN_KINDS}

    def add(kind: str, span: Span) -> None:
        kinds[kind].append((round(span.start - root.start, 6), round(span.end - root.start, 6)))

    cli = [s for s in spans if s.service == "pulumi-cli"]
    command_peers = {s.peer for s in cli if s.name == "pulumirpc.ResourceProvider/Invoke"}
    invokes = sorted((s for s in cli if s.name == "pulumirpc.ResourceProvider/Invoke"), key=lambda s: s.start)
    if invokes:
        add("kubectl check (invoke, once per run)", invokes[0])
    for index, span in enumerate(invokes[1:]):
        add("management invokes (generation, relay secrets)" if index < 2 else "certificate wait (invoke)", span)
    for span in cli:
        if span.name == "pulumirpc.ResourceProvider/Create" and span.peer in command_peers:
            add("bootstrap token (Command)", span)
        elif span.name == "gocloud.dev/blob.NewWriter" or span.name == "gocloud.dev/blob.Copy":
            add("checkpoint writes (state file)", span)
    for span in spans:
        if span.service != "pulumi-resource-provider":
            continue
        if span.name == "/pulumirpc.ResourceProvider/Configure":
            add("kubernetes provider start-up (Configure)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Read":
            add("management reads (Deployment, Service)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Check" and "helm.sh/v3:Release" in span.urn:
            add("Helm release: Check (chart download)", span)
        elif span.name == "/pulumirpc.ResourceProvider/Create":
            for marker, kind in (
                ("core/v1:Namespace::", "Namespace create"),
                ("core/v1:Secret::", "CA copy create (Secret)"),
                ("helm.sh/v3:Release::", "Helm release: Create (install)"),
                (":KubernetesCluster::", "KubernetesCluster create"),
            ):
                if marker in span.urn:
                    add(kind, span)
    return round(root.seconds, 6), kinds
