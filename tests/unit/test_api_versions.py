"""Version negotiation and the small wire parsers of api/types.py."""

from __future__ import annotations

import pytest

from sampan.api import types, versions
from sampan.errors import InvalidArgument


@pytest.mark.parametrize(
    ("requested", "served"),
    [(None, "1.51"), ("", "1.51"), ("1.24", "1.24"), ("1.41", "1.41"), ("1.51", "1.51")],
)
def test_negotiate_accepts_1_24_to_1_51(requested: str | None, served: str) -> None:
    assert versions.negotiate(requested) == served


def test_negotiate_refuses_too_old_with_dockers_wording() -> None:
    with pytest.raises(InvalidArgument) as exc:
        versions.negotiate("1.12")
    assert str(exc.value) == (
        "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )


def test_negotiate_refuses_too_new() -> None:
    with pytest.raises(InvalidArgument, match=r"client version 1.52 is too new. Maximum supported API version is 1.51"):
        versions.negotiate("1.52")


def test_versions_compare_numerically_not_as_strings() -> None:
    assert versions.before("1.9", "1.10")  # 9 < 10, though "9" > "10" as strings
    assert versions.before("1.43", "1.44")
    assert versions.at_least("1.100", "1.51")
    with pytest.raises(InvalidArgument):
        versions.parse("v1.4x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("", {}),
        ('{"dangling":["true"]}', {"dangling": ["true"]}),
        ('{"dangling":{"true":true}}', {"dangling": ["true"]}),
        ('{"label":{"a=b":true,"c":false}}', {"label": ["a=b"]}),
        ('{"reference":"busy*"}', {"reference": ["busy*"]}),
    ],
)
def test_parse_filters_both_wire_forms(text: str | None, expected: dict[str, list[str]]) -> None:
    assert types.parse_filters(text) == expected


@pytest.mark.parametrize("text", ["{", "[1]", '{"a": 3}'])
def test_parse_filters_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidArgument):
        types.parse_filters(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("no", False), ("none", False),
     ("1", True), ("true", True), ("True", True), ("yes", True)],
)
def test_query_bool_is_dockers_bool_value(value: str | None, expected: bool) -> None:
    assert types.query_bool(value) is expected
