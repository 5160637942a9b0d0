"""Resource types served by the fake API server, and the documents that describe them.

This module holds the static side of the test double: which resources exist
(core/v1 ``namespaces`` and ``secrets``, and the ``multicluster.solo.io/v1alpha1``
``kubernetesclusters`` custom resource), the discovery documents kubectl reads to
map ``secret`` to ``/api/v1/namespaces/{ns}/secrets`` (both the legacy
``APIResourceList`` form and the aggregated ``apidiscovery.k8s.io/v2`` form), a
minimal OpenAPI v3 document per group-version, and the server-side printing
(``meta.k8s.io/v1`` ``Table``) used by ``kubectl get`` for human-readable output.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from typing import Any

JsonObj = dict[str, Any]

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)

OBJECT_META_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (a plural name under a group-version)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Top-level fields the schema declares; None means "preserve unknown fields"
    # (a custom resource whose schema we do not model).
    known_fields: frozenset[str] | None = None
    # Custom resources differ from built-ins in a few observable ways: DELETE
    # returns the object instead of a Status, and strategic merge patch is refused.
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        """``api/v1`` or ``apis/<group>/<version>`` (as used in OpenAPI v3 paths)."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"

    @property
    def group_resource(self) -> str:
        """``secrets`` or ``kubernetesclusters.multicluster.solo.io`` (used in messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


NAMESPACES = ResourceType(
    group="",
    version="v1",
    plural="namespaces",
    singular="namespace",
    kind="Namespace",
    namespaced=False,
    short_names=("ns",),
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    known_fields=frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
)

SECRETS = ResourceType(
    group="",
    version="v1",
    plural="secrets",
    singular="secret",
    kind="Secret",
    namespaced=True,
    known_fields=frozenset({"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}),
)

KUBERNETES_CLUSTERS = ResourceType(
    group="multicluster.solo.io",
    version="v1alpha1",
    plural="kubernetesclusters",
    singular="kubernetescluster",
    kind="KubernetesCluster",
    namespaced=True,
    categories=("solo-io",),
    custom=True,
)

RESOURCE_TYPES: tuple[ResourceType, ...] = (NAMESPACES, SECRETS, KUBERNETES_CLUSTERS)


def group_versions() -> list[tuple[str, str]]:
    """Distinct (group, version) pairs, core first, in declaration order."""
    seen: list[tuple[str, str]] = []
    for rt in RESOURCE_TYPES:
        if (rt.group, rt.version) not in seen:
            seen.append((rt.group, rt.version))
    return seen


def resources_in(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCE_TYPES if rt.group == group and rt.version == version]


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCE_TYPES:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def resource_by_name(name: str) -> ResourceType:
    """Look a resource up by plural (``secrets``) or group-qualified plural."""
    for rt in RESOURCE_TYPES:
        if name in (rt.plural, rt.group_resource):
            return rt
    raise KeyError(f"unknown resource {name!r}")


# --------------------------------------------------------------------------- discovery


def version_info(server_version: str) -> JsonObj:
    """Body of ``GET /version`` (``version.Info``)."""
    core = server_version.lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    major = parts[0] if parts else "1"
    minor = parts[1] if len(parts) > 1 else "0"
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "gitVersion": server_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _legacy_resource(rt: ResourceType) -> JsonObj:
    out: JsonObj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def api_versions(server_address: str) -> JsonObj:
    """Legacy ``GET /api`` (``APIVersions``)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_resource_list(group: str, version: str) -> JsonObj:
    """Legacy ``GET /api/v1`` or ``GET /apis/<group>/<version>`` (``APIResourceList``)."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [_legacy_resource(rt) for rt in resources_in(group, version)],
    }


def _api_group(group: str) -> JsonObj:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group(group: str) -> JsonObj | None:
    """Legacy ``GET /apis/<group>`` (``APIGroup``), None when the group is unknown."""
    if not group or group not in {g for g, _ in group_versions()}:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group)}


def api_group_list() -> JsonObj:
    """Legacy ``GET /apis`` (``APIGroupList``)."""
    groups: list[str] = []
    for g, _ in group_versions():
        if g and g not in groups:
            groups.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group(g) for g in groups]}


AGGREGATED_DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _aggregated_resource(rt: ResourceType) -> JsonObj:
    out: JsonObj = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def aggregated_discovery(core: bool) -> JsonObj:
    """Aggregated discovery (``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``).

    ``core=True`` answers ``GET /api`` (the legacy group, whose name is empty),
    otherwise ``GET /apis`` (every named group).
    """
    items: list[JsonObj] = []
    groups: list[str] = []
    for g, _ in group_versions():
        if (g == "") == core and g not in groups:
            groups.append(g)
    for g in groups:
        versions = [
            {
                "version": v,
                "resources": [_aggregated_resource(rt) for rt in resources_in(g, v)],
                "freshness": "Current",
            }
            for gg, v in group_versions()
            if gg == g
        ]
        metadata: JsonObj = {"creationTimestamp": None}
        if g:
            metadata["name"] = g
        items.append({"metadata": metadata, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


# --------------------------------------------------------------------------- OpenAPI v3

_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _query_param(name: str) -> JsonObj:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _schema_name(rt: ResourceType) -> str:
    if rt.group:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{rt.version}.{rt.kind}"
    return f"io.k8s.api.core.{rt.version}.{rt.kind}"


def _schema(rt: ResourceType) -> JsonObj:
    gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    props: JsonObj = {
        "apiVersion": {"type": "string", "description": "APIVersion of this object."},
        "kind": {"type": "string", "description": "Kind of this object."},
        "metadata": {"type": "object", "description": "Standard object metadata."},
    }
    if rt is SECRETS:
        props["data"] = {
            "type": "object",
            "additionalProperties": {"type": "string", "format": "byte"},
            "description": "Secret data, base64 encoded.",
        }
        props["stringData"] = {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Write-only convenience field merged into data.",
        }
        props["type"] = {"type": "string", "description": "Used to facilitate handling."}
        props["immutable"] = {"type": "boolean", "description": "Forbids data updates."}
    elif rt is NAMESPACES:
        props["spec"] = {"type": "object", "description": "Namespace spec."}
        props["status"] = {"type": "object", "description": "Namespace status."}
    else:
        props["spec"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        props["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "type": "object",
        "description": f"{rt.kind} (served by the fake Kubernetes API server).",
        "properties": props,
        "x-kubernetes-group-version-kind": gvk,
    }


def openapi_v3_document(group: str, version: str, server_version: str) -> JsonObj:
    """A minimal OpenAPI v3 document for one group-version.

    It carries what kubectl reads from it: the PATCH operation of every resource,
    tagged with ``x-kubernetes-group-version-kind`` and listing the
    ``fieldValidation`` query parameter. kubectl's query-param verifier
    (cli-runtime ``queryParamVerifierV3``) then concludes the server validates
    fields itself, skips client-side schema validation and sends
    ``fieldValidation=Strict`` instead, so ``--validate=false`` is not needed.
    """
    paths: JsonObj = {}
    schemas: JsonObj = {}
    for rt in resources_in(group, version):
        prefix = f"/{rt.group_version_path}"
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        collection = f"{prefix}{scope}/{rt.plural}"
        item = f"{collection}/{{name}}"
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}

        def op(action: str, params: tuple[str, ...], gvk: JsonObj = gvk, ref: JsonObj = ref) -> JsonObj:
            return {
                "description": f"{action} {gvk['kind']}",
                "operationId": f"{action}{gvk['kind']}",
                "parameters": [_query_param(p) for p in params],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": ref}},
                    }
                },
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }

        paths[collection] = {
            "get": op("list", ("fieldSelector", "labelSelector", "limit", "continue", "watch")),
            "post": op("post", _WRITE_PARAMS),
        }
        paths[item] = {
            "get": op("get", ()),
            "put": op("put", _WRITE_PARAMS),
            "patch": op("patch", (*_WRITE_PARAMS, "force")),
            "delete": op("delete", ("dryRun",)),
        }
        schemas[_schema_name(rt)] = _schema(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_v3_hash(document: JsonObj) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()


def openapi_v3_index(server_version: str) -> JsonObj:
    """``GET /openapi/v3``: the group-version paths and their content-addressed URLs."""
    paths: JsonObj = {}
    for g, v in group_versions():
        path = f"apis/{g}/{v}" if g else f"api/{v}"
        doc_hash = openapi_v3_hash(openapi_v3_document(g, v, server_version))
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc_hash}"}
    return {"paths": paths}


# --------------------------------------------------------------------------- tables


def parse_timestamp(value: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except (TypeError, ValueError):
        return None


def human_duration(seconds: float) -> str:
    """Same shape as apimachinery's ``duration.HumanDuration`` for short ages."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _age(obj: JsonObj, now: datetime.datetime) -> str:
    created = parse_timestamp(str(obj.get("metadata", {}).get("creationTimestamp", "")))
    if created is None:
        return "<unknown>"
    return human_duration((now - created).total_seconds())


def _column(name: str, type_: str, description: str, fmt: str = "") -> JsonObj:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": 0}


def table_columns(rt: ResourceType) -> list[JsonObj]:
    name = _column("Name", "string", "Name must be unique within a namespace.", "name")
    age = _column("Age", "string", "CreationTimestamp of the object.")
    if rt is SECRETS:
        return [
            name,
            _column("Type", "string", "Used to facilitate programmatic handling."),
            _column("Data", "string", "Number of keys in data."),
            age,
        ]
    if rt is NAMESPACES:
        return [name, _column("Status", "string", "Phase of the namespace."), age]
    return [name, age]


def table_cells(rt: ResourceType, obj: JsonObj, now: datetime.datetime) -> list[Any]:
    meta = obj.get("metadata", {})
    if rt is SECRETS:
        data = obj.get("data") or {}
        return [meta.get("name", ""), obj.get("type", ""), len(data), _age(obj, now)]
    if rt is NAMESPACES:
        phase = (obj.get("status") or {}).get("phase", "")
        return [meta.get("name", ""), phase, _age(obj, now)]
    return [meta.get("name", ""), _age(obj, now)]


def to_table(
    rt: ResourceType,
    objects: list[JsonObj],
    list_meta: JsonObj,
    include_object: str,
) -> JsonObj:
    """Server-side printing: a ``meta.k8s.io/v1`` ``Table`` for ``objects``."""
    now = datetime.datetime.now(datetime.UTC)
    rows: list[JsonObj] = []
    for obj in objects:
        row: JsonObj = {"cells": table_cells(rt, obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": table_columns(rt),
        "rows": rows,
    }
