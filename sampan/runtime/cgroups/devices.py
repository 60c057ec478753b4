"""Device rules as a cgroup v2 BPF program (v2 has no devices.allow/deny files).

The program sees ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}`` where
``access_type`` is ``access << 16 | type`` (type: 1 block, 2 char; access bits: 1 mknod,
2 read, 4 write) and returns 1 to allow.  Rules keep their v1 meaning, the later one winning:
they are checked from last to first; an allow rule decides when it covers every requested
access, a deny rule when it covers any; a device no rule decides is allowed (as a fresh v1
cgroup under the root is).  Docker's specs start with "deny all", so the effect is an allow
list, as runc's generated filter has.
"""

from __future__ import annotations

import struct

from sampan.runtime.cgroups.resources import DeviceRule

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# opcodes (BPF instruction classes | operations | sources)
LDX_MEM_W = 0x61
ALU64_AND_K = 0x57
ALU64_RSH_K = 0x77
MOV64_K = 0xB7
MOV64_X = 0xBF
JNE_K = 0x55
JEQ_K = 0x15
EXIT = 0x95


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def access_mask(access: str) -> int:
    mask = 0
    for letter in access:
        mask |= _ACCESS[letter]
    return mask


def _rule_block(rule: DeviceRule) -> list[tuple[int, int, int, int, int]]:
    """One rule's instructions; a jump offset of -1 means "to the end of this block"."""
    code: list[tuple[int, int, int, int, int]] = []
    if rule.type != "a":
        code.append((JNE_K, 2, 0, -1, _TYPES[rule.type]))
    if rule.major is not None:
        code.append((JNE_K, 4, 0, -1, rule.major))
    if rule.minor is not None:
        code.append((JNE_K, 5, 0, -1, rule.minor))
    mask = access_mask(rule.access)
    if mask != 7:
        code.append((MOV64_X, 1, 3, 0, 0))
        if rule.allow:  # every requested bit must be allowed
            code.append((ALU64_AND_K, 1, 0, 0, ~mask & 7))
            code.append((JNE_K, 1, 0, -1, 0))
        else:  # any requested bit denied decides
            code.append((ALU64_AND_K, 1, 0, 0, mask))
            code.append((JEQ_K, 1, 0, -1, 0))
    code.append((MOV64_K, 0, 0, 0, 1 if rule.allow else 0))
    code.append((EXIT, 0, 0, 0, 0))
    return code


def device_program(rules: list[DeviceRule]) -> bytes:
    """The BPF program (little-endian 8-byte instructions) enforcing ``rules``."""
    out = [
        insn(LDX_MEM_W, 2, 1, 0),
        insn(ALU64_AND_K, 2, imm=0xFFFF),
        insn(LDX_MEM_W, 3, 1, 0),
        insn(ALU64_RSH_K, 3, imm=16),
        insn(LDX_MEM_W, 4, 1, 4),
        insn(LDX_MEM_W, 5, 1, 8),
    ]
    for rule in reversed(rules):
        block = _rule_block(rule)
        for i, (op, dst, src, off, imm) in enumerate(block):
            out.append(insn(op, dst, src, len(block) - i - 1 if off == -1 else off, imm))
        if all(off != -1 for _op, _dst, _src, off, _imm in block):
            # it matches every request ("deny a *:* rwm"): what comes after would be
            # unreachable, and the verifier refuses unreachable instructions
            return b"".join(out)
    out.append(insn(MOV64_K, 0, imm=1))
    out.append(insn(EXIT))
    return b"".join(out)
