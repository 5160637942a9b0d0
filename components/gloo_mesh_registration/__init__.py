"""Gloo Mesh Enterprise relay registration as a Pulumi component."""

from .agent_generation import GLOO_MESH_ENTERPRISE_1X, AgentGeneration
from .args import RegistrationConfigError, RemoteClusterRegistrationArgs
from .discovery import DiscoveryError
from .registration import RemoteClusterRegistration

__all__ = [
    "GLOO_MESH_ENTERPRISE_1X",
    "AgentGeneration",
    "DiscoveryError",
    "RegistrationConfigError",
    "RemoteClusterRegistration",
    "RemoteClusterRegistrationArgs",
]
