"""Each Pulumi SDK internal the component relies on (`gloo_mesh_registration.sdk_internals`), checked for what it does
with the installed SDK: an SDK upgrade that changes one fails here, by name.

The programs run on the mock runtime of `engine_double.run_program`, as the component's own tests do. The SDK's
`Resource.pulumi_resource_name`, public, is checked too: the component names its children and the shared reads by it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental import host
from pulumi.runtime import set_all_config

from gloo_mesh_registration.sdk_internals import (
    current_config,
    current_monitor,
    hosting_component_provider,
    is_known,
    mark_hosting_component_provider,
    unknown_output,
)
from lab.engine_double import ROOT, FakeClusters, RecordingMonitor, run_program

THING = "test:index:Thing"


def run_asking(ask: Callable[[], Any], fake: FakeClusters | None = None, *, preview: bool) -> RecordingMonitor:
    """Run a program that declares what `ask` declares and waits for the coroutine `ask` returns."""
    return run_program(lambda: pulumi.Output.from_input(asyncio.ensure_future(ask())), fake, preview=preview)


# -- Output._is_known ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_is_known_answers_what_the_engine_planned(preview: bool) -> None:
    fake = FakeClusters()
    fake.managed.add("kept")  # the double answers a preview with this one's ID: the stack has it
    answers: dict[str, bool] = {}

    def ask() -> Any:
        created = pulumi.CustomResource(THING, "created", {})
        kept = pulumi.CustomResource(THING, "kept", {})
        outputs: dict[str, pulumi.Output[Any]] = {
            "the ID of a resource about to be created": created.id,
            "the ID of a resource the stack has": kept.id,
            "a plain value": pulumi.Output.from_input("value"),
            "a secret value": pulumi.Output.secret("value"),
            "a secret of the new ID": pulumi.Output.secret(created.id),
            "an apply on the new ID": created.id.apply(lambda value: value),
        }

        async def answer() -> None:
            for what, output in outputs.items():
                answers[what] = await is_known(output)

        return answer()

    run_asking(ask, fake, preview=preview)
    new_id_known = not preview
    assert answers == {
        "the ID of a resource about to be created": new_id_known,
        "the ID of a resource the stack has": True,
        "a plain value": True,
        "a secret value": True,
        "a secret of the new ID": new_id_known,
        "an apply on the new ID": new_id_known,
    }


# -- the Output constructor ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_unknown_output_resolves_unknown_and_reaches_the_engine_as_unknown(preview: bool) -> None:
    answers: dict[str, Any] = {}
    applied: list[bool] = []

    def ask() -> Any:
        output = unknown_output(False)
        output.apply(applied.append)
        pulumi.CustomResource(THING, "fed", {"flag": output})

        async def answer() -> None:
            answers["known"] = await is_known(output)
            answers["secret"] = await output.is_secret()
            answers["value"] = await output.future(with_unknowns=True)

        return answer()

    monitor = run_asking(ask, preview=preview)
    assert answers == {"known": False, "secret": False, "value": False}
    assert applied == []  # an apply never runs on an unknown value
    (fed,) = [record for record in monitor.registered(THING) if record.name == "fed"]
    assert isinstance(fed.inputs["flag"], pulumi.output.Unknown)  # what the engine shows as "output<bool>"


# -- the runtime's config -----------------------------------------------------------------------------------------


@pytest.fixture
def no_program_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    set_all_config({}, [])
    yield
    set_all_config({}, [])


@pytest.mark.usefixtures("no_program_config")
def test_current_config_reads_what_the_cli_and_the_automation_api_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's language host passes PULUMI_CONFIG; the Automation API and the test runtime call set_all_config.
    A key set both ways has the set value, as `pulumi.Config` reads it."""
    structured = json.dumps({"context": "kind-mgmt"})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"project:management": structured, "project:both": "from-env"}))
    set_all_config({"project:both": "set", "project:only-set": "set"})

    config = current_config()

    assert config == {"project:management": structured, "project:both": "set", "project:only-set": "set"}
    read_by_sdk = pulumi.Config("project")
    assert {key: read_by_sdk.get(key.split(":", 1)[1]) for key in config} == config


@pytest.mark.usefixtures("no_program_config")
def test_current_config_is_empty_without_config() -> None:
    assert current_config() == {}


# -- the resource monitor and the component provider host ---------------------------------------------------------


def test_current_monitor_is_the_running_programs_monitor() -> None:
    seen: list[object | None] = []
    monitor = RecordingMonitor(FakeClusters())
    run_program(lambda: seen.append(current_monitor()), monitor=monitor)
    assert seen == [monitor]


def test_a_fresh_process_has_no_monitor_and_hosts_no_components() -> None:
    script = (
        "from gloo_mesh_registration.sdk_internals import current_monitor, hosting_component_provider\n"
        "print(current_monitor() is None, hosting_component_provider())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.split()) == (0, ["True", "False"]), done.stderr


@pytest.fixture
def sdk_host(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The SDK's `component_provider_host` with its server replaced: each call of the server records whether
    `hosting_component_provider` answers True while it serves. The flag starts unset and is restored after."""
    monkeypatch.setattr(host, "is_hosting", False)
    served: list[bool] = []
    monkeypatch.setattr(host, "ComponentProvider", lambda *args: None)
    monkeypatch.setattr(host, "main", lambda provider, args: served.append(hosting_component_provider()))
    return served


def test_hosting_is_what_the_sdk_host_sets_while_it_serves(sdk_host: list[bool]) -> None:
    assert not hosting_component_provider()
    host.component_provider_host([], "gloo-mesh-relay")
    assert sdk_host == [True]


def test_marking_the_host_is_what_the_sdk_host_checks(sdk_host: list[bool]) -> None:
    """After the mark, the SDK's host returns without serving, as for a process it hosts already."""
    mark_hosting_component_provider()
    assert hosting_component_provider()
    host.component_provider_host([], "gloo-mesh-relay")
    assert sdk_host == []


# -- the logical name (public) ------------------------------------------------------------------------------------


def test_a_resources_name_is_the_name_it_was_given() -> None:
    names: list[str] = []

    def program() -> None:
        component = pulumi.ComponentResource("test:index:Group", "group-name")
        names.append(component.pulumi_resource_name)
        names.append(
            pulumi.CustomResource(
                THING, "child-name", {}, pulumi.ResourceOptions(parent=component)
            ).pulumi_resource_name
        )

    run_program(program)
    assert names == ["group-name", "child-name"]
