"""Per-run state: what one program run's registrations share is forgotten with that run's engine connection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pulumi.runtime.settings as runtime_settings
import pytest

from gloo_mesh_registration import program_run


class _Monitor:
    """Stands in for a run's resource monitor client: only its identity and lifetime matter here."""


@pytest.fixture
def no_monitor() -> Iterator[None]:
    """The SDK keeps the last run's monitor in a global; each test sets its own and puts the old one back."""
    before = runtime_settings.SETTINGS.monitor
    yield
    runtime_settings.SETTINGS.monitor = before


def test_a_run_s_state_is_forgotten_when_its_monitor_goes(no_monitor: None) -> None:
    # The SDK's settings (pulumi._utils.ContextProperty) keep for good the monitor set while none was current, as
    # their default: the run that goes has to come after such a one, as every run after a process's first does.
    next_run = _Monitor()
    runtime_settings.SETTINGS.monitor = _Monitor() if runtime_settings.SETTINGS.monitor is None else next_run
    monitor = _Monitor()
    runtime_settings.SETTINGS.monitor = monitor
    program_run.run_state("claims")["remote-cluster"] = "first"
    key = id(monitor)
    assert program_run.run_state("claims") == {"remote-cluster": "first"}, "one store per run and kind"
    assert key in program_run._RUNS
    runtime_settings.SETTINGS.monitor = next_run
    del monitor
    gc.collect()
    assert key not in program_run._RUNS, "a finished run's state stays, and a later run could see it"


def test_a_new_run_starts_with_nothing(no_monitor: None) -> None:
    runtime_settings.SETTINGS.monitor = _Monitor()
    program_run.run_state("claims")["remote-cluster"] = "first"
    runtime_settings.SETTINGS.monitor = _Monitor()
    assert program_run.run_state("claims") == {}


def test_outside_a_program_there_is_no_state(no_monitor: None) -> None:
    runtime_settings.SETTINGS.monitor = None
    with pytest.raises(RuntimeError, match="must be created inside a Pulumi program"):
        program_run.run_state("claims")
