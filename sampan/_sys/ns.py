"""Namespaces: unshare(2), setns(2), setdomainname(2) and pidfd_open(2)."""

from __future__ import annotations

import ctypes

from sampan._sys.libc import check, libc, syscall

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: OCI namespace type -> (clone flag, name of the file under /proc/PID/ns/).
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "pid": (CLONE_NEWPID, "pid"),
    "mount": (CLONE_NEWNS, "mnt"),
    "network": (CLONE_NEWNET, "net"),
    "uts": (CLONE_NEWUTS, "uts"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def unshare(flags: int) -> None:
    check(libc.unshare(flags), f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0) -> None:
    check(libc.setns(fd, nstype), f"setns {nstype:#x}")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), f"setdomainname {name}")


def pidfd_open(pid: int) -> int:
    return syscall("pidfd_open", pid, 0, what=f"pidfd_open {pid}")


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    syscall("pidfd_send_signal", pidfd, sig, None, 0, what=f"pidfd_send_signal {sig}")
