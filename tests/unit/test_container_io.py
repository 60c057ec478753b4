"""Unit tests for the pure parts of the container I/O side: stream framing, detach keys,
json-file log reading (tail across rotated files, since/until, torn lines), ps parsing,
health-check bookkeeping, /proc/net/dev, Go file modes, stats JSON."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from sampan import errors
from sampan.api.handlers.container_io import parse_ps
from sampan.api.hijack import MULTIPLEXED, RAW, content_type
from sampan.api.multiplex import MAX_FRAME, Demuxer, demux, frame
from sampan.api.types_io import stats_json
from sampan.engine import logs
from sampan.engine.archive import go_mode
from sampan.engine.attach import DetachScanner, parse_detach_keys
from sampan.engine.health import apply_result, probe_command
from sampan.engine.model import Health, HealthConfig, HealthLogEntry
from sampan.engine.stats import NetStats, Sample, parse_net_dev
from sampan.runtime.cgroups import CgroupStats
from sampan.runtime.jsonlog import JsonLogWriter


def test_frames_round_trip_and_split() -> None:
    data = frame(1, b"out") + frame(2, b"err") + frame(1, b"more")
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x03"
    assert demux(data) == {1: b"outmore", 2: b"err"}
    assert frame(1, b"") == b""
    big = frame(2, b"x" * (MAX_FRAME + 5))
    d = Demuxer()
    parts = d.feed(big[:100]) + d.feed(big[100:])
    assert [len(p) for _, p in parts] == [MAX_FRAME, 5] and d.pending == 0


def test_content_type_by_version_and_tty() -> None:
    assert content_type("1.51", tty=False) == MULTIPLEXED
    assert content_type("1.51", tty=True) == RAW
    assert content_type("1.41", tty=False) == RAW


@pytest.mark.parametrize(
    ("text", "keys"),
    [("", b"\x10\x11"), ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-x", b"\x18"), ("a,ctrl-@", b"a\x00"),
     ("ctrl-[,ctrl-_", b"\x1b\x1f")],
)
def test_parse_detach_keys(text: str, keys: bytes) -> None:
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("bad", ["ctrl-1", "ctrl-pp", "abc", "ctrl-"])
def test_parse_detach_keys_refuses(bad: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_detach_keys(bad)


def test_detach_scanner_holds_partial_matches() -> None:
    s = DetachScanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)
    assert s.feed(b"c") == (b"\x10c", False)  # not the sequence after all: passed on
    assert s.feed(b"\x10\x10") == (b"\x10", False)
    assert s.feed(b"\x11rest") == (b"", True)
    s = DetachScanner(b"\x10")
    assert s.feed(b"x\x10y") == (b"x", True)
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def _write_log(path: Path, lines: list[tuple[str, str, int]], *, max_size: int = 0, max_files: int = 1) -> None:
    w = JsonLogWriter(str(path), max_size=max_size, max_files=max_files)
    for stream, text, ns in lines:
        w.write(stream, text.encode(), ns)
    w.close()


def test_read_history_filters(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    base = 1_700_000_000 * 10**9
    _write_log(log, [("stdout", f"o{i}\n", base + i * 10**9) for i in range(5)] + [("stderr", "e\n", base + 9 * 10**9)])
    entries, mark = logs.read_history(str(log), logs.LogOptions())
    assert [e.data for e in entries] == [b"o0\n", b"o1\n", b"o2\n", b"o3\n", b"o4\n", b"e\n"]
    assert mark is not None and mark[1] == log.stat().st_size
    tail, _ = logs.read_history(str(log), logs.LogOptions(stderr=False, tail=2))
    assert [e.data for e in tail] == [b"o3\n", b"o4\n"]
    since, _ = logs.read_history(str(log), logs.LogOptions(since_ns=base + 3 * 10**9))
    assert [e.data for e in since] == [b"o3\n", b"o4\n", b"e\n"]
    until, _ = logs.read_history(str(log), logs.LogOptions(until_ns=base + 1 * 10**9))
    assert [e.data for e in until] == [b"o0\n", b"o1\n"]
    assert logs.read_history(str(log), logs.LogOptions(tail=0))[0] == []
    assert logs.read_history(str(tmp_path / "none"), logs.LogOptions()) == ([], None)


def test_read_history_across_rotation_and_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    _write_log(log, [("stdout", f"line-{i:03d}\n", 10**18 + i) for i in range(300)], max_size=2000, max_files=3)
    assert (tmp_path / "c-json.log.1").exists() and (tmp_path / "c-json.log.2").exists()
    with open(log, "ab") as f:
        f.write(b'{"log":"torn')  # a write in progress
    every, _ = logs.read_history(str(log), logs.LogOptions())
    numbers = [int(e.data[5:8]) for e in every]
    assert numbers == sorted(numbers) and numbers[-1] == 299
    tail, _ = logs.read_history(str(log), logs.LogOptions(tail=30))
    assert [int(e.data[5:8]) for e in tail] == list(range(270, 300))


def test_follow_reads_growth_and_rotation_then_stops(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    _write_log(log, [("stdout", "first\n", 10**18)])
    _, mark = logs.read_history(str(log), logs.LogOptions())
    done = {"stopped": False}

    async def main() -> list[bytes]:
        got: list[bytes] = []

        async def writer() -> None:
            await asyncio.sleep(0.05)
            w = JsonLogWriter(str(log), max_size=200, max_files=2)
            for i in range(6):
                w.write("stdout", f"next-{i}\n".encode())
                await asyncio.sleep(0.01)
            w.close()
            done["stopped"] = True

        task = asyncio.ensure_future(writer())
        async for e in logs.follow(str(log), logs.LogOptions(follow=True), mark, lambda: done["stopped"]):
            got.append(e.data)
        await task
        return got

    got = asyncio.run(asyncio.wait_for(main(), 10))
    assert got == [f"next-{i}\n".encode() for i in range(6)]


def test_parse_timestamps() -> None:
    assert logs.parse_time_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert logs.parse_time_ns("1970-01-01T01:00:00+01:00") == 0
    assert logs.parse_timestamp_arg("12.000000034") == 12_000_000_034
    assert logs.parse_timestamp_arg("") == 0
    assert logs.parse_timestamp_arg("10s", now_ns=20 * 10**9) == 10 * 10**9
    with pytest.raises(errors.InvalidArgument):
        logs.parse_timestamp_arg("yesterday")


def test_format_entry() -> None:
    e = logs.LogEntry("stdout", b"hi\n", "2026-01-01T00:00:00.5Z", logs.parse_time_ns("2026-01-01T00:00:00.5Z"), {"a": "1"})
    assert logs.format_entry(e, timestamps=True, details=True) == b"2026-01-01T00:00:00.500000000Z a=1 hi\n"
    assert logs.format_entry(e, timestamps=False, details=False) == b"hi\n"


def test_parse_ps_filters_by_pid() -> None:
    out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 60 s\n"
    titles, rows = parse_ps(out, {42})
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert rows == [["root", "42", "1", "0", "10:00", "?", "00:00:00", "sleep 60 s"]]
    with pytest.raises(errors.InvalidArgument):
        parse_ps("USER COMMAND\nroot x\n", {1})


def test_probe_command() -> None:
    assert probe_command(["CMD", "true"]) == ["true"]
    assert probe_command(["CMD-SHELL", "curl -f x || exit 1"]) == ["/bin/sh", "-c", "curl -f x || exit 1"]
    assert probe_command(["NONE"]) is None and probe_command([]) is None


def test_health_transitions() -> None:
    hc = HealthConfig(test=["CMD", "x"], retries=2)
    h = Health()
    fail = HealthLogEntry("s", "e", 1, "no")
    ok = HealthLogEntry("s", "e", 0, "yes")
    assert not apply_result(h, hc, fail, in_start_period=True)  # does not count yet
    assert h.status == "starting" and h.failing_streak == 0
    assert apply_result(h, hc, ok, in_start_period=True) and h.status == "healthy"
    assert not apply_result(h, hc, fail, in_start_period=False) and h.failing_streak == 1
    assert apply_result(h, hc, fail, in_start_period=False) and h.status == "unhealthy"
    for _ in range(5):
        apply_result(h, hc, fail, in_start_period=False)
    assert len(h.log) == 5


def test_parse_net_dev_skips_loopback() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"
        "  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n"
    )
    assert parse_net_dev(text) == {"eth0": NetStats(2000, 20, 1, 2, 3000, 30, 3, 4)}


def test_go_mode() -> None:
    assert go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755


def test_stats_json_shape() -> None:
    cg = CgroupStats(memory_usage=10, memory_limit=0, cpu_total_ns=500, cpu_percpu_ns=[200, 300], pids_current=2)
    pre = CgroupStats(cpu_total_ns=100)
    s = Sample("2026-01-01T00:00:01Z", cg, 2000, 2, {"eth0": NetStats(rx_bytes=5)}, host_memory=4096,
               preread="2026-01-01T00:00:00Z", pre_cgroup=pre, pre_system_cpu_ns=1000)
    out = stats_json(s, name="web", container_id="abc")
    assert out["name"] == "/web" and out["id"] == "abc"
    assert out["memory_stats"]["limit"] == 4096  # no limit: the host's memory, as Docker shows
    assert out["cpu_stats"]["cpu_usage"]["percpu_usage"] == [200, 300]
    assert out["precpu_stats"]["cpu_usage"]["total_usage"] == 100
    assert out["networks"]["eth0"]["rx_bytes"] == 5
    assert out["pids_stats"] == {"current": 2}
    json.dumps(out)
