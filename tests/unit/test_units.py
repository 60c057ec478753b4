"""sampan.units against go-units' and Go's documented behaviour."""

from __future__ import annotations

import pytest

from sampan.units import human_duration, human_size, parse_duration, ram_in_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), ("10B", 10), ("64kb", 64 << 10), ("100m", 100 << 20), ("100M", 100 << 20),
     ("1.5g", int(1.5 * (1 << 30))), ("2GiB", 2 << 30), ("10 MB", 10 << 20), ("1t", 1 << 40)],
)
def test_ram_in_bytes(text: str, expected: int) -> None:
    assert ram_in_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "x", "10q", "-1m", "m", "1.2.3m"])
def test_ram_in_bytes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        ram_in_bytes(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("30s", 30 * 10**9), ("500ms", 5 * 10**8), ("1h2m", 3720 * 10**9),
     ("1.5h", 5400 * 10**9), ("-2us", -2000), ("1m30s", 90 * 10**9)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [("10", "missing unit"), ("1x", 'unknown unit "x"'), ("", "invalid duration"), (".s", "invalid duration")],
)
def test_parse_duration_refuses_with_gos_wording(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_human_forms() -> None:
    assert human_size(2_140_000) == "2.14MB"
    assert human_size(999) == "999B"
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(90) == "About a minute"
    assert human_duration(3700) == "About an hour"
    assert human_duration(3 * 86400) == "3 days"
