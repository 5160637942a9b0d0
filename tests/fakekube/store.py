"""In-memory object store behind the fake API server.

It keeps what the real API server keeps in etcd and its watch cache, reduced to
what kubectl observes:

* a global, monotonically increasing ``resourceVersion`` (a decimal string per
  the API concepts doc: clients treat it as opaque, it is compared for equality
  only), ``uid``, ``creationTimestamp``, ``generation`` for custom resources;
* optimistic concurrency: an update carrying a stale ``resourceVersion``, or a
  DELETE whose preconditions do not match, is answered with 409 Conflict;
* server-side apply field ownership (``metadata.managedFields``), reduced to
  leaf paths of maps: an apply owns the leaves of its configuration, removing a
  previously applied leaf deletes it unless another manager owns it, and a leaf
  owned by another manager with a different value is a conflict (409) unless
  ``force=true``; lists are atomic;
* a bounded change history so watches can resume from a ``resourceVersion``
  ("Start at Exact"), answer ``Expired`` (410) for compacted versions, or start
  with synthetic ADDED events ("Get State and Start at Most Recent") - see the
  "Efficient detection of changes" section of the Kubernetes API concepts doc;
* namespace lifecycle: namespaced writes need an existing namespace, and
  deleting a namespace deletes its content (immediately; the namespace
  controller's work is done synchronously).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import queue
import re
import secrets as _secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .resources import (
    NAMESPACES,
    OBJECT_META_FIELDS,
    SECRETS,
    JsonObj,
    ResourceType,
    resource_by_name,
)

Path = tuple[str, ...]
Key = tuple[str, str, str]  # (group-qualified resource, namespace or "", name)
Event = tuple[str, JsonObj]  # (ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object)

HISTORY_LIMIT = 10_000
MAX_SECRET_BYTES = 1024 * 1024

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def now_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error the server reports as a ``metav1.Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonObj | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JsonObj:
        body: JsonObj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str, **extra: Any) -> JsonObj:
    details: JsonObj = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        _details(rt, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (field, message-after-the-field) pairs."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    return ApiError(
        422,
        "Invalid",
        f'{rt.kind} "{name}" is invalid: {text}',
        {
            "name": name,
            **({"group": rt.group} if rt.group else {}),
            "kind": rt.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
        },
    )


def _cannot_handle(rt: ResourceType, why: str) -> ApiError:
    return bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {why}')


# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_RE = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$")


def parse_label_selector(text: str) -> list[LabelRequirement]:
    """Equality- and set-based label selectors (``a=b,c!=d,e in (f,g),h,!i``)."""
    reqs: list[LabelRequirement] = []
    for term in _split_outside_parens(text):
        if m := _SET_RE.match(term):
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(LabelRequirement(m.group(1), m.group(2), values))
        elif m := _EQ_RE.match(term):
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append(LabelRequirement(m.group(1), op, frozenset({m.group(3)})))
        elif term.startswith("!") and re.match(r"^![^\s=!(),]+$", term):
            reqs.append(LabelRequirement(term[1:], "!exists"))
        elif re.match(r"^[^\s=!(),]+$", term):
            reqs.append(LabelRequirement(term, "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {term!r}")
    return reqs


@dataclass(frozen=True)
class FieldRequirement:
    key: str
    equal: bool
    value: str


def _field_value(rt: ResourceType, obj: JsonObj, key: str) -> str:
    meta = obj.get("metadata") or {}
    if key == "metadata.name":
        return str(meta.get("name", ""))
    if key == "metadata.namespace":
        return str(meta.get("namespace", ""))
    if key == "type":
        return str(obj.get("type", ""))
    if key == "status.phase":
        return str((obj.get("status") or {}).get("phase", ""))
    raise AssertionError(key)


def _supported_fields(rt: ResourceType) -> set[str]:
    fields = {"metadata.name", "metadata.namespace"}
    if rt is SECRETS:
        fields.add("type")
    if rt is NAMESPACES:
        fields.add("status.phase")
    return fields


def parse_field_selector(rt: ResourceType, text: str) -> list[FieldRequirement]:
    reqs: list[FieldRequirement] = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", term)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
        key = m.group(1).strip()
        if key not in _supported_fields(rt):
            raise bad_request(f"field label not supported: {key}")
        reqs.append(FieldRequirement(key, m.group(2) != "!=", m.group(3).strip()))
    return reqs


@dataclass(frozen=True)
class Selector:
    rt: ResourceType
    namespace: str | None  # None: every namespace (or a cluster-scoped resource)
    labels: tuple[LabelRequirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: JsonObj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        obj_labels = meta.get("labels") or {}
        if not all(r.matches(obj_labels) for r in self.labels):
            return False
        return all((_field_value(self.rt, obj, r.key) == r.value) == r.equal for r in self.fields)


# --------------------------------------------------------------------------- field paths


def _owned_view(obj: JsonObj) -> JsonObj:
    """The part of an object that field ownership tracks."""
    view = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    meta = obj.get("metadata") or {}
    tracked = {k: meta[k] for k in ("labels", "annotations", "finalizers", "ownerReferences") if k in meta}
    if tracked:
        view["metadata"] = tracked
    return view


def leaf_paths(value: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Leaves of nested maps (lists and scalars are atomic; empty maps are leaves)."""
    out: dict[Path, Any] = {}
    if isinstance(value, dict) and (value or not prefix):
        for k, v in value.items():
            out.update(leaf_paths(v, (*prefix, str(k))))
    else:
        out[prefix] = value
    return out


_MISSING = object()


def _get_path(obj: JsonObj, path: Path) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set_path(obj: JsonObj, path: Path, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if isinstance(value, dict) and not value:
        # An empty map in an apply configuration owns the map, it does not clear it.
        if not isinstance(node.get(path[-1]), dict):
            node[path[-1]] = {}
        return
    node[path[-1]] = copy.deepcopy(value)


def _delete_path(obj: JsonObj, path: Path) -> None:
    chain: list[JsonObj] = [obj]
    node: Any = obj
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
        chain.append(node)
    chain[-1].pop(path[-1], None)
    # Prune maps the removal left empty (but never the metadata map itself).
    for depth in range(len(path) - 1, 0, -1):
        parent = chain[depth - 1]
        child = chain[depth]
        if child or path[:depth] == ("metadata",):
            break
        parent.pop(path[depth - 1], None)


def _fields_v1(paths: set[Path]) -> JsonObj:
    tree: JsonObj = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


@dataclass
class _Owner:
    paths: set[Path]
    time: str
    api_version: str


@dataclass
class Change:
    rv: int
    rt: ResourceType
    namespace: str
    old: JsonObj | None
    new: JsonObj | None
    deleted: JsonObj | None = None  # the DELETED event object (old, at the new version)


# --------------------------------------------------------------------------- watches


@dataclass(eq=False)
class Watch:
    """One open watch; events arrive on ``queue`` and ``None`` means "stop"."""

    selector: Selector
    queue: queue.Queue[Event | None] = field(default_factory=queue.Queue)
    closed: bool = False

    def translate(self, change: Change) -> Event | None:
        """Map a store change to what this watcher sees (per the watch cache rules)."""
        if change.rt != self.selector.rt:
            return None
        old_match = change.old is not None and self.selector.matches(change.old)
        new_match = change.new is not None and self.selector.matches(change.new)
        if change.new is None:
            return ("DELETED", change.deleted or {}) if old_match else None
        if old_match and new_match:
            return ("MODIFIED", change.new)
        if new_match:
            return ("ADDED", change.new)
        if old_match:
            return ("DELETED", change.new)
        return None


# --------------------------------------------------------------------------- the store


class ObjectStore:
    """Thread-safe in-memory store with resourceVersions, field ownership and watches."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._objects: dict[Key, JsonObj] = {}
        self._owners: dict[Key, dict[tuple[str, str], _Owner]] = {}
        self._rv = 0
        self._history: list[Change] = []
        self._compacted_rv = 0
        self._watches: set[Watch] = set()
        self._closed = False

    # ----------------------------------------------------------------- basics

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    @staticmethod
    def _key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group_resource, (namespace or "") if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> JsonObj:
        with self.lock:
            obj = self._objects.get(self._key(rt, namespace, name))
            if obj is None:
                raise not_found(rt, name)
            return copy.deepcopy(obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> JsonObj | None:
        with self.lock:
            obj = self._objects.get(self._key(rt, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def select(self, selector: Selector) -> tuple[list[JsonObj], int]:
        """Matching objects sorted by (namespace, name), and the list resourceVersion."""
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for key, obj in sorted(self._objects.items())
                if key[0] == selector.rt.group_resource and selector.matches(obj)
            ]
            return items, self._rv

    def namespace_exists(self, name: str) -> bool:
        with self.lock:
            return self._key(NAMESPACES, None, name) in self._objects

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self._objects.get(self._key(NAMESPACES, None, namespace))
        if ns is None:
            raise not_found(NAMESPACES, namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.group_resource} "{namespace}" is forbidden: unable to create new content '
                f"in namespace {namespace} because it is being terminated",
                {"name": namespace, "kind": rt.plural},
            )

    # ----------------------------------------------------------------- commits

    def _commit(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        old: JsonObj | None,
        new: JsonObj | None,
    ) -> JsonObj:
        """Persist ``new`` (or delete when None), bump the resourceVersion, notify watchers."""
        self._rv += 1
        key = self._key(rt, namespace, name)
        deleted: JsonObj | None = None
        result: JsonObj
        if new is not None:
            new.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
            owners = self._owners.get(key, {})
            managed = [
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": owner.api_version,
                    "time": owner.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields_v1(owner.paths),
                }
                for (manager, operation), owner in owners.items()
                if owner.paths
            ]
            if managed:
                new["metadata"]["managedFields"] = managed
            else:
                new["metadata"].pop("managedFields", None)
            self._objects[key] = new
            result = new
        else:
            self._objects.pop(key, None)
            self._owners.pop(key, None)
            deleted = copy.deepcopy(old) if old is not None else {}
            deleted.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
            result = deleted
        change = Change(
            self._rv,
            rt,
            namespace,
            copy.deepcopy(old) if old is not None else None,
            copy.deepcopy(new) if new is not None else None,
            deleted,
        )
        self._history.append(change)
        if len(self._history) > HISTORY_LIMIT:
            dropped = self._history[: len(self._history) - HISTORY_LIMIT]
            self._compacted_rv = dropped[-1].rv
            del self._history[: len(dropped)]
        for watch in list(self._watches):
            event = watch.translate(change)
            if event is not None:
                watch.queue.put(event)
        return copy.deepcopy(result)

    # ----------------------------------------------------------------- decoding

    def _decode(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        field_validation: str,
        warnings: list[str],
        *,
        require_type_meta: bool = False,
    ) -> JsonObj:
        if not isinstance(body, dict):
            raise _cannot_handle(rt, "the request body is not a JSON object")
        obj = copy.deepcopy(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if require_type_meta and (not api_version or not kind):
            raise bad_request(
                f"invalid object type: {api_version or ''}, Kind={kind or ''}: apiVersion and kind must be set"
            )
        if api_version not in (None, "", rt.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind not in (None, "", rt.kind):
            raise _cannot_handle(rt, f"the kind in the data ({kind}) does not match {rt.kind}")
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise _cannot_handle(rt, "metadata must be an object")
        obj["metadata"] = meta
        for fld in ("labels", "annotations"):
            value = meta.get(fld)
            if value is None:
                meta.pop(fld, None)
            elif not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise _cannot_handle(rt, f"metadata.{fld} must map strings to strings")
        unknown: list[str] = []
        if rt.known_fields is not None:
            unknown += sorted(k for k in obj if k not in rt.known_fields)
        unknown += sorted(f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS)
        if unknown:
            if field_validation == "Strict":
                raise _cannot_handle(
                    rt,
                    "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown),
                )
            if field_validation != "Ignore":
                warnings.extend(f'unknown field "{u}"' for u in unknown)
            for u in unknown:  # typed decoding drops unknown fields
                if u.startswith("metadata."):
                    meta.pop(u.split(".", 1)[1], None)
                else:
                    obj.pop(u, None)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for system_field in ("selfLink", "managedFields", "deletionTimestamp"):
            meta.pop(system_field, None)
        return obj

    def _normalize(self, rt: ResourceType, obj: JsonObj, old: JsonObj | None) -> None:
        """Defaulting and validation (the registry strategy of each resource)."""
        meta = obj["metadata"]
        name = str(meta.get("name", ""))
        causes: list[tuple[str, str]] = []
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif rt is NAMESPACES:
            if len(name) > 63 or not _DNS1123_LABEL.match(name):
                causes.append(("metadata.name", f'Invalid value: "{name}": {_LABEL_MSG}'))
        elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            causes.append(("metadata.name", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}'))
        if rt is SECRETS:
            self._normalize_secret(obj, old, causes)
        elif rt is NAMESPACES:
            labels = meta.setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = name
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict) and "finalizers" not in spec:
                spec["finalizers"] = ["kubernetes"]
            status = obj.get("status")
            if not isinstance(status, dict):
                status = {}
            status["phase"] = "Terminating" if meta.get("deletionTimestamp") else "Active"
            obj["status"] = status
        elif rt.custom:
            generation = 1
            if old is not None:
                generation = int((old.get("metadata") or {}).get("generation", 1))
                if _spec_view(old) != _spec_view(obj):
                    generation += 1
            meta["generation"] = generation
        if causes:
            raise invalid(rt, name, causes)

    @staticmethod
    def _normalize_secret(obj: JsonObj, old: JsonObj | None, causes: list[tuple[str, str]]) -> None:
        data = obj.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _cannot_handle(SECRETS, "data must be a map of base64 strings")
        string_data = obj.pop("stringData", None) or {}
        if not isinstance(string_data, dict):
            raise _cannot_handle(SECRETS, "stringData must be a map of strings")
        total = 0
        for key, value in list(data.items()) + list(string_data.items()):
            if not isinstance(value, str):
                raise _cannot_handle(SECRETS, f"data[{key}] must be a string")
        for key, value in data.items():
            try:
                total += len(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise _cannot_handle(SECRETS, f"illegal base64 data in data[{key}]") from exc
        for key, value in string_data.items():
            encoded = value.encode("utf-8")
            total += len(encoded)
            data[key] = base64.b64encode(encoded).decode("ascii")
        for key in data:
            if len(key) > 253 or not _CONFIG_KEY.match(key):
                causes.append((f"data[{key}]", f'Invalid value: "{key}": {_CONFIG_KEY_MSG}'))
        if total > MAX_SECRET_BYTES:
            causes.append(("data", f"Too long: may not be more than {MAX_SECRET_BYTES} bytes"))
        if data:
            obj["data"] = data
        else:
            obj.pop("data", None)
        obj.setdefault("type", "Opaque")
        if old is not None:
            if obj.get("type") != old.get("type"):
                causes.append(("type", "Invalid value: field is immutable"))
            if old.get("immutable"):
                if not obj.get("immutable"):
                    causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
                if obj.get("data") != old.get("data"):
                    causes.append(("data", "Forbidden: field is immutable when `immutable` is set"))

    # ----------------------------------------------------------------- ownership

    def _record_update(self, key: Key, rt: ResourceType, old: JsonObj | None, new: JsonObj, manager: str) -> None:
        owners = self._owners.setdefault(key, {})
        old_paths = leaf_paths(_owned_view(old)) if old is not None else {}
        new_paths = leaf_paths(_owned_view(new))
        changed = {p for p, v in new_paths.items() if p not in old_paths or old_paths[p] != v}
        removed = set(old_paths) - set(new_paths)
        for owner in owners.values():
            owner.paths -= removed
            owner.paths -= changed
        if changed:
            me = owners.setdefault((manager, "Update"), _Owner(set(), "", rt.api_version))
            me.paths |= changed
            me.time = now_timestamp()
        for k in [k for k, o in owners.items() if not o.paths]:
            del owners[k]

    # ----------------------------------------------------------------- writes

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        manager: str,
        field_validation: str = "Warn",
        dry_run: bool = False,
    ) -> tuple[JsonObj, list[str]]:
        warnings: list[str] = []
        with self.lock:
            ns = namespace or ""
            obj = self._decode(rt, ns, body, field_validation, warnings)
            meta = obj["metadata"]
            if meta.get("resourceVersion"):
                raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
            if not meta.get("name") and meta.get("generateName"):
                suffix = "".join(_secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
                meta["name"] = f"{meta['generateName']}{suffix}"
            self._normalize(rt, obj, None)
            name = meta["name"]
            self._require_namespace(rt, ns)
            key = self._key(rt, ns, name)
            if key in self._objects:
                raise already_exists(rt, name)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_timestamp()
            if dry_run:
                return obj, warnings
            self._owners.pop(key, None)
            self._record_update(key, rt, None, obj, manager)
            return self._commit(rt, ns, name, None, obj), warnings

    def _replace(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        existing: JsonObj,
        obj: JsonObj,
        *,
        manager: str,
        dry_run: bool,
    ) -> JsonObj:
        """Shared tail of PUT and non-apply PATCH: ``obj`` is the decoded desired state."""
        meta = obj["metadata"]
        body_name = meta.get("name")
        if body_name and body_name != name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        meta["name"] = name
        old_meta = existing["metadata"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old_meta.get("resourceVersion"):
            raise conflict(
                rt,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta.get('uid')}",
            )
        for system_field in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if system_field in old_meta:
                meta[system_field] = old_meta[system_field]
        meta.pop("resourceVersion", None)
        self._normalize(rt, obj, existing)
        if _content(obj) == _content(existing):
            return copy.deepcopy(existing)  # no-op updates do not bump resourceVersion
        if dry_run:
            obj["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
            return obj
        key = self._key(rt, ns, name)
        self._record_update(key, rt, existing, obj, manager)
        return self._write(rt, ns, name, existing, obj)

    def _write(self, rt: ResourceType, ns: str, name: str, existing: JsonObj, obj: JsonObj) -> JsonObj:
        """Commit an update; an object being deleted goes once its last finalizer is removed."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._commit(rt, ns, name, existing, None)
            return copy.deepcopy(obj)
        return self._commit(rt, ns, name, existing, obj)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        manager: str,
        field_validation: str = "Warn",
        dry_run: bool = False,
    ) -> tuple[JsonObj, list[str]]:
        warnings: list[str] = []
        with self.lock:
            ns = namespace or ""
            existing = self._objects.get(self._key(rt, ns, name))
            if existing is None:
                raise not_found(rt, name)
            obj = self._decode(rt, ns, body, field_validation, warnings)
            result = self._replace(rt, ns, name, copy.deepcopy(existing), obj, manager=manager, dry_run=dry_run)
            return result, warnings

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patched: Any,
        *,
        manager: str,
        field_validation: str = "Warn",
        dry_run: bool = False,
        base_rv: str | None = None,
    ) -> tuple[JsonObj, list[str]]:
        """Store the result of a merge/strategic/JSON patch computed against ``base_rv``."""
        warnings: list[str] = []
        with self.lock:
            ns = namespace or ""
            existing = self._objects.get(self._key(rt, ns, name))
            if existing is None:
                raise not_found(rt, name)
            if base_rv is not None and existing["metadata"].get("resourceVersion") != base_rv:
                raise conflict(rt, name, "the object has been modified concurrently")
            obj = self._decode(rt, ns, patched, field_validation, warnings)
            result = self._replace(rt, ns, name, copy.deepcopy(existing), obj, manager=manager, dry_run=dry_run)
            return result, warnings

    def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        config: Any,
        *,
        manager: str,
        force: bool,
        field_validation: str = "Warn",
        dry_run: bool = False,
    ) -> tuple[JsonObj, bool, list[str]]:
        """Server-side apply; returns (object, created, warnings)."""
        warnings: list[str] = []
        if not manager:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        with self.lock:
            ns = namespace or ""
            applied = self._decode(rt, ns, config, field_validation, warnings, require_type_meta=True)
            meta = applied["metadata"]
            if meta.get("name") and meta["name"] != name:
                raise bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
                )
            meta["name"] = name
            for system_field in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                meta.pop(system_field, None)
            if rt is SECRETS and isinstance(applied.get("stringData"), dict):
                data = applied.get("data")
                merged = dict(data) if isinstance(data, dict) else {}
                for k, v in applied.pop("stringData").items():
                    merged[k] = base64.b64encode(str(v).encode()).decode("ascii")
                applied["data"] = merged
            config_paths = leaf_paths(_owned_view(applied))
            key = self._key(rt, ns, name)
            existing = self._objects.get(key)
            me = (manager, "Apply")
            if existing is None:
                self._require_namespace(rt, ns)
                obj = copy.deepcopy(applied)
                self._normalize(rt, obj, None)
                obj["metadata"]["uid"] = str(uuid.uuid4())
                obj["metadata"]["creationTimestamp"] = now_timestamp()
                if dry_run:
                    return obj, True, warnings
                self._owners[key] = {me: _Owner(set(config_paths), now_timestamp(), rt.api_version)}
                return self._commit(rt, ns, name, None, obj), True, warnings

            owners = copy.deepcopy(self._owners.get(key, {}))
            current = copy.deepcopy(existing)
            conflicts: list[tuple[tuple[str, str], Path]] = []
            for path, value in config_paths.items():
                current_value = _get_path(current, path)
                for owner_key, owner in owners.items():
                    if owner_key == me or path not in owner.paths:
                        continue
                    if current_value is not _MISSING and current_value != value:
                        conflicts.append((owner_key, path))
            if conflicts and not force:
                raise _apply_conflict(rt, name, conflicts)
            for owner_key, path in conflicts:
                owners[owner_key].paths.discard(path)
            previous = owners.get(me, _Owner(set(), "", rt.api_version)).paths
            for path in sorted(previous - set(config_paths), key=len, reverse=True):
                if not any(path in o.paths for k, o in owners.items() if k != me):
                    _delete_path(current, path)
            for path, value in config_paths.items():
                _set_path(current, path, value)
            owners[me] = _Owner(set(config_paths), now_timestamp(), rt.api_version)
            for k in [k for k, o in owners.items() if not o.paths]:
                del owners[k]
            current["metadata"].pop("managedFields", None)
            self._normalize(rt, current, existing)
            old_owned = {k: o.paths for k, o in self._owners.get(key, {}).items()}
            new_owned = {k: o.paths for k, o in owners.items()}
            if _content(current) == _content(existing) and old_owned == new_owned:
                return copy.deepcopy(existing), False, warnings
            if dry_run:
                return current, False, warnings
            self._owners[key] = owners
            return self._write(rt, ns, name, existing, current), False, warnings

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        preconditions: JsonObj | None = None,
        dry_run: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Delete; returns (object, deleted_now).

        An object with ``metadata.finalizers`` only gets a ``deletionTimestamp``
        (deleted_now is False) and goes when an update removes the last finalizer,
        as with the real graceful deletion. A Namespace is returned Terminating.
        """
        with self.lock:
            ns = namespace or ""
            existing = self._objects.get(self._key(rt, ns, name))
            if existing is None:
                raise not_found(rt, name)
            meta = existing["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise conflict(
                    rt,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            if meta.get("finalizers") and rt is not NAMESPACES:
                if meta.get("deletionTimestamp") or dry_run:
                    return copy.deepcopy(existing), False
                updated = copy.deepcopy(existing)
                updated["metadata"]["deletionTimestamp"] = now_timestamp()
                updated["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._commit(rt, ns, name, existing, updated), False
            if dry_run:
                return copy.deepcopy(existing), True
            if rt is NAMESPACES:
                return self._delete_namespace(name, existing), True
            self._commit(rt, ns, name, existing, None)
            return copy.deepcopy(existing), True

    def _delete_namespace(self, name: str, existing: JsonObj) -> JsonObj:
        terminating = copy.deepcopy(existing)
        terminating["metadata"]["deletionTimestamp"] = now_timestamp()
        terminating["status"] = {"phase": "Terminating"}
        response = self._commit(NAMESPACES, "", name, existing, terminating)
        # What the namespace controller does: delete the content, then the namespace.
        for key in [k for k in sorted(self._objects) if k[1] == name and k[0] != "namespaces"]:
            obj = self._objects[key]
            rt = _resource_for_key(key)
            self._commit(rt, name, key[2], obj, None)
        self._commit(NAMESPACES, "", name, self._objects[self._key(NAMESPACES, None, name)], None)
        return response

    # ----------------------------------------------------------------- watches

    def open_watch(
        self,
        selector: Selector,
        *,
        resource_version: str,
        send_initial_events: bool,
    ) -> tuple[Watch, list[Event]]:
        """Register a watch; returns it with the events to send before live ones."""
        with self.lock:
            watch = Watch(selector)
            initial: list[Event] = []
            rt = selector.rt
            if send_initial_events or resource_version in ("", "0"):
                for key, obj in sorted(self._objects.items()):
                    if key[0] == rt.group_resource and selector.matches(obj):
                        initial.append(("ADDED", copy.deepcopy(obj)))
                if send_initial_events:
                    initial.append(
                        (
                            "BOOKMARK",
                            {
                                "kind": rt.kind,
                                "apiVersion": rt.api_version,
                                "metadata": {
                                    "resourceVersion": str(self._rv),
                                    "creationTimestamp": None,
                                    "annotations": {"k8s.io/initial-events-end": "true"},
                                },
                            },
                        )
                    )
            else:
                try:
                    since = int(resource_version)
                except ValueError as exc:
                    raise bad_request(f"invalid resource version: {resource_version}") from exc
                if since < self._compacted_rv:
                    gone = ApiError(
                        410,
                        "Expired",
                        f"too old resource version: {since} ({self._compacted_rv + 1})",
                    )
                    watch.closed = True
                    return watch, [("ERROR", gone.status())]
                for change in self._history:
                    if change.rv > since:
                        event = watch.translate(change)
                        if event is not None:
                            initial.append(event)
            if self._closed:
                watch.closed = True
                watch.queue.put(None)
            else:
                self._watches.add(watch)
            return watch, initial

    def close_watch(self, watch: Watch) -> None:
        with self.lock:
            self._watches.discard(watch)
            watch.closed = True

    @property
    def open_watch_count(self) -> int:
        with self.lock:
            return len(self._watches)

    def close(self) -> None:
        """Stop every open watch (the server is shutting down)."""
        with self.lock:
            self._closed = True
            for watch in self._watches:
                watch.queue.put(None)
            self._watches.clear()

    # ----------------------------------------------------------------- direct access

    def put(self, rt: ResourceType, namespace: str | None, obj: JsonObj, manager: str) -> JsonObj:
        """Create or replace (without a resourceVersion precondition) - for test setup."""
        with self.lock:
            ns = namespace or ""
            if rt.namespaced and not self.namespace_exists(ns):
                self.create(NAMESPACES, None, {"metadata": {"name": ns}}, manager=manager)
            name = str((obj.get("metadata") or {}).get("name", ""))
            existing = self._objects.get(self._key(rt, ns, name))
            if existing is None:
                return self.create(rt, ns, obj, manager=manager)[0]
            body = copy.deepcopy(obj)
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            return self.update(rt, ns, name, body, manager=manager)[0]


def _apply_conflict(rt: ResourceType, name: str, conflicts: list[tuple[tuple[str, str], Path]]) -> ApiError:
    """409 in the shape of structured-merge-diff's ``Conflicts.Error()`` wrapped by the apiserver."""

    def who(owner: tuple[str, str]) -> str:
        return f'"{owner[0]}"' + (f" using {rt.api_version}" if owner[1] == "Update" else "")

    def dotted(path: Path) -> str:
        return "." + ".".join(path)

    causes = [
        {"type": "FieldManagerConflict", "message": f"conflict with {who(owner)}", "field": dotted(path)}
        for owner, path in conflicts
    ]
    if len(conflicts) == 1:
        text = f"conflict with {who(conflicts[0][0])}: {dotted(conflicts[0][1])}"
    else:
        lines: list[str] = []
        for owner in sorted({owner for owner, _ in conflicts}):
            lines.append(f"conflicts with {who(owner)}:")
            lines.extend(f"- {dotted(path)}" for o, path in conflicts if o == owner)
        text = "\n".join(lines)
    plural = "conflict" if len(conflicts) == 1 else "conflicts"
    return ApiError(
        409,
        "Conflict",
        f"Apply failed with {len(conflicts)} {plural}: {text}",
        {**_details(rt, name), "causes": causes},
    )


def _content(obj: JsonObj) -> JsonObj:
    """An object without the fields every write changes."""
    stripped = copy.deepcopy(obj)
    meta = stripped.get("metadata") or {}
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return stripped


def _spec_view(obj: JsonObj) -> JsonObj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _resource_for_key(key: Key) -> ResourceType:
    return resource_by_name(key[0])
