"""Reading and writing cgroup interface files, with errors that name the OCI field."""

from __future__ import annotations

import errno
import os

from sampan.errors import InvalidConfig, from_oserror

UNLIMITED_V1 = 1 << 62  # v1 prints "unlimited" as 9223372036854771712 (page-rounded 2^63-1)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def read_int(path: str, default: int = 0) -> int:
    """An integer file; ``max`` and v1's huge "unlimited" read as 0; a missing file as default."""
    try:
        text = read(path).strip()
    except FileNotFoundError:
        return default
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.EOPNOTSUPP):
            return default
        raise
    if text in ("max", ""):
        return 0
    value = int(text.split()[0])
    return 0 if value >= UNLIMITED_V1 else value


def read_keyed(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events, ...); a missing file is {}."""
    out: dict[str, int] = {}
    try:
        text = read(path)
    except (FileNotFoundError, ProcessLookupError):
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def write(path: str, value: str | int, *, field: str) -> None:
    """Write one value; a kernel refusal becomes InvalidConfig naming ``field``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise InvalidConfig(
            field, f"not supported here ({os.path.basename(path)} is missing)"
        ) from exc
    except OSError as exc:
        raise from_oserror(exc, f"open {path}") from exc
    try:
        os.write(fd, str(value).encode())
    except OSError as exc:
        reason = {
            errno.EINVAL: "invalid value",
            errno.EBUSY: "cannot be applied now (usage above it, or a conflicting setting)",
            errno.ERANGE: "out of range",
            errno.EPERM: "not permitted",
            errno.EACCES: "not permitted",
            errno.ENOSPC: "no space left (cpuset or limit exhausted)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise InvalidConfig(field, f"{reason}: {value!r} -> {os.path.basename(path)}") from exc
    finally:
        os.close(fd)


def procs(path: str) -> list[int]:
    try:
        return [int(x) for x in read(path).split()]
    except FileNotFoundError:
        return []


def signal_members(pids: list[int], sig: int) -> None:
    """Send ``sig`` to a cgroup's members, skipping the caller (a process that joined the group,
    e.g. for exec, is not a target) and members that are already gone."""
    me = os.getpid()
    for pid in pids:
        if pid == me:
            continue
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
