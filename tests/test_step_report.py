"""The program re-issues the client certificate step's important lines (step_report.py), since pulumi-command shows a
step's output only as ephemeral status messages (pulumi/pulumi-command v1.2.1 ``provider/pkg/provider/util/util.go``
``LogOutput`` -> pulumi-go-provider v1.3.0 ``Logger.InfoStatus``), which the CLI leaves out of "Diagnostics"
(pulumi/pulumi ``pkg/backend/display/progress.go`` ``printDiagnostics``). The real CLI's final output is checked in
tests/e2e/test_faults_agent.py."""

from __future__ import annotations

import re

import pulumi
from builders import registration_args, run_registrations

from gloo_mesh_registration.lifecycle import RemoteIdentity, client_certificate_step
from gloo_mesh_registration.step_report import ReportedLine, certificate_step_report
from lab.engine_double import COMPONENT, FakeClusters, LogRecord, RecordingMonitor

CLUSTER = "remote-cluster"
NAMESPACE = "gloo-mesh"

KEPT = {
    ReportedLine("info", f"cluster {CLUSTER}: the agent holds its client certificate (after 17s)"),
    ReportedLine("info", f"cluster {CLUSTER}: the agent holds its client certificate"),
    ReportedLine("info", f"cluster {CLUSTER}: removed a bootstrap token left behind by an earlier run"),
    ReportedLine("info", f"bootstrap token removed from namespace {NAMESPACE}"),
    ReportedLine(
        "warning",
        f"could not remove the bootstrap token from namespace {NAMESPACE} now; a guard keeps trying for 10 minutes, "
        "and the next pulumi up removes it",
    ),
}


def printable_lines(remove_token: bool) -> list[str]:
    """Every line the step's script can print (each ``echo "..."`` of it), its variables filled in as the shell would:
    the report is checked against the script itself, so a changed text there fails here."""
    program = client_certificate_step(
        RemoteIdentity(NAMESPACE, "relay-identity-token-secret", "relay-client-tls-secret"),
        cluster_name=CLUSTER,
        timeout_seconds=300,
        remove_token=remove_token,
        agent_deployment="enterprise-agent",
    ).interpreter[2]
    echoed = re.findall(r'echo "((?:[^"\\]|\\.)*)"', program, re.DOTALL)
    values = {
        "\\\n": "",  # a line continued inside the quotes
        "$((GM_GUARD_SECONDS / 60))": "10",
        "$GM_CLUSTER": CLUSTER,
        "$GM_NAMESPACE": NAMESPACE,
        "${_gm_elapsed}": "17",
        "${GM_TIMEOUT}": "300",
    }
    lines = []
    for text in echoed:
        for variable, value in values.items():
            text = text.replace(variable, value)
        lines.append(re.sub(r"\$\(_gm_cause [^)]*\)", "dial tcp 10.0.0.1:6443: connect: connection refused", text))
    return lines


def test_the_script_prints_each_kept_line_and_the_report_keeps_exactly_those() -> None:
    lines = printable_lines(remove_token=True) + printable_lines(remove_token=False)
    reported = set(certificate_step_report("\n".join(lines), cluster_name=CLUSTER, namespace=NAMESPACE))
    assert reported == KEPT


def test_lines_are_kept_in_order_and_progress_errors_and_other_words_are_not() -> None:
    output = "\n".join(
        [
            f"cluster {CLUSTER}: waiting for the agent's client certificate (15s of 300s)",
            f"cluster {CLUSTER}: cannot watch secrets in namespace {NAMESPACE}: some kubectl words",
            f"  cluster {CLUSTER}: the agent holds its client certificate (after 3s)  ",
            f"bootstrap token removed from namespace {NAMESPACE}",
            f"bootstrap token removed from namespace {NAMESPACE} token=c2VjcmV0",  # not the script's text
            "cluster other: the agent holds its client certificate (after 3s)",  # another cluster's
            f"cluster {CLUSTER}: the agent holds its client certificate (after 3s) and more",
            "error: cluster remote-cluster is not reachable: x",
        ]
    )
    assert certificate_step_report(output, cluster_name=CLUSTER, namespace=NAMESPACE) == [
        ReportedLine("info", f"cluster {CLUSTER}: the agent holds its client certificate (after 3s)"),
        ReportedLine("info", f"bootstrap token removed from namespace {NAMESPACE}"),
    ]


def test_names_are_matched_literally() -> None:
    """A cluster name is a DNS-1123 label and cannot hold regex syntax, but a namespace's dots must not match any
    character either way."""
    line = "bootstrap token removed from namespace aXb"
    assert certificate_step_report(line, cluster_name=CLUSTER, namespace="a.b") == []


def component_urn(monitor: RecordingMonitor) -> str:
    return monitor.one(COMPONENT).urn


def test_pulumi_up_logs_the_lines_on_the_registration_as_persistent_diagnostics() -> None:
    monitor = run_registrations(("remote", registration_args(CLUSTER, "kind-mgmt-cluster", "kind-remote-cluster")))
    urn = component_urn(monitor)
    assert monitor.said() == [
        LogRecord("info", f"cluster {CLUSTER}: the agent holds its client certificate (after 17s)", urn, False),
        LogRecord("info", f"bootstrap token removed from namespace {NAMESPACE}", urn, False),
    ]


def test_a_warning_is_logged_as_a_warning_on_the_registration() -> None:
    fake = FakeClusters()
    fake.certificate_output = (
        f"warning: could not remove the bootstrap token from namespace {NAMESPACE} now; a guard keeps trying for "
        "10 minutes, and the next pulumi up removes it"
    )
    monitor = run_registrations(
        ("remote", registration_args(CLUSTER, "kind-mgmt-cluster", "kind-remote-cluster")), fake=fake
    )
    assert [(log.severity, log.urn) for log in monitor.said()] == [("warning", component_urn(monitor))]
    assert monitor.said()[0].message.startswith("could not remove the bootstrap token")


def test_with_kubeconfig_contents_the_secret_output_still_gives_its_fixed_lines() -> None:
    """The step's stderr is a secret Output when the kubeconfig's contents are; the fixed lines carry none of it."""
    kubeconfig = pulumi.Output.secret("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t}}]\n")
    monitor = run_registrations(
        ("remote", registration_args(CLUSTER, "kind-mgmt-cluster", "kind-remote-cluster", remote_kubeconfig=kubeconfig))
    )
    assert [log.message for log in monitor.said()] == [
        f"cluster {CLUSTER}: the agent holds its client certificate (after 17s)",
        f"bootstrap token removed from namespace {NAMESPACE}",
    ]
    assert not any("s3cr3t" in log.message for log in monitor.said())


def test_a_preview_logs_nothing_of_the_step() -> None:
    monitor = run_registrations(
        ("remote", registration_args(CLUSTER, "kind-mgmt-cluster", "kind-remote-cluster")), preview=True
    )
    assert not any("client certificate" in log.message or "bootstrap token" in log.message for log in monitor.said())
