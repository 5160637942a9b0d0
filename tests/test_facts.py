"""The policy pack and the component share one source of names and rules (`gloo_mesh_registration.facts`), and the
pack's process loads no provider SDK.

The engine starts the pack for every preview and update (`python -m pulumi.policy ENGINE .` in `policy/`). Importing
pulumi_kubernetes (about a hundred modules) and pulumi_command there costs start-up time and ties the pack to SDKs it
never calls. Each import runs in a fresh interpreter: this test process has loaded every SDK already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gloo_mesh_registration
from gloo_mesh_registration import args, facts, registration
from lab.engine_double import ROOT
from policy import gloo_mesh_policies

PROVIDER_SDKS = ("pulumi_command", "pulumi_kubernetes")


def provider_sdks_loaded_by(module: str, cwd: str) -> list[str]:
    """The provider SDK packages a fresh interpreter has loaded after importing `module` from `cwd`."""
    script = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return sorted({name.split(".", 1)[0] for name in loaded} & set(PROVIDER_SDKS))


def test_importing_the_pack_as_the_engine_does_loads_no_provider_sdk() -> None:
    assert provider_sdks_loaded_by("gloo_mesh_policies", str(ROOT / "policy")) == []


def test_the_check_sees_a_provider_sdk_when_one_is_imported() -> None:
    """The control: the same check finds both SDKs behind the component itself, so an empty answer above means
    something."""
    assert provider_sdks_loaded_by("gloo_mesh_registration.registration", str(ROOT)) == list(PROVIDER_SDKS)


@pytest.mark.parametrize("module", ["gloo_mesh_registration", "gloo_mesh_registration.facts"])
def test_the_package_and_its_facts_load_no_provider_sdk(module: str) -> None:
    assert provider_sdks_loaded_by(module, str(ROOT)) == []


def test_the_pack_and_the_component_use_the_same_objects() -> None:
    """One definition each: the type the component registers under is the one the pack groups resources by, and the
    error the component raises is the one the pack catches."""
    assert gloo_mesh_policies.REGISTRATION_TYPE == facts.COMPONENT_TYPE
    assert args.RegistrationConfigError is facts.RegistrationConfigError
    assert gloo_mesh_registration.RegistrationConfigError is facts.RegistrationConfigError
    assert args.check_dns1123_label is facts.check_dns1123_label


def test_the_package_names_load_on_first_use() -> None:
    assert gloo_mesh_registration.RemoteClusterRegistration is registration.RemoteClusterRegistration
    assert set(gloo_mesh_registration.__all__) <= set(dir(gloo_mesh_registration))
    with pytest.raises(AttributeError, match="no_such_name"):
        gloo_mesh_registration.no_such_name  # noqa: B018 (the access is the test)
