"""The Pulumi Python SDK internals the component relies on, each behind one function.

The public API has no equivalent for these. Each function names the SDK source it relies on (pulumi/pulumi
``sdk/python/lib/pulumi/...``, as of pulumi 3.272.0, the version constraints.txt pins), and
``tests/test_sdk_internals.py`` checks each one's behaviour against the installed SDK, so an SDK upgrade that changes
one fails there, by name, instead of somewhere inside a registration. (A resource's logical name, once read from the
private ``Resource._name``, is public: ``Resource.pulumi_resource_name``, ``resource.py``.)
"""

from __future__ import annotations

from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


async def is_known(output: pulumi.Output[Any]) -> bool:
    """Whether an output's value is known: a preview answers a resource it is about to create with an unknown ID.

    ``Output._is_known``, an awaitable property (``output.py``): not public, but kept working because generated
    SDKs use it (the SDK says so where it defines it). ``Output.is_known()`` exists too, in a block the SDK marks
    "private implementation details"."""
    return await output._is_known


def unknown_output(placeholder: T) -> pulumi.Output[T]:
    """An output whose value is not known, as a preview shows a value only ``pulumi up`` produces (no apply runs on
    it); underneath it resolves to `placeholder`. No public factory makes one: this calls the ``Output`` constructor,
    ``Output(resources, future, is_known, is_secret=None)`` (``output.py``, ``Output.__init__``)."""

    async def value() -> T:
        return placeholder

    async def known() -> bool:
        return False

    return pulumi.Output(set(), value(), known())


def current_config() -> dict[str, Any]:
    """Every config key of the running program (full ``project:key`` names to their values, objects as JSON text).

    The CLI's language host passes config as ``PULUMI_CONFIG``, the Automation API and the test runtime through
    ``set_all_config``; ``pulumi.Config`` reads both, key by key, and this reads both whole: ``get_config_env()``
    and the ``CONFIG`` context variable, which wins (``runtime/config.py``, as ``get_config`` orders them)."""
    from pulumi.runtime import config as runtime_config

    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def current_monitor() -> object | None:
    """The running program's resource monitor (one per engine connection), or None outside a program.

    ``get_monitor()`` of ``runtime/settings.py``, which ``pulumi.runtime`` does not export."""
    monitor: object | None = pulumi.runtime.settings.get_monitor()
    return monitor


def hosting_component_provider() -> bool:
    """Whether this process serves components to the engine as a component provider.

    The module flag ``is_hosting`` of ``provider/experimental/host.py``, set by ``component_provider_host`` (and by
    :func:`mark_hosting_component_provider`)."""
    from pulumi.provider.experimental import host

    return bool(host.is_hosting)


def mark_hosting_component_provider() -> None:
    """Set what ``component_provider_host`` sets before it serves (``provider/experimental/host.py``, ``is_hosting``),
    for a process that serves the components itself; the SDK's host then returns at once if called."""
    from pulumi.provider.experimental import host

    host.is_hosting = True
