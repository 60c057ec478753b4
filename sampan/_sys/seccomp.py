"""seccomp: compile rules to classic BPF with libseccomp (loaded only when compiling) and
install a compiled filter with seccomp(2).

Compiling happens once, in the runtime's parent; the container's init only calls
:func:`load_filter` with the bytes, just before exec.
"""

from __future__ import annotations

import ctypes
import os

from sampan._sys.libc import syscall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4

ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

#: OCI comparison operator -> enum scmp_compare
OPS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_lib: Any = None


def _libseccomp() -> Any:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib = lib
    return _lib


class Rule:
    """One libseccomp rule: a syscall name, an action and (arg, op, a, b) comparisons."""

    __slots__ = ("action", "args", "name")

    def __init__(self, name: str, action: int, args: Sequence[tuple[int, int, int, int]] = ()) -> None:
        self.name = name
        self.action = action
        self.args = tuple(args)


SCMP_FLTATR_CTL_OPTIMIZE = 8


def compile_bpf(default_action: int, arches: Sequence[str], rules: Sequence[Rule], *, tree: bool = False) -> bytes:
    """Build a filter with libseccomp and return its classic-BPF program bytes.

    ``arches`` are libseccomp names (``x86_64``, ``x86``, ``x32``, ``aarch64``...).  Syscalls
    unknown to libseccomp are skipped, as runc does.  ``tree``: libseccomp's binary-tree
    layout (``SCMP_FLTATR_CTL_OPTIMIZE`` 2, libseccomp >= 2.5; ignored by older ones), the
    same decisions in a few more instructions but far shorter paths: Docker's profile loads
    in 0.66 ms instead of 1.2 (the kernel runs the filter for every syscall number when it
    installs it) and each syscall walks a search tree, not a list.  Raises ``OSError`` on
    other failures, with the syscall name.
    """
    lib = _libseccomp()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise OSError(22, "seccomp_init: invalid default action")
    try:
        if tree:
            lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for arch in arches:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise OSError(22, f"unknown architecture {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -17:  # -EEXIST: the native arch is already there
                raise OSError(-rc, f"seccomp_arch_add {arch}: {os.strerror(-rc)}")
        for rule in rules:
            nr = lib.seccomp_syscall_resolve_name(rule.name.encode())
            if nr == -1:  # __NR_SCMP_ERROR: not a syscall on any arch libseccomp knows
                continue
            cmps = (_ArgCmp * max(1, len(rule.args)))()
            for i, (index, op, a, b) in enumerate(rule.args):
                cmps[i] = _ArgCmp(index, op, a, b)
            rc = lib.seccomp_rule_add_array(ctx, rule.action, nr, len(rule.args), cmps)
            if rc < 0:
                raise OSError(-rc, f"seccomp rule for {rule.name}: {os.strerror(-rc)}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise OSError(-rc, f"seccomp_export_bpf: {os.strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def load_filter(program: bytes, flags: int = 0) -> None:
    """Install a compiled filter on the calling thread (seccomp(2) SET_MODE_FILTER).

    Needs no_new_privs or CAP_SYS_ADMIN.
    """
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    syscall("seccomp", SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog), what="seccomp load")
