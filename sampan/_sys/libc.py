"""Loading libc once and calling it with errno checking."""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms to import; sampan-runtime starts per container
    from typing import Any

try:
    # by soname first: ctypes.util.find_library runs `ldconfig -p` (a subprocess, ~10 ms)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# x86_64 and aarch64 numbers of the calls glibc 2.36 has no wrapper for.
_MACHINE = os.uname().machine
SYSCALLS: dict[str, int] = (
    {
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "clone3": 435,
        "openat2": 437,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "pivot_root": 155 if _MACHINE == "x86_64" else 41,
        "seccomp": 317 if _MACHINE == "x86_64" else 277,
        "capget": 125 if _MACHINE == "x86_64" else 90,
        "capset": 126 if _MACHINE == "x86_64" else 91,
    }
)

_syscall = libc.syscall
_syscall.restype = ctypes.c_long


def check(result: int, what: str) -> int:
    """Raise OSError(errno, 'what: strerror') when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def syscall(name: str, *args: Any, what: str = "") -> int:
    """Call a raw system call by name, checking for -1."""
    return check(int(_syscall(ctypes.c_long(SYSCALLS[name]), *args)), what or name)
