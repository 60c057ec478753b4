"""Process and filesystem-root calls: pivot_root(2), openat2(2) with RESOLVE_IN_ROOT,
mount_setattr(2) (recursive mount attributes)."""

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
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr_recursive(fd: int, attr_set: int) -> None:
    """Set mount attributes on the mount ``fd`` names and every mount below it."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    syscall(
        "mount_setattr", fd, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr),
        what="mount_setattr",
    )


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", new_root.encode(), put_old.encode(), what=f"pivot_root {new_root}")


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` with RESOLVE_* rules."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall(
        "openat2", dirfd, path.encode(), ctypes.byref(how), ctypes.sizeof(how),
        what=f"openat2 {path}",
    )
