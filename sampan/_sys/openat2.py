"""openat2(2): open a path relative to a directory fd with resolution limits.

``RESOLVE_IN_ROOT`` treats the directory as the root for this one lookup: ``..`` and absolute
symlinks are clamped to it, as if the process were chrooted there, so a lookup can never leave
it.  ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` refuses (``EXDEV``/``ELOOP``) instead.  The layer
extractor resolves every parent directory through this call.
"""

from __future__ import annotations

import ctypes
import os

from sampan._sys.libc import syscall

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """Return a new fd for ``path`` under ``dirfd``; raises OSError with the kernel's errno.

    ``flags`` always gets ``O_CLOEXEC`` added.  An empty ``path`` is taken as ``"."``.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall(
        "openat2",
        dirfd,
        (path or ".").encode(),
        ctypes.byref(how),
        ctypes.sizeof(how),
        what=f"openat2 {path!r}",
    )


def open_dir_in_root(rootfd: int, path: str, *, no_symlinks: bool = False) -> int:
    """An ``O_PATH`` fd of the directory ``path`` resolved inside ``rootfd``.

    With ``no_symlinks`` the lookup refuses any symlink (``ELOOP``) and any escape (``EXDEV``)
    instead of clamping it.
    """
    resolve = RESOLVE_NO_MAGICLINKS
    resolve |= (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) if no_symlinks else RESOLVE_IN_ROOT
    return openat2(rootfd, path, os.O_PATH | os.O_DIRECTORY, resolve)
