"""The deep merge of user Helm values under the registration's values."""

from __future__ import annotations

import pytest

from gloo_mesh_registration.agent_generation import GLOO_MESH_ENTERPRISE_1X
from gloo_mesh_registration.values import ValueConflictError, merge_values

RESERVED = GLOO_MESH_ENTERPRISE_1X.reserved_value_paths()
OWNED = {"relay": {"cluster": "c", "serverAddress": "a:1", "tokenSecret": {"name": "t", "key": "token"}}}


def test_user_values_fill_in_around_owned_values() -> None:
    merged = merge_values({"relay": {"maxGrpcMessageSize": "8Mi"}, "verbose": True}, OWNED, RESERVED)
    assert merged == {
        "relay": {
            "cluster": "c",
            "serverAddress": "a:1",
            "tokenSecret": {"name": "t", "key": "token"},
            "maxGrpcMessageSize": "8Mi",
        },
        "verbose": True,
    }


def test_equal_values_are_not_a_conflict() -> None:
    assert merge_values({"relay": {"cluster": "c"}}, OWNED, RESERVED) == OWNED


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ({"relay": {"cluster": "d"}}, ("relay", "cluster")),
        ({"relay": {"tokenSecret": {"key": "other"}}}, ("relay", "tokenSecret", "key")),
        ({"relay": {"tokenSecret": {"namespace": "x"}}}, ("relay", "tokenSecret", "namespace")),
        ({"relay": {"insecure": False}}, ("relay", "insecure")),
        ({"global": {"insecure": True}}, ("global", "insecure")),
        ({"relay": "flat"}, ("relay",)),
    ],
)
def test_changing_an_owned_or_reserved_value_is_a_conflict(user: dict[str, object], path: tuple[str, ...]) -> None:
    with pytest.raises(ValueConflictError) as raised:
        merge_values(user, OWNED, RESERVED)
    assert raised.value.path == path


def test_a_reserved_path_is_found_however_deep_under_values_the_registration_leaves_unset() -> None:
    """A reserved key may sit several mappings below the first key the registration does not set."""
    reserved = frozenset({("a", "b", "c")})
    with pytest.raises(ValueConflictError) as raised:
        merge_values({"a": {"b": {"c": 1, "d": 2}}}, {}, reserved)
    assert (raised.value.path, raised.value.owned_value) == (("a", "b", "c"), None)
    assert merge_values({"a": {"b": {"d": 2}}, "e": 3}, {}, reserved) == {"a": {"b": {"d": 2}}, "e": 3}


def test_a_conflict_names_the_path_and_the_registration_value_never_the_users() -> None:
    with pytest.raises(ValueConflictError) as raised:
        merge_values({"relay": {"cluster": "user-secret-value"}}, OWNED, RESERVED)
    assert (raised.value.path, raised.value.owned_value) == (("relay", "cluster"), "c")
    assert str(raised.value) == "relay.cluster"
    assert "user-secret-value" not in repr(vars(raised.value))


def test_a_plain_value_above_a_reserved_key_the_registration_leaves_unset_is_the_users() -> None:
    """Secure 1.x sets nothing under ``global`` (``global.insecure`` is reserved): a plain ``global`` hides no
    reserved key, so it passes as given."""
    assert merge_values({"global": "flat"}, OWNED, RESERVED)["global"] == "flat"


def test_unreserved_global_values_pass() -> None:
    assert merge_values({"global": {"image": {"registry": "r"}}}, OWNED, RESERVED)["global"] == {
        "image": {"registry": "r"}
    }
