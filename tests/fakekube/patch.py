"""Patch formats accepted by the fake API server.

* JSON merge patch (RFC 7386), ``application/merge-patch+json``;
* a strategic merge patch subset, ``application/strategic-merge-patch+json``:
  merge-patch semantics plus the ``$patch: replace|delete`` directive, the
  ``$deleteFromPrimitiveList/<field>`` directive, ``$setElementOrder/<field>``
  and ``$retainKeys`` (ignored), and union-merging of ``metadata.finalizers``
  (its upstream patch strategy is ``merge``); every other list is replaced;
* JSON patch (RFC 6902), ``application/json-patch+json``;
* the body of ``application/apply-patch+yaml``: JSON, or a small YAML subset
  (block mappings and sequences, plain/quoted scalars, ``|`` literal blocks,
  ``#`` comments, a leading ``---``). Flow collections other than JSON-compatible
  ones, anchors, aliases, tags and multi-document streams are rejected.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any


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


# --------------------------------------------------------------------------- YAML subset

_INT_RE = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text.startswith('"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PatchError(f"yaml: bad double-quoted scalar {text!r}") from exc
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise PatchError(f"yaml: bad single-quoted scalar {text!r}")
        return text[1:-1].replace("''", "'")
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PatchError(f"yaml: unsupported flow collection {text!r}") from exc
    if text[0] in "&*!|>%@`":
        raise PatchError(f"yaml: unsupported construct {text!r}")
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def _strip_comment(line: str) -> str:
    in_single = in_double = False
    for i, ch in enumerate(line):
        if ch == "'" and not in_double:
            in_single = not in_single
        elif ch == '"' and not in_single:
            in_double = not in_double
        elif ch == "#" and not in_single and not in_double and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_key(text: str) -> tuple[str, str] | None:
    """Split ``key: rest`` (key possibly quoted); None if ``text`` is not a mapping entry."""
    if text.startswith(('"', "'")):
        quote = text[0]
        end = text.find(quote, 1)
        while quote == "'" and end != -1 and text[end + 1 : end + 2] == "'":
            end = text.find(quote, end + 2)
        if end == -1 or not text[end + 1 :].startswith(":"):
            return None
        key = _scalar(text[: end + 1])
        rest = text[end + 2 :]
        if rest and not rest.startswith(" "):
            return None
        return str(key), rest.strip()
    match = re.match(r"^([^:#\s][^:]*?):(\s+|$)", text)
    if not match:
        return None
    return match.group(1).strip(), text[match.end() :].strip()


class _YamlParser:
    def __init__(self, text: str) -> None:
        self.raw = text.splitlines()
        self.lines: list[tuple[int, int, str]] = []  # (line index, indent, content)
        for i, line in enumerate(self.raw):
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise PatchError("yaml: tabs are not allowed for indentation")
            content = _strip_comment(line)
            if not content.strip():
                continue
            if content.strip() == "---" and not self.lines:
                continue
            if content.strip() in ("---", "..."):
                raise PatchError("yaml: multi-document streams are not supported")
            self.lines.append((i, len(content) - len(content.lstrip()), content.strip()))
        self.pos = 0

    def parse(self) -> Any:
        if not self.lines:
            return None
        value = self._block(self.lines[0][1])
        if self.pos != len(self.lines):
            raise PatchError(f"yaml: unexpected content at line {self.lines[self.pos][0] + 1}")
        return value

    def _block(self, indent: int) -> Any:
        _, line_indent, content = self.lines[self.pos]
        if line_indent != indent:
            raise PatchError("yaml: bad indentation")
        if content == "-" or content.startswith("- "):
            return self._sequence(indent)
        if _split_key(content) is not None:
            return self._mapping(indent)
        self.pos += 1
        return _scalar(content)

    def _value_after(self, rest: str, parent_indent: int, line_no: int) -> Any:
        if rest in ("|", "|-", "|+"):
            return self._literal(parent_indent, rest, line_no)
        if rest:
            return _scalar(rest)
        if self.pos < len(self.lines) and self.lines[self.pos][1] > parent_indent:
            return self._block(self.lines[self.pos][1])
        # A sequence may sit at the same indentation as its parent key.
        if (
            self.pos < len(self.lines)
            and self.lines[self.pos][1] == parent_indent
            and (self.lines[self.pos][2] == "-" or self.lines[self.pos][2].startswith("- "))
        ):
            return self._sequence(parent_indent)
        return None

    def _literal(self, parent_indent: int, style: str, line_no: int) -> str:
        collected: list[str] = []
        block_indent: int | None = None
        i = line_no + 1
        while i < len(self.raw):
            line = self.raw[i]
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if stripped and indent <= parent_indent:
                break
            if stripped and block_indent is None:
                block_indent = indent
            collected.append(line[block_indent:] if block_indent and stripped else "")
            i += 1
        while self.pos < len(self.lines) and self.lines[self.pos][0] < i:
            self.pos += 1
        text = "\n".join(collected).rstrip("\n")
        if style == "|-":
            return text
        return text + "\n" if text else ""

    def _mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.pos < len(self.lines):
            line_no, line_indent, content = self.lines[self.pos]
            if line_indent < indent:
                break
            if line_indent > indent:
                raise PatchError(f"yaml: bad indentation at line {line_no + 1}")
            split = _split_key(content)
            if split is None:
                break
            key, rest = split
            self.pos += 1
            result[key] = self._value_after(rest, indent, line_no)
        return result

    def _sequence(self, indent: int) -> list[Any]:
        result: list[Any] = []
        while self.pos < len(self.lines):
            line_no, line_indent, content = self.lines[self.pos]
            if line_indent != indent or not (content == "-" or content.startswith("- ")):
                break
            rest = content[1:].strip()
            if not rest:
                self.pos += 1
                result.append(self._value_after("", indent, line_no))
                continue
            item_indent = indent + (len(content) - len(rest))
            if _split_key(rest) is not None:
                # "- key: value" starts a mapping whose keys sit at item_indent.
                self.lines[self.pos] = (line_no, item_indent, rest)
                result.append(self._mapping(item_indent))
            else:
                self.pos += 1
                result.append(_scalar(rest))
        return result


def parse_json_or_yaml(body: bytes) -> Any:
    """Decode an apply-patch body: JSON first, then the YAML subset described above."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatchError("body is not valid UTF-8") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    return _YamlParser(text).parse()
