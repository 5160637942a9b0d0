"""Deep merge of a user's Helm values under the values the registration owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ValueConflictError(ValueError):
    """A user value tries to change a value that the registration owns. It keeps the path and the registration's
    value, never the user's (which may be anything a stack holds, a secret included): the message does not echo it."""

    def __init__(self, path: tuple[str, ...], owned_value: Any) -> None:
        self.path = path
        self.owned_value = owned_value
        super().__init__(".".join(path))


_ABSENT: Any = object()


def merge_values(
    user: Mapping[str, Any],
    owned: Mapping[str, Any],
    reserved: frozenset[tuple[str, ...]],
) -> dict[str, Any]:
    """Return ``user`` deep-merged under ``owned``.

    Raises :class:`ValueConflictError` where the user sets an owned leaf to another value, or sets anything under a
    reserved path that the registration leaves unset (such as ``relay.insecure`` in secure mode): a silent
    override would register the cluster differently from what the stack says.
    """
    return _merge_mappings((), user, owned, reserved)


def _merge_mappings(
    path: tuple[str, ...], user: Mapping[str, Any], owned: Mapping[str, Any], reserved: frozenset[tuple[str, ...]]
) -> dict[str, Any]:
    return {
        key: _merge_one((*path, key), user.get(key, _ABSENT), owned.get(key, _ABSENT), reserved)
        for key in sorted(user.keys() | owned.keys())
    }


def _merge_one(path: tuple[str, ...], user: Any, owned: Any, reserved: frozenset[tuple[str, ...]]) -> Any:
    if user is _ABSENT:
        return owned
    if owned is _ABSENT:
        if any(path[: len(r)] == r for r in reserved):
            raise ValueConflictError(path, None)
        if isinstance(user, Mapping) and any(r[: len(path)] == path for r in reserved):
            return _merge_mappings(path, user, {}, reserved)  # a reserved key may sit deeper
        return user
    if isinstance(user, Mapping) and isinstance(owned, Mapping):
        return _merge_mappings(path, user, owned, reserved)
    if user != owned:
        raise ValueConflictError(path, owned)
    return owned
