"""The v2 device filter: the generated BPF program, run by a small interpreter here."""

from __future__ import annotations

import struct

import pytest

from sampan.runtime.cgroups import devices as d
from sampan.runtime.cgroups.resources import parse_resources

MASK64 = (1 << 64) - 1


def run(program: bytes, dev_type: str, major: int, minor: int, access: str) -> int:
    """Interpret the subset of eBPF the generator emits, on one device request."""
    ctx = struct.pack(
        "<III", d.access_mask(access) << 16 | {"b": 1, "c": 2}[dev_type], major, minor
    )
    regs = [0] * 11
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps < 10_000
        op, regs_byte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if op == d.LDX_MEM_W:
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == d.ALU64_AND_K:
            regs[dst] &= imm & MASK64
        elif op == d.ALU64_RSH_K:
            regs[dst] >>= imm
        elif op == d.MOV64_K:
            regs[dst] = imm & MASK64
        elif op == d.MOV64_X:
            regs[dst] = regs[src]
        elif op == d.JNE_K:
            if regs[dst] != imm & MASK64:
                pc += off
        elif op == d.JEQ_K:
            if regs[dst] == imm & MASK64:
                pc += off
        elif op == d.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


DOCKER_LIKE = parse_resources(
    {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},  # zero
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts/*
            {"allow": False, "type": "c", "major": 136, "minor": 9, "access": "w"},
        ]
    }
).devices


@pytest.mark.parametrize(
    ("dev", "access", "allowed"),
    [
        (("c", 1, 3), "rw", 1),
        (("c", 1, 3), "m", 1),
        (("c", 1, 5), "r", 1),
        (("c", 1, 5), "m", 0),  # zero: no mknod
        (("c", 1, 5), "rm", 0),
        (("b", 1, 3), "r", 0),  # wrong type
        (("c", 1, 8), "r", 0),  # random: denied by "deny all"
        (("c", 136, 4), "rw", 1),  # any minor
        (("c", 136, 9), "r", 1),
        (("c", 136, 9), "w", 0),  # the later deny wins for write
        (("b", 8, 0), "r", 0),
    ],
)
def test_docker_like_rules(dev: tuple[str, int, int], access: str, allowed: int) -> None:
    assert run(d.device_program(DOCKER_LIKE), *dev, access) == allowed


def test_no_rules_allow_and_last_rule_wins() -> None:
    assert run(d.device_program([]), "c", 1, 3, "rwm") == 1
    rules = parse_resources(
        {
            "devices": [
                {"allow": True, "access": "rwm"},
                {"allow": False, "type": "b", "access": "rwm"},
            ]
        }
    ).devices
    program = d.device_program(rules)
    assert run(program, "b", 8, 0, "r") == 0
    assert run(program, "c", 4, 1, "w") == 1
    assert len(program) % 8 == 0
