"""What the component reads from a shell step's output (lifecycle.py's parsers), line by line as the scripts print it.

The scripts themselves run at the kubectl level (tests/e2e/test_lifecycle_kubectl.py); the engine double prints the
same format. These cases pin the format's edges: a reason line, details after a reference, blank lines.
"""

from __future__ import annotations

from gloo_mesh_registration.lifecycle import ExistingObjects, parse_existing


def test_existing_objects_are_the_first_word_of_each_line_and_the_rest_is_their_detail() -> None:
    printed = "namespace/gloo-mesh\n\n  helm-crds/gloo-mesh/gloo-platform-crds other/a.admin.gloo.solo.io  \n"
    assert parse_existing(printed) == ExistingObjects(
        refs=frozenset({"namespace/gloo-mesh", "helm-crds/gloo-mesh/gloo-platform-crds"}),
        unreachable=None,
        details={"helm-crds/gloo-mesh/gloo-platform-crds": "other/a.admin.gloo.solo.io"},
    )


def test_a_cluster_that_cannot_be_asked_is_a_reason_and_no_object() -> None:
    printed = "UNREACHABLE dial tcp 127.0.0.1:6443: connect: connection refused\n"
    assert parse_existing(printed) == ExistingObjects(
        refs=frozenset(), unreachable="dial tcp 127.0.0.1:6443: connect: connection refused"
    )


def test_nothing_printed_is_nothing_found() -> None:
    assert parse_existing("") == ExistingObjects(refs=frozenset(), unreachable=None)
