"""Stack configuration (``stacks/Pulumi.<stack>.yaml``) to validated registration settings.

The stack file speaks Pulumi's camelCase; the component speaks snake_case. This module is the only translation,
and it rejects unknown keys with the list of known ones, so a typo (``relayAdress``) fails before anything is
declared instead of silently registering with a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .args import (
    ClusterAccess,
    RegistrationConfigError,
    RegistrationSettings,
    StackObject,
    check_dns1123_label,
    stack_keys,
)
from .discovery import discover_generation, find_agent_releases
from .facts import decode_config_value
from .sdk_internals import current_config as current_config  # re-exported: __main__.py reads the config with it
from .validation import validate_registration_args

MANAGEMENT_KEYS: dict[str, str] = stack_keys(StackObject.MANAGEMENT)
"""Keys of the ``management`` object: the management plane, shared by every cluster of the stack (from
:data:`gloo_mesh_registration.args.ARGUMENTS`)."""

CLUSTER_KEYS: dict[str, str] = stack_keys(StackObject.CLUSTER)
"""Keys of each ``clusters`` entry: one registered cluster (``relayServerAddress`` and ``agentVersion`` override the
management ones)."""

TOP_LEVEL_KEYS = ("management", "clusters")


@dataclass(frozen=True)
class StackRegistrations:
    """What one stack registers: the management plane's access and each cluster's validated settings."""

    management: ClusterAccess
    """How to reach the management cluster (validated; a kubeconfig path kept as written, checked expanded)."""
    clusters: tuple[RegistrationSettings, ...]
    """One per ``clusters`` entry, in order: give each to ``RemoteClusterRegistration.from_settings``, which does not
    validate them again."""


def read_stack_config(project: str, config: Mapping[str, Any]) -> StackRegistrations:
    """Validate the project's keys of a stack config (full ``project:key`` names to parsed values).

    Raises :class:`RegistrationConfigError` naming the stack-file key for any problem; every registration is
    validated here, so nothing is declared if any cluster's entry is wrong. Without ``agentGeneration`` the management
    cluster is asked which server it runs (once per management plane), so this runs inside a Pulumi program.
    """
    prefix = f"{project}:"
    own = {key[len(prefix) :]: decode_config_value(value) for key, value in config.items() if key.startswith(prefix)}
    for key in sorted(own):
        if key not in TOP_LEVEL_KEYS:
            raise RegistrationConfigError(
                f"{prefix}{key}",
                "(stack config key)",
                "is not a key of this project",
                f"use {' and '.join(prefix + k for k in TOP_LEVEL_KEYS)}",
            )
    management, clusters = _management_and_clusters(own, prefix)
    mgmt_args = _translate(management, MANAGEMENT_KEYS, f"{prefix}management")
    seen: dict[str, int] = {}
    registrations = tuple(_read_cluster(entry, index, mgmt_args, prefix, seen) for index, entry in enumerate(clusters))
    return StackRegistrations(management=registrations[-1].mgmt, clusters=registrations)


def _management_and_clusters(own: Mapping[str, Any], prefix: str) -> tuple[Mapping[str, Any], list[Any]]:
    management = own.get("management")
    if not isinstance(management, Mapping):
        raise RegistrationConfigError(
            f"{prefix}management",
            repr(management) if management is None else type(management).__name__,
            "is not an object",
            "set it to an object with at least `context` or `kubeconfig` of the management cluster",
        )
    clusters = own.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        raise RegistrationConfigError(
            f"{prefix}clusters",
            "nothing" if clusters is None else type(clusters).__name__,
            "is not a non-empty list",
            "list the clusters to register, each with at least `name` and `context`",
        )
    return management, clusters


def _read_cluster(
    entry: object, index: int, mgmt_args: Mapping[str, Any], prefix: str, seen: dict[str, int]
) -> RegistrationSettings:
    """One ``clusters`` entry over the management object, validated with its stack-file keys as field names;
    ``seen`` (cluster name to entry index) catches a name given twice."""
    where = f"{prefix}clusters[{index}]"
    if not isinstance(entry, Mapping):
        raise RegistrationConfigError(
            where, type(entry).__name__, "is not an object", "give an object with `name` and `context`"
        )
    cluster_args = _translate(entry, CLUSTER_KEYS, where)
    args: dict[str, Any] = {**mgmt_args, **cluster_args}
    labels = {arg: f"{where}.{key}" for key, arg in CLUSTER_KEYS.items()} | {
        arg: f"{prefix}management.{key}" for key, arg in MANAGEMENT_KEYS.items() if arg not in cluster_args
    }
    name = check_dns1123_label(labels["cluster_name"], args.get("cluster_name"), "cluster name")
    if name in seen:
        raise RegistrationConfigError(
            labels["cluster_name"],
            repr(name),
            f"is also the name of {prefix}clusters[{seen[name]}]; two agents under one name claim each other's "
            "relay identity",
            "give every cluster a unique name",
        )
    seen[name] = index
    return validate_registration_args(
        args, _labeller(labels), discover=discover_generation, find_releases=find_agent_releases
    )


def _labeller(labels: Mapping[str, str]) -> Callable[[str], str]:
    return lambda key: labels.get(key, key)


def _translate(raw: Mapping[str, Any], keys: Mapping[str, str], where: str) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise RegistrationConfigError(
            f"{where}.{unknown[0]}", "(key)", "is not a known key", f"use one of: {', '.join(sorted(keys))}"
        )
    return {keys[key]: value for key, value in raw.items()}
