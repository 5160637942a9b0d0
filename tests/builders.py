"""How the fast tests build a RemoteClusterRegistration's inputs and run registrations on the engine double.

Each test module keeps its own names (the kind guide's, a fleet's, a 2.x workshop's): what it asserts compares with
them, and the product tells the management context from the remote one. What the modules share is built here once.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi

from gloo_mesh_registration import RemoteClusterRegistration, RemoteClusterRegistrationArgs
from lab.engine_double import FakeClusters, RecordingMonitor, run_program


def registration_inputs(cluster_name: str, mgmt_context: str, remote_context: str, /, **inputs: Any) -> dict[str, Any]:
    """The three inputs every test registration starts from, then ``inputs``. Positional-only, so that ``inputs`` may
    replace any of the three by name, or set one to None, as the tests of bad input do."""
    return {"cluster_name": cluster_name, "mgmt_context": mgmt_context, "remote_context": remote_context, **inputs}


def registration_args(
    cluster_name: str, mgmt_context: str, remote_context: str, /, **inputs: Any
) -> RemoteClusterRegistrationArgs:
    """:func:`registration_inputs` as the component's argument type: the component checks the values, not mypy."""
    return cast(
        RemoteClusterRegistrationArgs, registration_inputs(cluster_name, mgmt_context, remote_context, **inputs)
    )


def run_registrations(
    *entries: tuple[str, RemoteClusterRegistrationArgs],
    fake: FakeClusters | None = None,
    preview: bool = False,
    change: pulumi.ResourceTransformation | None = None,
) -> RecordingMonitor:
    """Run the real component once per (resource name, args) in one program; ``change`` is a transformation of the
    component's children, which is how a program would alter what the component declares."""

    def program() -> None:
        opts = pulumi.ResourceOptions(transformations=[change]) if change else None
        for name, registration in entries:
            RemoteClusterRegistration(name, registration, opts)

    return run_program(program, fake, preview=preview)
