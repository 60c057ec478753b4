"""json-file entries, partial lines and rotation."""

from __future__ import annotations

import json
from pathlib import Path

from sampan.runtime.jsonlog import MAX_LINE, JsonLogWriter, rfc3339nano


def entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rfc3339nano_trims_zeros() -> None:
    assert rfc3339nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_lines_streams_and_partials(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonLogWriter(str(log))
    w.write("stdout", b"hel", ns=1_700_000_000_000_000_000)
    w.write("stderr", b"oops\n")
    w.write("stdout", b"lo\nwor")
    w.write("stdout", b"ld \xc3\xa9\xff\n")
    w.write("stdout", b"no newline")
    w.close()
    got = entries(log)
    assert [(e["stream"], e["log"]) for e in got] == [
        ("stderr", "oops\n"),
        ("stdout", "hello\n"),
        ("stdout", "world \u00e9\ufffd\n"),
        ("stdout", "no newline"),
    ]
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in got)
    assert list(got[0]) == ["log", "stream", "time"]
    assert '"log":"oops\\n"' in log.read_text().splitlines()[0]


def test_long_line_is_split(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonLogWriter(str(log))
    w.write("stdout", b"a" * (MAX_LINE + 10) + b"\n")
    w.close()
    got = entries(log)
    assert [len(e["log"]) for e in got] == [MAX_LINE, 11]


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonLogWriter(str(log), max_size=1000, max_files=3)
    for i in range(100):
        w.write("stdout", f"line {i:03d} ".encode() + b"x" * 40 + b"\n")
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1000
    newest = entries(log)[-1]["log"]
    assert newest.startswith("line 099")
    older = entries(tmp_path / "c-json.log.2")
    newer = entries(tmp_path / "c-json.log.1")
    assert older[-1]["log"] < newer[0]["log"] < entries(log)[0]["log"]


def test_single_file_truncates_and_reopen_appends(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = JsonLogWriter(str(log), max_size=200, max_files=1)
    for i in range(20):
        w.write("stdout", f"{i}".encode() * 20 + b"\n")
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["c-json.log"]
    assert log.stat().st_size <= 200
    size = log.stat().st_size
    w = JsonLogWriter(str(log), max_size=0)
    w.write("stdout", b"again\n")
    w.close()
    assert log.stat().st_size > size
