"""What the program itself says about the client certificate step, so that users see it after the run.

pulumi-command 1.2.1 sends each output line of a step as an *ephemeral* status message (``provider/pkg/provider/util/
util.go`` ``LogOutput`` -> pulumi-go-provider v1.3.0 ``Logger.InfoStatus``): the CLI shows it in the progress display
while the step runs, and its final "Diagnostics" section leaves it out (pulumi/pulumi ``pkg/backend/display/
progress.go`` ``printDiagnostics``). The lines a user must find after the run are therefore re-issued by the program
with ``pulumi.log`` on the registration, once the step ended well. A failed step needs nothing of this: its failure
text holds the step's whole output, and the program's error shows it under "Diagnostics".

Only the script's own fixed texts are re-issued, recognised in full with the cluster name, the namespace and a number
of seconds or minutes filled in (none of which is secret): the step's stderr is a secret Output when a kubeconfig's
contents are, and a line of another shape (kubectl's own words, say) is never copied. The waiting lines
(``waiting for the agent's client certificate (15s of 300s)``) are progress, left to the progress display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pulumi

Severity = Literal["info", "warning"]


@dataclass(frozen=True)
class ReportedLine:
    """A line of the step's output as the program re-issues it."""

    severity: Severity
    message: str

    def log(self, resource: pulumi.Resource) -> None:
        """``pulumi.log`` it on ``resource`` (a persistent diagnostic: it appears under "Diagnostics")."""
        if self.severity == "warning":
            pulumi.log.warn(self.message, resource=resource)
        else:
            pulumi.log.info(self.message, resource=resource)


WARNING_PREFIX = "warning: "


def _shapes(cluster_name: str, namespace: str) -> list[tuple[Severity, re.Pattern[str]]]:
    """The client certificate step's lines worth keeping (``lifecycle.client_certificate_step``), as whole-line
    patterns with only the cluster name, the namespace and numbers free."""
    cluster = re.escape(cluster_name)
    ns = re.escape(namespace)
    return [
        ("info", re.compile(rf"cluster {cluster}: the agent holds its client certificate \(after \d+s\)")),
        ("info", re.compile(rf"cluster {cluster}: the agent holds its client certificate")),
        ("info", re.compile(rf"cluster {cluster}: removed a bootstrap token left behind by an earlier run")),
        ("info", re.compile(rf"bootstrap token removed from namespace {ns}")),
        (
            "warning",
            re.compile(
                rf"warning: could not remove the bootstrap token from namespace {ns} now; a guard keeps trying for "
                rf"\d+ minutes, and the next pulumi up removes it"
            ),
        ),
    ]


def certificate_step_report(output: str, *, cluster_name: str, namespace: str) -> list[ReportedLine]:
    """The lines of the certificate step's ``output`` to re-issue, in order; a warning without its ``warning: ``
    prefix (the CLI shows the severity)."""
    shapes = _shapes(cluster_name, namespace)
    reported: list[ReportedLine] = []
    for line in output.splitlines():
        text = line.strip()
        severity = next((severity for severity, shape in shapes if shape.fullmatch(text)), None)
        if severity == "warning":
            reported.append(ReportedLine("warning", text.removeprefix(WARNING_PREFIX)))
        elif severity == "info":
            reported.append(ReportedLine("info", text))
    return reported


def report_certificate_step(output: str, resource: pulumi.Resource, *, cluster_name: str, namespace: str) -> None:
    """Re-issue the certificate step's lines worth keeping on ``resource`` (see the module's docstring)."""
    for line in certificate_step_report(output, cluster_name=cluster_name, namespace=namespace):
        line.log(resource)
