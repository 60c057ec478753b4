"""Child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphans below us are reparented to us.

The shim needs it: with a runc-style CLI runtime the container's pid 1 is forked by the
runtime process, which exits; the init must then become the shim's child so that the shim
can wait for it and record its exit status.  This module loads libc on its own, without
``ctypes.util`` (which pulls in subprocess, shutil and tempfile): every shim carries what the
fork server imported, so the shim's imports are its memory.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc is among them
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def _check(result: int, what: str) -> None:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def set_child_subreaper(on: bool = True) -> None:
    _check(_prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0), "prctl PR_SET_CHILD_SUBREAPER")


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    _check(
        _prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0),
        "prctl PR_GET_CHILD_SUBREAPER",
    )
    return value.value != 0
