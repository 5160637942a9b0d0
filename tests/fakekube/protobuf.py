"""Decoding of the Kubernetes protobuf encoding for Namespace and Secret bodies.

kubectl's typed clients (``kubectl create namespace``, ``kubectl create secret
generic``) send ``Content-Type: application/vnd.kubernetes.protobuf``. The body
is the 4-byte magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message
(``typeMeta`` = 1, ``raw`` = 2, ``contentEncoding`` = 3, ``contentType`` = 4),
whose ``raw`` bytes are the ``k8s.io.api.core.v1`` message (field numbers from
``generated.proto``). Only the fields of Namespace, Secret and ObjectMeta are
decoded; responses are always JSON (the clients also accept it).
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

Fields = dict[int, list[Any]]  # field number -> values (int for varints, bytes otherwise)


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def parse_message(buf: bytes) -> Fields:
    """Split a message into its fields (no schema needed for that)."""
    fields: Fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        value: Any
        if wire_type == 0:
            value, pos = _varint(buf, pos)
        elif wire_type == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ProtobufError("truncated field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire_type == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def _string(fields: Fields, number: int) -> str | None:
    values = fields.get(number)
    return bytes(values[-1]).decode("utf-8") if values else None


def _strings(fields: Fields, number: int) -> list[str]:
    return [bytes(v).decode("utf-8") for v in fields.get(number, [])]


def _map(fields: Fields, number: int) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for entry in fields.get(number, []):
        kv = parse_message(bytes(entry))
        key = bytes(kv.get(1, [b""])[-1])
        out[key] = bytes(kv.get(2, [b""])[-1])
    return out


def _object_meta(buf: bytes) -> dict[str, Any]:
    f = parse_message(buf)
    meta: dict[str, Any] = {}
    for number, name in ((1, "name"), (2, "generateName"), (3, "namespace"), (5, "uid"), (6, "resourceVersion")):
        value = _string(f, number)
        if value:
            meta[name] = value
    for number, name in ((11, "labels"), (12, "annotations")):
        entries = _map(f, number)
        if entries:
            meta[name] = {k.decode(): v.decode() for k, v in entries.items()}
    finalizers = _strings(f, 14)
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf Namespace or Secret into its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = parse_message(body[len(MAGIC) :])
    type_meta = parse_message(bytes(unknown.get(1, [b""])[-1]))
    api_version = _string(type_meta, 1) or ""
    kind = _string(type_meta, 2) or ""
    raw = parse_message(bytes(unknown.get(2, [b""])[-1]))
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj["metadata"] = _object_meta(bytes(raw[1][-1])) if 1 in raw else {}
    if kind == "Namespace":
        if 2 in raw:
            spec = parse_message(bytes(raw[2][-1]))
            finalizers = _strings(spec, 1)
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    elif kind == "Secret":
        data = _map(raw, 2)
        if data:
            obj["data"] = {k.decode(): base64.b64encode(v).decode("ascii") for k, v in data.items()}
        secret_type = _string(raw, 3)
        if secret_type:
            obj["type"] = secret_type
        string_data = _map(raw, 4)
        if string_data:
            obj["stringData"] = {k.decode(): v.decode() for k, v in string_data.items()}
        if raw.get(5):
            obj["immutable"] = bool(raw[5][-1])
    else:
        raise ProtobufError(f"protobuf decoding of {kind or 'this kind'} is not supported")
    return obj
