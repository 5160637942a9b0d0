"""Requests the API servers served during a run, from their ``/metrics`` (as ``lab/observe.py`` reads them):
what a no-change preview costs the management plane and the registered clusters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from benchmarks.fleet.bench import Bench
from lab.observe import ApiClient, RequestCounts

NOISE_RESOURCES = frozenset({"leases"})
"""Namespaced requests that are the API server's own (its identity lease, renewed every 10 s), not a client's."""


@dataclass(frozen=True)
class Requests:
    """Requests one server served between two scrapes: namespaced ones by ``resource VERB``, and discovery."""

    namespaced: dict[str, int]
    discovery: int
    cluster_scoped: int

    @property
    def total_namespaced(self) -> int:
        """What a client asked for in namespaces: the count that should not grow with N."""
        return sum(self.namespaced.values())

    def describe(self) -> str:
        """The counts by resource and verb, for the table."""
        return ", ".join(f"{key} {count}" for key, count in sorted(self.namespaced.items())) or "none"


def requests_between(before: RequestCounts, after: RequestCounts) -> Requests:
    """What one server served between two scrapes, the server's own lease renewals left out."""
    namespaced: dict[str, int] = defaultdict(int)
    cluster_scoped = 0
    for key, value in after.served.items():
        moved = int(value - before.served.get(key, 0.0))
        if moved <= 0:
            continue
        resource, scope, verb = key
        if resource and scope in ("namespace", "resource") and resource not in NOISE_RESOURCES:
            namespaced[f"{resource} {verb}"] += moved
        elif resource and scope == "cluster":
            cluster_scoped += moved
    return Requests(dict(namespaced), after.discovery() - before.discovery(), cluster_scoped)


def scrape(bench: Bench) -> dict[str, RequestCounts]:
    """Every server's request counters now (management and remotes), to be subtracted after a run."""
    return {name: ApiClient(bench.planes, name).counts() for name in ("mgmt", *bench.remotes)}
