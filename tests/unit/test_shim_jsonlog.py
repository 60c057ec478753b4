"""The json-file encoder's fast path writes exactly what ``json.dumps`` writes."""

from __future__ import annotations

import json
import random

import pytest

from sampan.runtime.jsonlog import encode_entry

NS = 1_764_265_793_123_456_789


def _reference(stream: str, data: bytes, ns: int) -> bytes:
    from sampan.runtime.jsonlog import rfc3339nano

    entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano(ns)}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    "data",
    [
        b"hello\n",
        b'quote " and backslash \\ \n',
        b"tab\there\r\n",
        b"\x00\x01\x08\x0c\x1b[0m\x1f\x7f",
        "h\u00e9llo \u2713 \u2028 \U0001f600\n".encode(),
        b"\xff\xfe not utf-8\n",
        "\ud800".encode("utf-8", "surrogatepass"),
        b"",
    ],
)
def test_known_lines(data: bytes) -> None:
    for stream in ("stdout", "stderr", "other"):
        assert encode_entry(stream, data, NS) == _reference(stream, data, NS)


def test_random_lines() -> None:
    rng = random.Random(1)
    specials = [0, 7, 8, 9, 10, 12, 13, 27, 34, 92, 127, 0xE9]
    for _ in range(2000):
        raw = bytes(
            rng.choice([rng.randrange(256), rng.randrange(32, 127), rng.choice(specials)])
            for _ in range(rng.randrange(40))
        )
        text = "".join(
            chr(rng.choice([rng.randrange(32, 0x110000), *specials]))
            for _ in range(rng.randrange(12))
        ).encode("utf-8", "surrogatepass")
        for data in (raw, text):
            assert encode_entry("stdout", data, NS) == _reference("stdout", data, NS)
            assert json.loads(encode_entry("stderr", data, NS))["log"] == data.decode(
                "utf-8", "replace"
            )
