"""Patch formats accepted by the fake API server.

* JSON merge patch (RFC 7386), ``application/merge-patch+json``;
* a strategic merge patch subset, ``application/strategic-merge-patch+json``:
  merge-patch semantics plus the ``$patch: replace|delete`` directive, the
  ``$deleteFromPrimitiveList/<field>`` directive, ``$setElementOrder/<field>``
  and ``$retainKeys`` (ignored), and union-merging of ``metadata.finalizers``
  (its upstream patch strategy is ``merge``); every other list is replaced;
* JSON patch (RFC 6902), ``application/json-patch+json``;
* the body of ``application/apply-patch+yaml``: JSON, or one YAML document.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml


class PatchError(ValueError):
    """A patch that cannot be decoded or applied (the server answers 4xx)."""

    def __init__(self, message: str, *, code: int = 400, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------- merge patches


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


_MERGE_LISTS: frozenset[tuple[str, ...]] = frozenset({("metadata", "finalizers")})


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """The subset of strategic merge patch that matters for Secrets and Namespaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return {
            k: strategic_merge_patch(None, v, (*path, k))
            for k, v in body.items()
            if not k.startswith("$") and v is not None
        }
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive}")
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in body.items():
        if key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            current = result.get(field)
            if isinstance(current, list) and isinstance(value, list):
                result[field] = [item for item in current if item not in value]
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown strategic merge patch directive {key!r}")
        if value is None:
            result.pop(key, None)
            continue
        child_path = (*path, key)
        current = result.get(key)
        if child_path in _MERGE_LISTS and isinstance(value, list):
            merged = list(current) if isinstance(current, list) else []
            merged.extend(item for item in value if item not in merged)
            result[key] = merged
        elif isinstance(value, dict):
            merged_value = strategic_merge_patch(current, value, child_path)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
        else:
            result[key] = copy.deepcopy(value)
    return result


# --------------------------------------------------------------------------- JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve_parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(f"doc is missing path: {path!r}", code=422, reason="Invalid")
    return node, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _resolve_parent(doc, tokens, path)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"doc is missing path: {path!r}", code=422, reason="Invalid")


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _resolve_parent(doc, tokens, path)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"unable to remove nonexistent key: {last!r}", code=422, reason="Invalid")


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    parent, last = _resolve_parent(doc, tokens, path)
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(
                f"replace operation does not apply: doc is missing key: {path}",
                code=422,
                reason="Invalid",
            )
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = copy.deepcopy(value)
            else:
                parent.insert(int(last), copy.deepcopy(value))
        else:
            raise PatchError(f"index out of range: {path}", code=422, reason="Invalid")
    else:
        raise PatchError(f"doc is missing path: {path!r}", code=422, reason="Invalid")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 ``add``/``remove``/``replace``/``move``/``copy``/``test``."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError(f"invalid json patch operation {op!r}")
        kind = op.get("op")
        path: str = op["path"]
        if kind == "add":
            doc = _add(doc, path, op.get("value"), replace=False)
        elif kind == "replace":
            doc = _add(doc, path, op.get("value"), replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"{kind} operation needs 'from'")
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value, replace=False)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed", code=422, reason="Invalid")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# --------------------------------------------------------------------------- apply bodies


def parse_json_or_yaml(body: bytes) -> Any:
    """Decode an apply-patch body: JSON (what kubectl sends), else one YAML document (PyYAML's safe loader)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatchError("body is not valid UTF-8") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise PatchError(f"yaml: {exc}") from exc
    if len(documents) != 1:
        raise PatchError("yaml: exactly one document is expected")
    return documents[0]
