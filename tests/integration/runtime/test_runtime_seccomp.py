"""Docker's default profile, compiled by sampan, blocks what it must and allows what it must.

The filter is loaded (with no_new_privs, as in a container) in a forked child that then makes
the system calls through libc; the child reports each call's errno back through a pipe.
"""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from sampan._sys import caps as capsys
from sampan._sys import seccomp as sc
from sampan._sys.libc import SYSCALLS
from sampan.oci.defaults import DEFAULT_CAPABILITIES, default_seccomp
from sampan.runtime import seccomp

NR = {  # x86_64 numbers of the calls probed here
    "keyctl": 250, "add_key": 248, "bpf": 321, "unshare": 272, "mount": 165, "reboot": 169,
    "init_module": 175, "ptrace": 101, "getpid": 39, "uname": 63, "setns": 308,
    "clone3": SYSCALLS["clone3"], "personality": 135, "socket": 41,
}
CLONE_NEWUSER = 0x10000000

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64")


def _probe(program: bytes, calls: list[tuple[str, tuple[int, ...]]]) -> list[int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            capsys.prctl(capsys.PR_SET_NO_NEW_PRIVS, 1)
            sc.load_filter(program)
            out = []
            for name, args in calls:
                res = libc.syscall(NR[name], *[ctypes.c_long(a) for a in args])
                out.append(ctypes.get_errno() if res == -1 else 0)
            os.write(w, ",".join(map(str, out)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return [int(x) for x in data.split(",")]


def test_default_profile_blocks_and_allows() -> None:
    program = seccomp.compile_section(default_seccomp(DEFAULT_CAPABILITIES))
    blocked = [
        ("keyctl", (0, 0, 0)), ("add_key", (0, 0, 0, 0, 0)), ("bpf", (0, 0, 0)),
        ("unshare", (CLONE_NEWUSER,)), ("mount", (0, 0, 0, 0, 0)), ("reboot", (0, 0, 0, 0)),
        ("init_module", (0, 0, 0)), ("setns", (-1, 0)), ("personality", (0x0040000,)),
        ("socket", (40, 1, 0)),  # AF_VSOCK
    ]
    results = _probe(program, blocked)
    assert results == [errno.EPERM] * len(blocked), dict(zip([b[0] for b in blocked], results, strict=True))
    # clone3 answers ENOSYS so that libcs fall back to clone (whose flags the filter checks)
    assert _probe(program, [("clone3", (0, 0))]) == [errno.ENOSYS]
    allowed = _probe(program, [("getpid", ()), ("uname", (0,)), ("personality", (0xFFFFFFFF,))])
    assert allowed[0] == 0 and allowed[1] == errno.EFAULT and allowed[2] == 0


def test_sys_admin_profile_allows_mount_family() -> None:
    program = seccomp.compile_section(default_seccomp([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]))
    # unshare(0) is a no-op that succeeds when the filter lets it through
    assert _probe(program, [("unshare", (0,)), ("keyctl", (0, 0, 0))]) == [0, errno.EPERM]
