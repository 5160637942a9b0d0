"""The objects a registration renders, validated offline as the API server would.

Core objects against the Kubernetes OpenAPI schemas shipped in ``kubernetes-validate`` (strict: unknown fields
are errors); the KubernetesCluster against the CRD's own OpenAPI v3 schema (solo-io/skv2, vendored in
``tests/data`` with its source line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from builders import registration_args

from gloo_mesh_registration import RemoteClusterRegistration
from lab.engine_double import CLUSTER_1X, COMMAND, NAMESPACE, SECRET, RecordingMonitor, plain, run_program

KUBERNETES_VERSION = "1.32.0"
CRD_FILE = Path(__file__).parent / "data" / "multicluster.solo.io_v1alpha1_crds.yaml"


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI v3 ``nullable: true`` is JSON Schema ``type: [T, "null"]``."""
    if isinstance(node, dict):
        converted = {k: _nullable_to_json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and isinstance(node.get("type"), str):
            converted["type"] = [node["type"], "null"]
        return converted
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


def kubernetes_cluster_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    assert crd["spec"]["names"]["kind"] == "KubernetesCluster" and crd["spec"]["group"] == "multicluster.solo.io"
    schema: dict[str, Any] = _nullable_to_json_schema(crd["spec"]["validation"]["openAPIV3Schema"])
    return schema


@pytest.fixture(scope="module")
def recorded() -> RecordingMonitor:
    return run_program(
        lambda: RemoteClusterRegistration(
            "remote-cluster", registration_args("remote-cluster", "mgmt", "remote", cluster_domain="east.local")
        )
    )


def _object(record_inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in plain(record_inputs).items() if k in ("apiVersion", "kind", "metadata", "spec", "data", "type")
    }


def test_namespace_is_a_valid_kubernetes_object(recorded: RecordingMonitor) -> None:
    namespace = _object(recorded.one(NAMESPACE).inputs)
    assert namespace["kind"] == "Namespace"
    kubernetes_validate.validate(namespace, KUBERNETES_VERSION, strict=True)


def test_root_ca_copy_is_a_valid_kubernetes_object(recorded: RecordingMonitor) -> None:
    secret = _object(recorded.one(SECRET, "-root-ca").inputs)
    assert secret["kind"] == "Secret"
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)


def test_bootstrap_token_manifest_is_a_valid_kubernetes_object(recorded: RecordingMonitor) -> None:
    manifest = json.loads(plain(recorded.one(COMMAND, "bootstrap-token").inputs)["stdin"])
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field(recorded: RecordingMonitor) -> None:
    namespace = _object(recorded.one(NAMESPACE).inputs)
    namespace["metadata"]["clusterDomain"] = "cluster.local"  # where the guide's broken YAML puts it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(namespace, KUBERNETES_VERSION, strict=True)


def test_kubernetes_cluster_matches_the_crd_schema(recorded: RecordingMonitor) -> None:
    cluster = _object(recorded.one(CLUSTER_1X).inputs)
    jsonschema.validate(cluster, kubernetes_cluster_schema())
    assert cluster["spec"] == {"clusterDomain": "east.local"}
    assert cluster["apiVersion"] == "multicluster.solo.io/v1alpha1"


def test_crd_schema_check_can_fail() -> None:
    schema = kubernetes_cluster_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": {"clusterDomain": 5}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status": {"status": [{"owner": 3}]}}, schema)
    jsonschema.validate({"status": {"status": [{"owner": None}]}}, schema)  # nullable
