"""A management plane whose relay secret is missing or empty, with the real engine: the run fails before anything is
registered, naming the secret, the namespace and the context.

The session's management plane stays intact: each fault is a second management plane in a namespace of its own on
the same management server (``install_second_management_plane``), with the server Deployment and its Service as
the chart leaves them, so discovery succeeds and only the relay secret is wrong. Each case registers one cluster on
the session's ``remote`` server in a namespace of its own.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.cluster import ControlPlanes
from lab.gloo import ManagementPlane, install_second_management_plane
from lab.pulumi_cli import PulumiProject, Result
from lab.registration_checks import (
    ROOT_CA,
    TOKEN,
    assert_nothing_registered,
    error_lines,
    has_secret,
    kubernetes_cluster,
    up,
)
from lab.scenarios import Lab


@dataclass(frozen=True)
class Fault:
    case: str
    missing_secrets: tuple[str, ...] = ()
    empty_keys: tuple[tuple[str, str], ...] = ()

    @property
    def mgmt_namespace(self) -> str:
        return f"gloo-{self.case}"

    @property
    def cluster(self) -> str:
        return f"{self.case}-e2e"

    @property
    def namespace(self) -> str:
        return f"{self.case}-agents"

    def expected_error(self, planes: ControlPlanes) -> str:
        """The message's beginning: the secret, the namespace and the context (and what is wrong with it)."""
        secret_name, problem = (
            (self.missing_secrets[0], "does not exist")
            if self.missing_secrets
            else (self.empty_keys[0][0], f"has no non-empty key {self.empty_keys[0][1]!r}")
        )
        return (
            f"secret {secret_name!r} in namespace {self.mgmt_namespace!r} of the management cluster "
            f"(context {planes.clusters['mgmt'].context!r} in kubeconfig file '{planes.kubeconfig}') {problem}"
        )


FAULTS = (
    Fault("no-token", missing_secrets=(TOKEN,)),
    Fault("empty-token", empty_keys=((TOKEN, "token"),)),
    Fault("no-root-ca", missing_secrets=(ROOT_CA,)),
)


@pytest.fixture(scope="module")
def broken_planes(planes: ControlPlanes, management_plane: ManagementPlane) -> Iterator[dict[str, ManagementPlane]]:
    installed = {
        fault.case: install_second_management_plane(
            planes, fault.mgmt_namespace, missing_secrets=fault.missing_secrets, empty_keys=fault.empty_keys
        )
        for fault in FAULTS
    }
    yield installed
    for fault in FAULTS:
        planes.kubectl("mgmt", "delete", "namespace", fault.mgmt_namespace, "--wait=false", check=False)


def _project(lab: Lab, fault: Fault, suffix: str = "") -> PulumiProject:
    entry = lab.cluster_entry(fault.cluster + suffix, fault.namespace + suffix)
    return lab.project(f"{fault.case}{suffix}", lab.stack_config([entry], namespace=fault.mgmt_namespace))


def _assert_fails_naming_the_secret(result: Result, fault: Fault, planes: ControlPlanes) -> None:
    assert result.returncode != 0, result.output
    expected = fault.expected_error(planes)
    assert any(expected in line for line in error_lines(result, "secret")), (
        f"no error line says {expected!r}:\n{result.output[-4000:]}"
    )


def _assert_nothing_registered(planes: ControlPlanes, fault: Fault, suffix: str = "") -> None:
    assert_nothing_registered(planes, "remote", fault.cluster + suffix, fault.namespace + suffix)
    for name in (ROOT_CA, TOKEN):
        assert not has_secret(planes, "remote", fault.namespace + suffix, name)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.case for f in FAULTS])
def test_preview_and_up_fail_naming_the_secret_namespace_and_context_and_create_nothing(
    fault: Fault, lab: Lab, planes: ControlPlanes, broken_planes: dict[str, ManagementPlane]
) -> None:
    cli = _project(lab, fault)
    _assert_fails_naming_the_secret(cli.run("preview", "--diff"), fault, planes)
    _assert_nothing_registered(planes, fault)
    # `pulumi up` previews first: the same read fails it before any step runs.
    _assert_fails_naming_the_secret(up(cli), fault, planes)
    _assert_nothing_registered(planes, fault)
    assert kubernetes_cluster(planes, fault.cluster) is None


SLOW_MANAGEMENT_KUBECTL = """\
#!/bin/sh
# kubectl, answering 3 s late for secrets of the management cluster (one far away, say in another region)
case " $* " in
  *" --context {context} get secret "*) sleep 3 ;;
esac
exec "{kubectl}" "$@"
"""


def test_up_without_preview_creates_nothing_either(
    lab: Lab, planes: ControlPlanes, broken_planes: dict[str, ManagementPlane]
) -> None:
    """Without a preview the read fails during the update. The shell steps honour ``KUBECTL``; a kubectl that answers
    the management cluster's secret reads 3 s late makes the outcome the same on every run (with the local servers'
    speed the namespace is created in most runs, not all)."""
    fault = FAULTS[0]
    slow = lab.work / "slow-management-kubectl"
    slow.write_text(
        SLOW_MANAGEMENT_KUBECTL.format(context=planes.clusters["mgmt"].context, kubectl=planes.bin_dir / "kubectl")
    )
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    cli = _project(lab, fault, suffix="-skip")
    cli.extra_env["KUBECTL"] = str(slow)
    try:
        _assert_fails_naming_the_secret(up(cli, "--skip-preview"), fault, planes)
        _assert_nothing_registered(planes, fault, suffix="-skip")
    finally:
        cli.run("destroy", "--yes", "--skip-preview")
