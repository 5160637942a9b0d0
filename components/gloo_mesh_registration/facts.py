"""What the component and its policy pack (``policy/``) must agree on, importable without the provider SDKs.

The pack checks the resources this package declares by these names and rules, so both take them from here and
cannot disagree. The pack runs in a process of its own for every preview and update; this module (and the
``agent_generation`` it re-exports) imports only ``pulumi``, which ``pulumi_policy`` loads anyway, and ``semver``, never
``pulumi_kubernetes`` or ``pulumi_command`` (``tests/test_facts.py`` holds it to that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from .agent_generation import GENERATIONS, AgentGeneration

__all__ = [
    "AGENT_VERSION_OUTPUT",
    "CLUSTER_NAME_OUTPUT",
    "COMPONENT_TYPE",
    "GENERATIONS",
    "AgentGeneration",
    "ConfiguredAgentVersions",
    "RegistrationConfigError",
    "check_dns1123_label",
    "configured_agent_versions",
    "configured_management_namespace",
    "decode_config_value",
    "image_tag",
    "is_dns1123_subdomain",
]

COMPONENT_TYPE = "gloo-mesh-relay:index:RemoteClusterRegistration"
"""Type token of the registration component (``<package>:<module>:<type>``, the package schema's name for it)."""


class RegistrationConfigError(pulumi.RunError, ValueError):
    """Bad input for a registration: names the field, the value and the fix."""

    def __init__(self, field_name: str, value: str, problem: str, fix: str) -> None:
        self.field_name = field_name
        self.value = value
        super().__init__(f"{field_name}: {value} {problem}. Fix: {fix}")


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns1123_subdomain(value: object) -> bool:
    """Whether `value` is a DNS-1123 subdomain, as Kubernetes checks DNS names (at most 253 characters)."""
    return isinstance(value, str) and len(value) <= 253 and _DNS1123_SUBDOMAIN.match(value) is not None


def check_dns1123_label(label: str, value: object, what: str) -> str:
    """Return `value` if it is a DNS-1123 label (what Kubernetes accepts as a namespace or cluster name)."""
    if not isinstance(value, str) or not value or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise RegistrationConfigError(
            label,
            repr(value),
            f"is not a valid {what}: it must be a DNS-1123 label (1 to 63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit)",
            f"use a name such as {_suggest_label(value)!r}",
        )
    return value


def _suggest_label(value: object) -> str:
    text = re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")[:63].strip("-")
    return text or "remote-cluster"


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None for a digest-only or untagged reference.

    ``registry:5000/repo/name:1.1.6`` -> ``1.1.6``; ``repo/name@sha256:...`` -> None. A registry port is not a tag.
    """
    without_digest = image.split("@", 1)[0]
    last_segment = without_digest.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return None
    return last_segment.rsplit(":", 1)[1] or None


def configured_management_namespace(project: str, config: Mapping[str, Any]) -> str | None:
    """``management.namespace`` of a stack file laid out for ``stack_config.read_stack_config``, or None when it sets
    none.

    The policy pack reads it (from the engine's ``PULUMI_CONFIG``) to know where the stack's cluster objects belong,
    so a stack whose management plane is not in the default namespace needs no policy config for that."""
    management = decode_config_value(config.get(f"{project}:management"))
    namespace = management.get("namespace") if isinstance(management, Mapping) else None
    return namespace if isinstance(namespace, str) and namespace else None


AGENT_VERSION_OUTPUT = "agent_version"
"""The registration's output (``register_outputs``) of the agent version it resolved: given, else the image tag of
the management server's Deployment, which the registration read. The engine keeps a component's registered outputs in
its state, where the policy pack sees them (reads it never sees)."""
CLUSTER_NAME_OUTPUT = "cluster_name"
"""The registration's output of the name its cluster is registered under (a stack file's ``clusters[i].name``)."""


@dataclass(frozen=True)
class ConfiguredAgentVersions:
    """The agent versions a stack file sets (each with a leading ``v`` stripped)."""

    management: str | None
    """``management.agentVersion``: every cluster without its own follows it instead of the server (None: they follow
    the server's version, discovered)."""
    clusters: Mapping[str, str]
    """Cluster name to ``clusters[i].agentVersion``: the clusters held at a version of their own (a staged upgrade)."""
    following: frozenset[str] = frozenset()
    """The clusters whose registration reads the server's version from its Deployment and installs the agent at it:
    every ``clusters`` entry without an ``agentVersion`` of its own, where ``management`` sets none either."""


def configured_agent_versions(project: str, config: Mapping[str, Any]) -> ConfiguredAgentVersions:
    """The agent versions of a stack file laid out for ``stack_config.read_stack_config``. A value that is not a plain
    non-empty string is left out (the program refuses those).

    The policy pack reads them (from the engine's ``PULUMI_CONFIG``): an agent held by its cluster's entry may run a
    version older than the server's, which the pack otherwise refuses; and only where the stack sets no management
    version do the other agents run the server's version, which their registrations' ``agent_version`` outputs show."""

    def version(entry: object) -> str | None:
        value = entry.get("agentVersion") if isinstance(entry, Mapping) else None
        return value.strip().removeprefix("v") if isinstance(value, str) and value.strip() else None

    management = version(decode_config_value(config.get(f"{project}:management")))
    clusters = decode_config_value(config.get(f"{project}:clusters"))
    held: dict[str, str] = {}
    following: set[str] = set()
    for entry in clusters if isinstance(clusters, list) else []:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str):
            continue
        pinned = version(entry)
        if pinned is not None:
            held[name] = pinned
        elif management is None and entry.get("agentVersion") is None:
            following.add(name)
    return ConfiguredAgentVersions(management, held, frozenset(following))


def decode_config_value(value: Any) -> Any:
    """Pulumi hands structured config to the program as JSON text (``Config.get_object`` decodes it the same way)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
