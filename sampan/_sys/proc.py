"""Process and filesystem-root calls: pivot_root(2), openat2(2) with RESOLVE_IN_ROOT."""

from __future__ import annotations

import ctypes
import os

from sampan._sys.libc import syscall

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
O_PATH = 0o10000000


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", new_root.encode(), put_old.encode(), what=f"pivot_root {new_root}")


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` with RESOLVE_* rules."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall(
        "openat2", dirfd, path.encode(), ctypes.byref(how), ctypes.sizeof(how),
        what=f"openat2 {path}",
    )
