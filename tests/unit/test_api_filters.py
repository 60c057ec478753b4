"""Image filter semantics of engine/images.py (Docker's path.Match, FamiliarMatch, times)."""

from __future__ import annotations

import pytest

from sampan.engine import images as im
from sampan.errors import InvalidArgument


@pytest.mark.parametrize(
    ("pattern", "text", "match"),
    [
        ("busybox", "busybox", True),
        ("busy*", "busybox", True),
        ("*", "library/busybox", False),  # * never crosses a slash
        ("*/*", "library/busybox", True),
        ("b?sybox", "busybox", True),
        ("[ab]usybox", "busybox", True),
        ("[!b]usybox", "busybox", False),
        ("busybox", "busybox2", False),
        ("a.b", "axb", False),  # dots are literal
    ],
)
def test_glob_match_is_go_path_match(pattern: str, text: str, match: bool) -> None:
    assert im.glob_match(pattern, text) is match


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox:latest", "busybox"),
        ("localhost:5000/a/b:1", "localhost:5000/a/b"),
        ("localhost:5000/a/b", "localhost:5000/a/b"),
        ("busybox@sha256:" + "a" * 64, "busybox"),
    ],
)
def test_familiar_name(ref: str, name: str) -> None:
    assert im.familiar_name(ref) == name


def test_reference_matches_string_then_name() -> None:
    assert im.reference_matches("busybox", "busybox:latest")
    assert im.reference_matches("busybox:lat*", "busybox:latest")
    assert not im.reference_matches("busybox:1*", "busybox:latest")
    assert im.reference_matches("localhost:5000/*/b", "localhost:5000/a/b:1")


def test_label_matches_key_and_key_value() -> None:
    labels = {"a": "1", "b": "2"}
    assert im.label_matches(labels, ["a"])
    assert im.label_matches(labels, ["a=1", "b"])
    assert not im.label_matches(labels, ["a=2"])
    assert not im.label_matches(labels, ["c"])


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-05-01T12:00:00.123456789Z", 1714564800),
        ("2024-05-01T14:00:00+02:00", 1714564800),
        ("", 0),
    ],
)
def test_unix_time_accepts_nanoseconds_and_offsets(text: str, unix: int) -> None:
    assert im.unix_time(text) == unix


def test_unix_time_refuses_garbage() -> None:
    with pytest.raises(InvalidArgument, match="invalid time"):
        im.unix_time("yesterday")


def test_parse_until_forms() -> None:
    assert im.parse_until("1714564800") == 1714564800
    assert im.parse_until("1714564800.5") == 1714564800.5
    assert im.parse_until("2024-05-01T12:00:00Z") == 1714564800
    assert im.parse_until("10m", now=1000.0) == 400.0
    assert im.parse_until("1h30m", now=10000.0) == 10000.0 - 5400
    with pytest.raises(InvalidArgument, match="invalid time or duration"):
        im.parse_until("soon")


def test_bool_filter_and_unknown_filter() -> None:
    assert im.parse_bool_filter("dangling", ["true"]) is True
    assert im.parse_bool_filter("dangling", ["0"]) is False
    with pytest.raises(InvalidArgument, match="Invalid filter 'dangling=maybe'"):
        im.parse_bool_filter("dangling", ["maybe"])
    with pytest.raises(InvalidArgument, match="Invalid filter 'color'"):
        im.check_filters({"color": ["red"]}, im.LIST_FILTERS)
