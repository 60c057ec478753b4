"""bpf(2) for cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program and
attach it to a cgroup directory (what the v1 devices.allow/deny files did)."""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

SYS_BPF = 321 if os.uname().machine == "x86_64" else 280
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6


class _ProgLoad(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttach(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


def _bpf(cmd: int, attr: ctypes.Structure, what: str) -> int:
    result = int(_syscall(ctypes.c_long(SYS_BPF), cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def load_device_program(program: bytes, *, name: bytes = b"sampan_dev") -> int:
    """Load a cgroup device program (8-byte instructions); returns its fd.  On a verifier
    refusal the OSError message carries the verifier's log."""
    insns = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = _ProgLoad(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(program) // 8,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(license),
        prog_name=name[:15],
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf PROG_LOAD (cgroup device)")
    except OSError as exc:
        if exc.errno not in (13, 22):  # EACCES, EINVAL: the verifier said no; show why
            raise
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            return _bpf(BPF_PROG_LOAD, attr, "bpf PROG_LOAD (cgroup device)")
        except OSError as again:
            text = log.value.decode(errors="replace").strip().splitlines()
            raise OSError(again.errno, f"{again.strerror}: {' | '.join(text[-3:])}") from again


def attach_device_program(cgroup_dir_fd: int, prog_fd: int) -> None:
    """Attach to a cgroup (no flags: one program per cgroup, a new one replaces the old)."""
    attr = _ProgAttach(
        target_fd=cgroup_dir_fd, attach_bpf_fd=prog_fd, attach_type=BPF_CGROUP_DEVICE
    )
    _bpf(BPF_PROG_ATTACH, attr, "bpf PROG_ATTACH (cgroup device)")
