"""The seccomp program in libseccomp's binary-tree form decides exactly as the plain (linear)
one: both are run through a classic-BPF interpreter for every syscall number of every
architecture in Docker's default profile, and with the argument values its rules compare."""

from __future__ import annotations

import ctypes
import struct

import pytest

from sampan._sys import seccomp as sc
from sampan.oci.defaults import DEFAULT_CAPABILITIES, default_seccomp
from sampan.runtime import seccomp

AUDIT_ARCH = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0xC000003E}
X32_BIT = 0x40000000
M32 = 0xFFFFFFFF


def decode(prog: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]


def run_bpf(insns: list[tuple[int, int, int, int]], data: bytes) -> int:
    """A classic-BPF interpreter (the instructions seccomp filters may use)."""
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x05:  # JMP
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x00:
                pc += k
            elif op == 0x10:
                pc += jt if a == src else jf
            elif op == 0x20:
                pc += jt if a > src else jf
            elif op == 0x30:
                pc += jt if a >= src else jf
            elif op == 0x40:
                pc += jt if a & src else jf
            else:
                raise AssertionError(f"JMP op {op:#x}")
        elif cls == 0x00:  # LD
            mode = code & 0xE0
            if mode == 0x20:  # ABS (W)
                a = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x00:  # IMM
                a = k
            elif mode == 0x60:  # MEM
                a = mem[k]
            else:
                raise AssertionError(f"LD mode {mode:#x}")
        elif cls == 0x06:  # RET
            return k if (code & 0x18) == 0x00 else a
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k]
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x03:  # STX
            mem[k] = x
        elif cls == 0x04:  # ALU
            op, src = code & 0xF0, (x if code & 0x08 else k)
            ops = {0x00: int.__add__, 0x10: int.__sub__, 0x20: int.__mul__, 0x40: int.__or__,
                   0x50: int.__and__, 0x60: lambda v, n: v << (n & 31), 0x70: int.__rshift__,
                   0x80: lambda v, _n: -v, 0xA0: int.__xor__}
            a = ops[op](a, src) & M32
        else:  # MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = (0,) * 6) -> bytes:
    return struct.pack("<iIQ6Q", nr, arch, 0, *args)


def _nr(name: str, arch: str) -> int:
    lib = sc._libseccomp()
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
    return int(lib.seccomp_syscall_resolve_name_arch(token, name.encode()))


def _programs(section: dict[str, object]) -> tuple[bytes, bytes]:
    tree = seccomp.compile_section(section)
    original = sc.compile_bpf
    try:
        sc.compile_bpf = lambda *a, tree=False: original(*a)  # type: ignore[assignment,misc]
        linear = seccomp.compile_section(section)
    finally:
        sc.compile_bpf = original
    return linear, tree


def test_tree_program_decides_as_the_linear_one() -> None:
    section = default_seccomp(DEFAULT_CAPABILITIES)
    linear_prog, tree_prog = _programs(section)
    assert linear_prog != tree_prog
    linear, tree = decode(linear_prog), decode(tree_prog)
    cases = []
    for arch in section["architectures"]:
        audit = AUDIT_ARCH[arch]
        base = X32_BIT if arch == "SCMP_ARCH_X32" else 0
        cases += [seccomp_data(base + nr, audit) for nr in range(0, 460)]
    for rule in section["syscalls"]:
        if not rule.get("args"):
            continue  # decided by the number alone: swept above
        values = {0, M32, M32 << 32 | M32}
        for arg in rule["args"]:
            v = int(arg["value"])
            values |= {v, v + 1, max(v - 1, 0), v | 0x7E020000}
        indexes = {int(arg["index"]) for arg in rule["args"]}
        for name in rule["names"]:
            for arch in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"):
                nr = _nr(name, arch)
                if nr < 0:
                    continue
                for v in values:
                    for index in indexes:
                        args = tuple(v if i == index else 0 for i in range(6))
                        cases.append(seccomp_data(nr, AUDIT_ARCH[arch], args))
    cases.append(seccomp_data(0, 0xDEAD))  # an architecture outside the profile
    differ = [c for c in cases if run_bpf(linear, c) != run_bpf(tree, c)]
    assert not differ, f"{len(differ)} of {len(cases)} inputs decided differently"
    # the interpreter itself: the profile allows read and refuses reboot on x86_64
    assert run_bpf(tree, seccomp_data(_nr("read", "SCMP_ARCH_X86_64"), AUDIT_ARCH["SCMP_ARCH_X86_64"])) == sc.ACT_ALLOW
    assert run_bpf(tree, seccomp_data(_nr("reboot", "SCMP_ARCH_X86_64"), AUDIT_ARCH["SCMP_ARCH_X86_64"])) != sc.ACT_ALLOW


@pytest.mark.parametrize("section", [
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
     "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]},
])
def test_tree_program_small_profile(section: dict[str, object]) -> None:
    linear, tree = (decode(p) for p in _programs(section))
    nr = _nr("personality", "SCMP_ARCH_X86_64")
    for v in (0, 7, 8, 9):
        data = seccomp_data(nr, AUDIT_ARCH["SCMP_ARCH_X86_64"], (v, 0, 0, 0, 0, 0))
        assert run_bpf(linear, data) == run_bpf(tree, data)
        assert (run_bpf(tree, data) == sc.ACT_ALLOW) is (v != 8)
