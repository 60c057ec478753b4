"""Child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphans below us are reparented to us.

The shim needs it: with a runc-style CLI runtime the container's pid 1 is forked by the
runtime process, which exits; the init must then become the shim's child so that the shim
can wait for it and record its exit status.
"""

from __future__ import annotations

import ctypes

from sampan._sys.libc import check, libc

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

# a function object of our own (libc[...] is not cached), so other argtypes do not interfere
_prctl = libc["prctl"]
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def set_child_subreaper(on: bool = True) -> None:
    check(_prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0), "prctl PR_SET_CHILD_SUBREAPER")


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    check(
        _prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0),
        "prctl PR_GET_CHILD_SUBREAPER",
    )
    return value.value != 0
