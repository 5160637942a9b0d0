"""Gloo Mesh Enterprise relay registration as a Pulumi component.

The names below are loaded on first use (PEP 562), so importing a module of the package that needs no provider SDK
(``gloo_mesh_registration.facts``, what the policy pack imports) does not import pulumi_kubernetes and pulumi_command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent_generation import GLOO_MESH_ENTERPRISE_1X, AgentGeneration
    from .args import RemoteClusterRegistrationArgs
    from .discovery import DiscoveryError
    from .facts import RegistrationConfigError
    from .registration import RemoteClusterRegistration

__all__ = [
    "GLOO_MESH_ENTERPRISE_1X",
    "AgentGeneration",
    "DiscoveryError",
    "RegistrationConfigError",
    "RemoteClusterRegistration",
    "RemoteClusterRegistrationArgs",
]

_MODULE_OF = {
    "GLOO_MESH_ENTERPRISE_1X": "agent_generation",
    "AgentGeneration": "agent_generation",
    "DiscoveryError": "discovery",
    "RegistrationConfigError": "facts",
    "RemoteClusterRegistration": "registration",
    "RemoteClusterRegistrationArgs": "args",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
