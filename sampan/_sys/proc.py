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
MOUNT_ATTR_IDMAP = 0x00100000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40


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


def open_tree_clone(path: str, *, recursive: bool) -> int:
    """open_tree(OPEN_TREE_CLONE): a detached copy of the mount (tree) at ``path``."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return syscall("open_tree", -100, path.encode(), flags, what=f"open_tree {path}")


def idmap_mount(fd: int, userns_fd: int, *, recursive: bool) -> None:
    """Make the detached mount ``fd`` idmapped with the user namespace ``userns_fd``."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    syscall("mount_setattr", fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr), what="mount_setattr idmap")


def move_mount_to_fd(from_fd: int, to_fd: int) -> None:
    """move_mount(2) of the detached mount ``from_fd`` onto the directory/file ``to_fd``."""
    syscall(
        "move_mount", from_fd, b"", to_fd, b"", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        what="move_mount",
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
