"""Compile a spec's ``linux.seccomp`` section to a BPF program, once, in the parent.

The program is cached under ``<state root>/.seccomp-cache/`` by the SHA-256 of the section,
the machine and the form of program (libseccomp's binary tree), so that a second container
with the same profile skips libseccomp entirely (Docker's default profile costs about 4 ms to
compile; reading the cached 10 KB costs microseconds).  The container's init installs the
bytes with one seccomp(2) call just before exec (see ``init.py``).
"""

from __future__ import annotations

import os

from sampan.errors import InvalidConfig
from sampan.oci import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: part of the cache key: programs compiled another way (before the binary tree) are not reused
_PROGRAM_FORM = "libseccomp-tree"

_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}


def _action(name: str, errno_ret: int | None, field: str, default_errno: int = 1) -> int:
    from sampan._sys import seccomp as sc

    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return sc.ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return sc.ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return sc.ACT_TRAP
    if name == "SCMP_ACT_ERRNO":
        return sc.ACT_ERRNO | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return sc.ACT_TRACE | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_LOG":
        return sc.ACT_LOG
    if name == "SCMP_ACT_ALLOW":
        return sc.ACT_ALLOW
    raise InvalidConfig(field, f"unsupported action {name!r}")


def flags(section: dict[str, Any]) -> int:
    out = 0
    for name in section.get("flags") or []:
        out |= _FLAGS[name]
    return out


def compile_section(section: dict[str, Any]) -> bytes:
    """Compile a validated OCI seccomp section with libseccomp."""
    from sampan._sys import seccomp as sc

    default_errno = section.get("defaultErrnoRet")
    default = _action(section["defaultAction"], default_errno, "linux.seccomp.defaultAction")
    arches = [a.removeprefix("SCMP_ARCH_").lower() for a in section.get("architectures") or []]
    rules: list[sc.Rule] = []
    for i, rule in enumerate(section.get("syscalls") or []):
        action = _action(rule["action"], rule.get("errnoRet"), f"linux.seccomp.syscalls[{i}].action")
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action
        args = [
            (a["index"], sc.OPS[a["op"]], int(a.get("value", 0)), int(a.get("valueTwo", 0)))
            for a in rule.get("args") or []
        ]
        for name in rule["names"]:
            rules.append(sc.Rule(name, action, args))
    try:
        return sc.compile_bpf(default, arches, rules, tree=True)
    except OSError as exc:
        raise InvalidConfig("linux.seccomp", str(exc.strerror or exc)) from None


def program(section: dict[str, Any], cache_dir: str | None) -> bytes:
    """The BPF program for ``section``, from the cache when it is there."""
    if cache_dir is None:
        return compile_section(section)
    from _sha256 import sha256  # type: ignore[import-not-found]  # hashlib loads every algorithm

    key = sha256(f"{_PROGRAM_FORM}\0{os.uname().machine}\0{jsoncodec.dumps(section, sort_keys=True)}".encode()).hexdigest()
    path = os.path.join(cache_dir, f"{key}.bpf")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    prog = compile_section(section)
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(prog)
        os.rename(tmp, path)
    except OSError:
        pass  # a cache we cannot write is only slower
    return prog
