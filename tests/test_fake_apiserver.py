"""The fake Kubernetes API server (tests/fakekube) driven by the real kubectl binary.

Every kubectl command the shell lifecycle steps run is exercised here against
the fake, so a kubectl upgrade that changes what it sends shows up as a failure
here first. These tests need ``kubectl`` on PATH and fail (not skip) without it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakekube import FakeKubeApiServer, RecordedRequest

NS = "gloo-mesh"
SECRET = "relay-root-tls-secret"
MANAGER = "gloo-mesh-registration"
GO_TEMPLATE = "go-template={{range $k, $v := .data}}{{$k}}={{len $v}} {{end}}"
APPLY = ["apply", "--server-side", "--force-conflicts", f"--field-manager={MANAGER}", "-f", "-"]
KUBECTL_TIMEOUT = 30.0


@dataclass
class Kube:
    """A running fake API server and the environment that points kubectl at it."""

    server: FakeKubeApiServer
    env: dict[str, str]

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = KUBECTL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_kubectl(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [_kubectl(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: these tests run the real kubectl (1.32) against the fake API server; install it"
        )
    return path


def _env_for(server: FakeKubeApiServer, tmp_path: Path) -> dict[str, str]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = str(kubeconfig)
    env["KUBECACHEDIR"] = str(tmp_path / "kube-cache")  # no discovery cache shared between tests
    return env


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    # No kubectl check here: Kube.run fails the test itself (reported FAILED, not ERROR or skipped).
    with FakeKubeApiServer() as server:
        server.put_namespace(NS)
        yield Kube(server, _env_for(server, tmp_path))
        assert server.errors == []


def _secret_manifest(name: str, data: Mapping[str, bytes], **metadata: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NS, **metadata},
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
    )


def _http(
    server: FakeKubeApiServer, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _requests(kube: Kube, method: str, path_suffix: str) -> list[RecordedRequest]:
    return [r for r in kube.server.requests if r.method == method and r.path.endswith(path_suffix)]


# --------------------------------------------------------------------------- version / get


def test_version_reports_client_and_server(kube: Kube) -> None:
    result = kube.run("version", "-o", "json")

    assert result.returncode == 0, result.stderr
    versions = json.loads(result.stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.32.0"
    assert (versions["serverVersion"]["major"], versions["serverVersion"]["minor"]) == ("1", "32")
    assert versions["clientVersion"]["major"] == "1"
    assert _requests(kube, "GET", "/version")


def test_get_secret_go_template_lists_key_lengths(kube: Kube) -> None:
    kube.server.put_secret(NS, SECRET, {"tls.crt": b"hello", "ca.crt": b"abc"})

    result = kube.run("get", "secret", SECRET, "-n", NS, "-o", GO_TEMPLATE)

    assert result.returncode == 0, result.stderr
    # Lengths of the base64 values, keys in sorted order, as the template prints them.
    assert result.stdout == "ca.crt=4 tls.crt=8 "


def test_get_missing_secret_is_kubectls_not_found_error(kube: Kube) -> None:
    result = kube.run("get", "secret", SECRET, "-n", NS, "-o", GO_TEMPLATE)

    assert result.returncode == 1
    assert result.stdout == ""
    assert f'Error from server (NotFound): secrets "{SECRET}" not found' in result.stderr


def test_get_ignore_not_found_prints_name_or_nothing(kube: Kube) -> None:
    kube.server.put_secret(NS, "present", {"k": b"v"})

    found = kube.run("get", "secret", "present", "-n", NS, "--ignore-not-found", "-o", "name")
    missing = kube.run("get", "secret", "absent", "-n", NS, "--ignore-not-found", "-o", "name")

    assert (found.returncode, found.stdout) == (0, "secret/present\n"), found.stderr
    assert (missing.returncode, missing.stdout, missing.stderr) == (0, "", "")


def test_get_uses_server_side_table_printing(kube: Kube) -> None:
    kube.server.put_secret(NS, "one", {"a": b"1", "b": b"2"})

    result = kube.run("get", "secrets", "-n", NS)

    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert row.split()[:3] == ["one", "Opaque", "2"]


# --------------------------------------------------------------------------- apply / create


def test_server_side_apply_creates_then_replaces(kube: Kube) -> None:
    first = kube.run(*APPLY, stdin=_secret_manifest(SECRET, {"a": b"1", "b": b"2"}, labels={"x": "1"}))

    assert first.returncode == 0, first.stderr
    assert first.stdout == f"secret/{SECRET} serverside-applied\n"
    assert kube.server.decoded_secret_data(NS, SECRET) == {"a": b"1", "b": b"2"}

    second = kube.run(
        *APPLY, stdin=_secret_manifest(SECRET, {"b": b"3", "c": b"4"}, labels={"y": "2"}, annotations={"n": "v"})
    )

    assert second.returncode == 0, second.stderr
    assert kube.server.decoded_secret_data(NS, SECRET) == {"b": b"3", "c": b"4"}
    stored = kube.server.get_object("secrets", NS, SECRET)
    assert stored is not None
    assert stored["metadata"]["labels"] == {"y": "2"}
    assert stored["metadata"]["annotations"] == {"n": "v"}
    assert [m["manager"] for m in stored["metadata"]["managedFields"]] == [MANAGER]
    patches = _requests(kube, "PATCH", f"/api/v1/namespaces/{NS}/secrets/{SECRET}")
    assert len(patches) == 2
    assert all(p.content_type == "application/apply-patch+yaml" for p in patches)
    # The fake's OpenAPI v3 lists fieldValidation, so kubectl validates server-side: no --validate=false.
    assert all(p.query == {"fieldManager": MANAGER, "force": "true", "fieldValidation": "Strict"} for p in patches)


def test_server_side_apply_takes_fields_from_other_managers_only_with_force(kube: Kube) -> None:
    created = kube.run("create", "-f", "-", stdin=_secret_manifest(SECRET, {"a": b"old"}))
    assert created.returncode == 0, created.stderr

    manifest = _secret_manifest(SECRET, {"a": b"new"})
    without_force = kube.run("apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-", stdin=manifest)
    with_force = kube.run(*APPLY, stdin=manifest)

    assert without_force.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a' in without_force.stderr
    assert with_force.returncode == 0, with_force.stderr
    assert kube.server.decoded_secret_data(NS, SECRET) == {"a": b"new"}


def test_apply_and_create_need_validate_false_without_openapi(tmp_path: Path) -> None:
    _kubectl()
    with FakeKubeApiServer(openapi_v3=False) as server:
        server.put_namespace(NS)
        kube = Kube(server, _env_for(server, tmp_path))
        manifest = _secret_manifest(SECRET, {"a": b"1"})

        refused = kube.run(*APPLY, stdin=manifest)
        refused_create = kube.run("create", "-f", "-", stdin=manifest)
        accepted = kube.run(*APPLY[:-2], "--validate=false", "-f", "-", stdin=manifest)

        assert refused.returncode == 1
        assert "failed to download openapi" in refused.stderr
        assert "--validate=false" in refused.stderr
        assert refused_create.returncode == 1
        assert accepted.returncode == 0, accepted.stderr
        assert server.decoded_secret_data(NS, SECRET) == {"a": b"1"}
        assert server.errors == []


def test_create_secret_then_already_exists(kube: Kube) -> None:
    manifest = _secret_manifest(SECRET, {"a": b"1"})

    first = kube.run("create", "-f", "-", stdin=manifest)
    second = kube.run("create", "-f", "-", stdin=manifest)

    assert (first.returncode, first.stdout) == (0, f"secret/{SECRET} created\n"), first.stderr
    assert second.returncode == 1
    assert (
        f'Error from server (AlreadyExists): error when creating "STDIN": secrets "{SECRET}" already exists'
        in second.stderr
    )
    status, body = _http(kube.server, "POST", f"/api/v1/namespaces/{NS}/secrets", json.loads(manifest))
    assert status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'secrets "{SECRET}" already exists',
        "reason": "AlreadyExists",
        "details": {"name": SECRET, "kind": "secrets"},
        "code": 409,
    }


def test_create_in_missing_namespace_is_not_found(kube: Kube) -> None:
    manifest = _secret_manifest(SECRET, {"a": b"1"}).replace(f'"namespace": "{NS}"', '"namespace": "nowhere"')

    result = kube.run("create", "-f", "-", stdin=manifest)

    assert result.returncode == 1
    assert 'namespaces "nowhere" not found' in result.stderr


# --------------------------------------------------------------------------- delete


def test_delete_secret_with_and_without_ignore_not_found(kube: Kube) -> None:
    kube.server.put_secret(NS, SECRET, {"a": b"1"})

    deleted = kube.run("delete", "secret", SECRET, "-n", NS, "--ignore-not-found")
    again = kube.run("delete", "secret", SECRET, "-n", NS, "--ignore-not-found")
    strict = kube.run("delete", "secret", SECRET, "-n", NS)

    assert (deleted.returncode, deleted.stdout) == (0, f'secret "{SECRET}" deleted\n'), deleted.stderr
    assert kube.server.get_object("secrets", NS, SECRET) is None
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert strict.returncode == 1
    assert f'Error from server (NotFound): secrets "{SECRET}" not found' in strict.stderr


def test_delete_waits_for_finalizers_by_watching(kube: Kube) -> None:
    kube.server.put_object(
        "secrets", NS, {"metadata": {"name": SECRET, "finalizers": ["example.com/hold"]}, "data": {}}
    )
    release = threading.Timer(
        1.0, kube.server.merge_patch_object, ("secrets", NS, SECRET, {"metadata": {"finalizers": None}})
    )
    release.start()
    started = time.monotonic()

    result = kube.run("delete", "secret", SECRET, "-n", NS)

    elapsed = time.monotonic() - started
    release.join()
    assert result.returncode == 0, result.stderr
    assert 0.9 < elapsed < 3.0
    assert kube.server.get_object("secrets", NS, SECRET) is None
    assert any(r.is_watch and r.query.get("fieldSelector") == f"metadata.name={SECRET}" for r in kube.server.requests)


# --------------------------------------------------------------------------- wait


def test_wait_for_create_returns_once_the_secret_appears(kube: Kube) -> None:
    started = time.monotonic()
    kube.server.put_secret_later(1.0, NS, SECRET, {"a": b"1"})

    result = kube.run("wait", f"secret/{SECRET}", "-n", NS, "--for=create", "--timeout=5s")

    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"secret/{SECRET} condition met\n"
    assert elapsed < 2.0  # the secret appears at 1.0 s; kubectl 1.32 re-GETs every 0.5 s


def test_wait_for_create_times_out(kube: Kube) -> None:
    started = time.monotonic()

    result = kube.run("wait", f"secret/{SECRET}", "-n", NS, "--for=create", "--timeout=2s")

    assert result.returncode != 0
    assert "timed out waiting for the condition" in result.stderr
    assert 1.9 < time.monotonic() - started < 6.0


def test_wait_for_delete_returns_once_the_secret_goes(kube: Kube) -> None:
    kube.server.put_secret(NS, SECRET, {"a": b"1"})
    threading.Timer(1.0, kube.server.delete_object, ("secrets", NS, SECRET)).start()
    started = time.monotonic()

    result = kube.run("wait", f"secret/{SECRET}", "-n", NS, "--for=delete", "--timeout=5s")

    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"secret/{SECRET} condition met\n"
    assert 0.9 < elapsed < 2.5
    watches = [r for r in kube.server.requests if r.is_watch]
    assert watches, "kubectl wait --for=delete should list and then watch"
    assert watches[0].query["fieldSelector"] == f"metadata.name={SECRET}"
    assert watches[0].query["resourceVersion"].isdigit()


def test_wait_for_delete_of_missing_secret_succeeds_at_once(kube: Kube) -> None:
    result = kube.run("wait", f"secret/{SECRET}", "-n", NS, "--for=delete", "--timeout=5s")

    assert result.returncode == 0, result.stderr


def test_wait_for_delete_times_out(kube: Kube) -> None:
    kube.server.put_secret(NS, SECRET, {"a": b"1"})

    result = kube.run("wait", f"secret/{SECRET}", "-n", NS, "--for=delete", "--timeout=2s")

    assert result.returncode != 0
    assert f"timed out waiting for the condition on secrets/{SECRET}" in result.stderr


# --------------------------------------------------------------------------- namespaces / typed clients


def test_namespaces_get_and_create(kube: Kube) -> None:
    existing = kube.run("get", "namespace", NS, "-o", "name")
    created = kube.run("create", "namespace", "fresh")
    secret = kube.run("create", "secret", "generic", "gen", "-n", "fresh", "--from-literal=user=admin")

    assert (existing.returncode, existing.stdout) == (0, f"namespace/{NS}\n"), existing.stderr
    assert (created.returncode, created.stdout) == (0, "namespace/fresh created\n"), created.stderr
    assert (secret.returncode, secret.stdout) == (0, "secret/gen created\n"), secret.stderr
    assert kube.server.get_object("namespaces", None, "fresh") is not None
    assert kube.server.decoded_secret_data("fresh", "gen") == {"user": b"admin"}
    # kubectl's typed clients send protobuf bodies.
    posts = [r for r in kube.server.requests if r.method == "POST"]
    assert {r.content_type for r in posts} == {"application/vnd.kubernetes.protobuf"}


def test_deleting_a_namespace_deletes_its_content(kube: Kube) -> None:
    kube.server.put_secret(NS, SECRET, {"a": b"1"})

    result = kube.run("delete", "namespace", NS)

    assert result.returncode == 0, result.stderr
    assert kube.server.get_object("namespaces", None, NS) is None
    assert kube.server.get_object("secrets", NS, SECRET) is None


# --------------------------------------------------------------------------- custom resource


def test_kubernetes_cluster_custom_resource_crud(kube: Kube) -> None:
    cluster = {
        "apiVersion": "multicluster.solo.io/v1alpha1",
        "kind": "KubernetesCluster",
        "metadata": {"name": "remote-1", "namespace": NS},
        "spec": {"clusterDomain": "cluster.local"},
    }

    resources = kube.run("api-resources", "--api-group=multicluster.solo.io", "-o", "name")
    created = kube.run("create", "-f", "-", stdin=json.dumps(cluster))
    domain = kube.run("get", "kubernetesclusters", "remote-1", "-n", NS, "-o", "jsonpath={.spec.clusterDomain}")
    cluster["spec"] = {"clusterDomain": "remote.local"}
    applied = kube.run(*APPLY, stdin=json.dumps(cluster))
    deleted = kube.run("delete", "kubernetesclusters.multicluster.solo.io", "remote-1", "-n", NS)

    assert resources.stdout == "kubernetesclusters.multicluster.solo.io\n", resources.stderr
    assert created.stdout == "kubernetescluster.multicluster.solo.io/remote-1 created\n", created.stderr
    assert domain.stdout == "cluster.local", domain.stderr
    assert applied.returncode == 0, applied.stderr
    assert deleted.stdout == 'kubernetescluster.multicluster.solo.io "remote-1" deleted\n', deleted.stderr
    assert kube.server.get_object("kubernetesclusters", NS, "remote-1") is None


# --------------------------------------------------------------------------- discovery / raw API


def test_legacy_discovery_is_enough_for_kubectl(tmp_path: Path) -> None:
    _kubectl()
    with FakeKubeApiServer(aggregated_discovery=False) as server:
        server.put_secret(NS, SECRET, {"a": b"1"})
        kube = Kube(server, _env_for(server, tmp_path))

        result = kube.run("get", "secret", SECRET, "-n", NS, "-o", "name")

        assert (result.returncode, result.stdout) == (0, f"secret/{SECRET}\n"), result.stderr
        assert any(r.path == "/api/v1" for r in server.requests)
        assert server.errors == []


def test_not_found_status_body() -> None:
    with FakeKubeApiServer() as server:
        status, body = _http(server, "GET", f"/api/v1/namespaces/{NS}/secrets/x")

    assert status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "x" not found',
        "reason": "NotFound",
        "details": {"name": "x", "kind": "secrets"},
        "code": 404,
    }


def _watch_lines(server: FakeKubeApiServer, query: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", f"/api/v1/namespaces/{NS}/secrets?watch=true&{query}")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    return conn, response


def test_watch_stream_resumes_filters_and_times_out() -> None:
    with FakeKubeApiServer() as server:
        server.put_secret(NS, "watched", {"a": b"1"})
        since = server.resource_version
        server.put_secret(NS, "watched", {"a": b"2"})
        server.put_secret(NS, "other", {"a": b"1"})
        conn, response = _watch_lines(
            server, f"fieldSelector=metadata.name%3Dwatched&resourceVersion={since}&timeoutSeconds=1"
        )
        server.delete_object("secrets", NS, "watched")
        started = time.monotonic()
        events = [json.loads(line) for line in response]
        conn.close()

    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert base64.b64decode(events[0]["object"]["data"]["a"]) == b"2"
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > since
    assert time.monotonic() - started < 3.0


def test_watch_without_resource_version_starts_with_synthetic_adds() -> None:
    with FakeKubeApiServer() as server:
        server.put_secret(NS, "a", {"k": b"1"})
        server.put_secret(NS, "b", {"k": b"1"}, labels={"pick": "yes"})
        conn, response = _watch_lines(server, "labelSelector=pick%3Dyes&timeoutSeconds=1")
        events = [json.loads(line) for line in response]
        conn.close()

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


def test_stopping_the_server_ends_open_watches_promptly() -> None:
    server = FakeKubeApiServer().start()
    conn, response = _watch_lines(server, "")
    stopper = threading.Thread(target=server.stop)
    started = time.monotonic()
    stopper.start()
    remaining = response.read()
    stopper.join(timeout=5)
    conn.close()

    assert not stopper.is_alive()
    assert time.monotonic() - started < 2.0
    assert remaining == b""  # no events: the namespace is empty
    assert server.open_watches == 0
