"""State that lives exactly as long as one Pulumi program run (one engine connection).

Registrations in one program share what they must agree on (claimed cluster names, reads of a management plane).
A module-level dict would leak it into the next run in the same process (the SDK's test runtime, Automation API
inline programs), so the state is keyed by the run's resource monitor and forgotten when that monitor is.
"""

import weakref
from typing import Any

from .sdk_internals import current_monitor

_RUNS: dict[int, dict[str, dict[Any, Any]]] = {}


def run_state(kind: str) -> dict[Any, Any]:
    """The current run's store for `kind`, created on first use."""
    monitor = current_monitor()
    if monitor is None:
        raise RuntimeError("a RemoteClusterRegistration must be created inside a Pulumi program")
    key = id(monitor)
    if key not in _RUNS:
        _RUNS[key] = {}
        weakref.finalize(monitor, _RUNS.pop, key, None)
    return _RUNS[key].setdefault(kind, {})
