"""resources: memory, swap, reservation, CPU shares/quota/period/cpus/cpuset, pids, blkio
into ``linux.resources`` (the same dict ``update`` sends to the runtime)."""

from __future__ import annotations

import re
from typing import Any

from sampan import errors
from sampan.engine.model import HostSpec
from sampan.engine.specgen import Spec, SpecContext
from sampan.oci import defaults

DEFAULT_CPU_PERIOD = 100_000
MIN_MEMORY = 6 << 20


def discard_unsupported(host: HostSpec, cgroup_v2: bool | None = None) -> list[str]:
    """Drop what a cgroup v2 host cannot do, with Docker's create warnings."""
    import os

    if cgroup_v2 is None:
        cgroup_v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    warnings = []
    if cgroup_v2 and host.memory_swappiness is not None:
        host.memory_swappiness = None
        warnings.append("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded.")
    if cgroup_v2 and host.oom_kill_disable:
        host.oom_kill_disable = False
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
    return warnings


def resources_for(host: HostSpec) -> dict[str, Any]:
    """``linux.resources`` for the limits in ``host`` (only what is set)."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if host.memory:
        if host.memory < MIN_MEMORY:
            raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
        memory["limit"] = host.memory
    if host.memory_reservation:
        memory["reservation"] = host.memory_reservation
    if host.memory_swap:
        if host.memory_swap > 0 and host.memory and host.memory_swap < host.memory:
            raise errors.InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        if host.memory_swap > 0 and not host.memory:
            raise errors.InvalidArgument(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            )
        memory["swap"] = host.memory_swap
    elif host.memory:
        memory["swap"] = host.memory * 2  # Docker: swap defaults to twice the memory limit
    if host.memory_swappiness is not None:
        memory["swappiness"] = host.memory_swappiness
    if host.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if host.cpu_shares:
        cpu["shares"] = host.cpu_shares
    if host.nano_cpus:
        if host.cpu_quota or host.cpu_period:
            raise errors.InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set"
            )
        cpu["period"] = DEFAULT_CPU_PERIOD
        cpu["quota"] = host.nano_cpus * DEFAULT_CPU_PERIOD // 1_000_000_000
    if host.cpu_quota:
        cpu["quota"] = host.cpu_quota
    if host.cpu_period:
        cpu["period"] = host.cpu_period
    if host.cpuset_cpus:
        cpu["cpus"] = host.cpuset_cpus
    if host.cpuset_mems:
        cpu["mems"] = host.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if host.pids_limit:
        out["pids"] = {"limit": host.pids_limit}
    if host.blkio_weight:
        if not 10 <= host.blkio_weight <= 1000:
            raise errors.InvalidArgument("Range of blkio weight is from 10 to 1000")
        out["blockIO"] = {"weight": host.blkio_weight}
    return out


def with_resources(spec: Spec, ctx: SpecContext) -> None:
    host = ctx.container.host
    linux = spec["linux"]
    res = linux.setdefault("resources", {})
    res.update(resources_for(host))
    if "devices" not in res:
        res["devices"] = [{"allow": False, "access": "rwm"}, *(dict(r) for r in defaults.DEFAULT_DEVICE_RULES)]
    for rule in host.device_cgroup_rules:
        res["devices"].append(parse_device_rule(rule))
    for d in host.devices:
        import os
        import stat

        try:
            st = os.stat(d.path_on_host)
        except OSError as exc:
            raise errors.InvalidArgument(f"error gathering device information while adding custom device {d.path_on_host!r}: {exc.strerror}") from exc
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
        if not kind:
            raise errors.InvalidArgument(f"{d.path_on_host} is not a device node")
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        linux.setdefault("devices", []).append({
            "path": d.path_in_container or d.path_on_host, "type": kind, "major": major, "minor": minor,
            "fileMode": 0o666 & st.st_mode, "uid": 0, "gid": 0,
        })
        res["devices"].append({"allow": True, "type": kind, "major": major, "minor": minor,
                               "access": d.cgroup_permissions or "rwm"})


_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def parse_device_rule(rule: str) -> dict[str, Any]:
    """``--device-cgroup-rule 'c 7:128 rwm'`` -> a ``linux.resources.devices`` allow entry."""
    m = _RULE.match(rule.strip())
    if not m:
        raise errors.InvalidArgument(f"invalid device cgroup rule format: '{rule}'")
    kind, major, minor, access = m.groups()
    out: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major != "*":
        out["major"] = int(major)
    if minor != "*":
        out["minor"] = int(minor)
    return out
