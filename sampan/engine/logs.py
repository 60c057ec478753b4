"""Reading a container's json-file log: ``docker logs`` (tail, since, until, timestamps,
details, follow) over the rotated files the shim writes (``runtime/jsonlog.py``).

Files: ``<log>`` is the newest, ``<log>.1`` older, ... ``<log>.<n>`` the oldest.  Reading
goes oldest to newest; ``tail`` N keeps the last N entries across all files (read backwards
from the newest file, so a 30 MB history is not parsed to show 10 lines).  ``follow`` keeps
reading the newest file as it grows, and notices a rotation (the inode under ``<log>``
changes) to continue from the start of the new file; it polls with a back-off from 5 to 50 ms
(no inotify: the shim writes with plain appends, and 50 ms is under Docker's own latency).
Following ends when ``stopped()`` says the container is no longer running and the file has
been read to its end.

A :class:`LogEntry` holds the raw bytes of one entry; ``api/`` frames it (8-byte headers
without a TTY) and prefixes timestamps/details as asked.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from sampan import errors

MAX_POLL = 0.05


@dataclass(frozen=True, slots=True)
class LogEntry:
    stream: str  # stdout | stderr
    data: bytes
    time: str  # RFC 3339 with nanoseconds, as written
    time_ns: int
    attrs: dict[str, str] | None = None


@dataclass
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0  # 0: from the beginning
    until_ns: int = 0  # 0: no end
    tail: int = -1  # -1: all
    follow: bool = False


def parse_time_ns(text: str) -> int:
    """RFC 3339 with up to 9 fraction digits (``2026-11-27T18:09:53.123456789Z``) -> ns."""
    import calendar

    try:
        date, _, rest = text.partition("T")
        y, mo, d = (int(x) for x in date.split("-"))
        offset = 0
        if rest.endswith("Z"):
            rest = rest[:-1]
        else:
            for sign in ("+", "-"):
                if sign in rest:
                    rest, _, tz = rest.rpartition(sign)
                    hh, _, mm = tz.partition(":")
                    offset = (int(hh) * 3600 + int(mm or 0) * 60) * (1 if sign == "+" else -1)
                    break
        clock, _, frac = rest.partition(".")
        h, mi, s = (int(x) for x in clock.split(":"))
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - offset
        return secs * 1_000_000_000 + int((frac + "000000000")[:9])
    except (ValueError, TypeError):
        raise errors.InvalidArgument(f"invalid log timestamp {text!r}") from None


def parse_timestamp_arg(value: str, *, now_ns: int | None = None) -> int:
    """Docker's ``since``/``until`` query value: ``<seconds>[.<nanoseconds>]`` (what the CLI
    sends after converting ``10m`` or a date) or an RFC 3339 time; "" or "0" -> 0."""
    import time

    value = value.strip()
    if not value or value == "0":
        return 0
    sec, dot, frac = value.partition(".")
    if sec.lstrip("-").isdigit() and (not dot or frac.isdigit()):
        return int(sec) * 1_000_000_000 + (int((frac + "000000000")[:9]) if dot else 0)
    if value[-1] in "smh" and value[:-1].isdigit():  # a relative duration, as the CLI accepts
        mult = {"s": 1, "m": 60, "h": 3600}[value[-1]]
        return (now_ns or time.time_ns()) - int(value[:-1]) * mult * 1_000_000_000
    return parse_time_ns(value)


def decode_line(line: bytes) -> LogEntry | None:
    """One json-file line -> LogEntry; None for a torn or corrupt line."""
    try:
        raw = json.loads(line)
        data = str(raw["log"]).encode("utf-8", "surrogateescape")
        stamp = str(raw.get("time") or "")
        attrs = raw.get("attrs")
        return LogEntry(
            str(raw.get("stream") or "stdout"), data, stamp,
            parse_time_ns(stamp) if stamp else 0,
            {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else None,
        )
    except (ValueError, KeyError, TypeError, errors.InvalidArgument):
        return None


def log_files(path: str) -> list[str]:
    """The rotated files, oldest first, then ``path`` itself."""
    older = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        older.append(f"{path}.{i}")
        i += 1
    return [*reversed(older), path]


def _wanted(e: LogEntry, opts: LogOptions) -> bool:
    if e.stream == "stdout" and not opts.stdout:
        return False
    if e.stream == "stderr" and not opts.stderr:
        return False
    return not (opts.since_ns and e.time_ns and e.time_ns < opts.since_ns)


def _past_until(e: LogEntry, opts: LogOptions) -> bool:
    return bool(opts.until_ns and e.time_ns and e.time_ns > opts.until_ns)


def _lines_backwards(path: str, block: int = 64 * 1024) -> Iterator[bytes]:
    """Complete lines of ``path``, last first (a final unterminated line is skipped: the
    writer is still writing it)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in finally
    except FileNotFoundError:
        return
    try:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        first = True
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines.pop(0)
            if first:
                lines.pop()  # after the last newline: empty, or a torn line
                first = False
            yield from (ln for ln in reversed(lines) if ln)
        if rest and not first:
            yield rest
    finally:
        f.close()


def read_history(path: str, opts: LogOptions) -> tuple[list[LogEntry], tuple[int, int] | None]:
    """What is in the files now, filtered; and where the newest file was read up to
    (``(inode, offset)``) so that :func:`follow` continues from there."""
    files = log_files(path)
    try:
        st = os.stat(path)
        size = st.st_size
        mark: tuple[int, int] | None = (st.st_ino, 0)
    except FileNotFoundError:
        return [], None
    # read the newest file only up to its current last newline; follow picks up the rest
    with open(path, "rb") as f:
        data = f.read(size)
    end = data.rfind(b"\n") + 1
    mark = (st.st_ino, end)
    if opts.tail == 0:
        return [], mark
    out: list[LogEntry] = []
    if opts.tail > 0:
        # backwards until tail entries are found
        def backwards() -> Iterator[bytes]:
            yield from reversed([ln for ln in data[:end].split(b"\n") if ln])
            for older in reversed(files[:-1]):
                yield from _lines_backwards(older)

        for line in backwards():
            e = decode_line(line)
            if e is None or not _wanted(e, opts) or _past_until(e, opts):
                continue
            out.append(e)
            if len(out) >= opts.tail:
                break
        out.reverse()
        return out, mark
    for older in files[:-1]:
        try:
            with open(older, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            continue
        for line in lines:
            e = decode_line(line) if line else None
            if e is not None and _wanted(e, opts):
                if _past_until(e, opts):
                    return out, mark
                out.append(e)
    for line in data[:end].split(b"\n"):
        e = decode_line(line) if line else None
        if e is not None and _wanted(e, opts):
            if _past_until(e, opts):
                break
            out.append(e)
    return out, mark


async def follow(
    path: str,
    opts: LogOptions,
    mark: tuple[int, int] | None,
    stopped: Callable[[], bool],
) -> AsyncIterator[LogEntry]:
    """New entries after ``mark`` until the container has stopped and the file is drained."""
    ino, offset = mark if mark is not None else (0, 0)
    pending = b""
    delay = 0.005
    while True:
        progressed = False
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino != ino:
            # rotated: what was left in the old file is lost to us only if it was renamed
            # away and already rotated again; read its tail first when it is still at .1
            if ino and os.path.exists(f"{path}.1"):
                try:
                    old = os.stat(f"{path}.1")
                    if old.st_ino == ino:
                        with open(f"{path}.1", "rb") as f:
                            f.seek(offset)
                            pending += f.read()
                except FileNotFoundError:
                    pass
            ino, offset = st.st_ino, 0
        if st is not None and st.st_size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(st.st_size - offset)
            offset += len(chunk)
            pending += chunk
        elif st is not None and st.st_size < offset:  # truncated in place (max-file 1)
            offset = 0
        if b"\n" in pending:
            *lines, pending = pending.split(b"\n")
            for line in lines:
                e = decode_line(line) if line else None
                if e is None or not _wanted(e, opts):
                    continue
                if _past_until(e, opts):
                    return
                progressed = True
                yield e
        if opts.until_ns and _now_ns() > opts.until_ns:
            return
        if not progressed:
            if stopped():
                # one last look: the shim writes the final lines before it records the exit
                st2 = _stat(path)
                if st2 is None or (st2.st_ino == ino and st2.st_size <= offset):
                    return
                continue
            await asyncio.sleep(delay)
            delay = min(MAX_POLL, delay * 2)
        else:
            delay = 0.005


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _now_ns() -> int:
    import time

    return time.time_ns()


def format_entry(e: LogEntry, *, timestamps: bool, details: bool) -> bytes:
    """The bytes ``docker logs`` shows for one entry (before framing)."""
    prefix = b""
    if timestamps:
        prefix += _rfc3339_fixed(e).encode() + b" "
    if details:
        attrs = ",".join(f"{k}={v}" for k, v in sorted((e.attrs or {}).items()))
        prefix += attrs.encode() + b" "
    return prefix + e.data


def _rfc3339_fixed(e: LogEntry) -> str:
    """Docker's ``--timestamps`` format: RFC 3339 with exactly 9 fraction digits."""
    if not e.time_ns:
        return e.time
    import time

    secs, frac = divmod(e.time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"
