"""OCI ``linux.resources`` converted and validated once into a typed value.

Both managers consume :class:`Resources`; every error names the OCI field, e.g.
``linux.resources.memory.limit: must be an integer, got "1g"``.
"""

from __future__ import annotations

from sampan.errors import InvalidConfig
from sampan.oci.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PREFIX = "linux.resources"
_DIGITS = frozenset("0123456789")


def is_cpu_list(value: str) -> bool:
    """``0-2,4`` (spaces allowed around numbers and commas): cpuset's list syntax."""
    for item in value.split(","):
        low, dash, high = item.strip().partition("-")
        for part in (low, high) if dash else (low,):
            if not part or not _DIGITS.issuperset(part):
                return False
    return True


@record(frozen=True)
class DeviceRule:
    allow: bool
    type: str  # "a", "b" or "c"
    major: int | None  # None = any
    minor: int | None
    access: str  # subset of "rwm"

    def v1_line(self) -> str:
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


@record(frozen=True)
class DeviceLimit:
    major: int
    minor: int
    value: int  # bytes or ops per second, or a weight


@record
class Resources:
    memory_limit: int | None = None  # -1 = unlimited
    memory_reservation: int | None = None
    memory_swap: int | None = None  # memory + swap, as OCI and v1 memsw count it; -1 = unlimited
    memory_swappiness: int | None = None
    disable_oom_killer: bool | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None  # -1 = unlimited
    cpu_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpu_rt_period: int | None = None
    cpu_idle: int | None = None
    cpus: str | None = None
    mems: str | None = None
    pids_limit: int | None = None  # < 0 = unlimited
    blkio_weight: int | None = None
    blkio_leaf_weight: int | None = None
    blkio_weight_devices: list[DeviceLimit] = field(default_factory=list)
    throttle_read_bps: list[DeviceLimit] = field(default_factory=list)
    throttle_write_bps: list[DeviceLimit] = field(default_factory=list)
    throttle_read_iops: list[DeviceLimit] = field(default_factory=list)
    throttle_write_iops: list[DeviceLimit] = field(default_factory=list)
    devices: list[DeviceRule] = field(default_factory=list)
    hugepage_limits: list[tuple[str, int]] = field(default_factory=list)
    unified: dict[str, str] = field(default_factory=dict)
    network: dict[str, Any] = field(default_factory=dict)


def _int(obj: dict[str, Any], key: str, where: str, *, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(f"{where}.{key}", f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidConfig(f"{where}.{key}", f"must be at least {minimum}, got {value}")
    return value


def _section(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidConfig(f"{where}.{key}", f"must be an object, got {type(value).__name__}")
    return value


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidConfig(f"{where}.{key}", f"must be an array, got {type(value).__name__}")
    return value


def _cpu_list(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not is_cpu_list(value):
        raise InvalidConfig(f"{where}.{key}", f'must be a list like "0-2,4", got {value!r}')
    return value.replace(" ", "")


def _device_limits(obj: dict[str, Any], key: str, where: str, value_key: str) -> list[DeviceLimit]:
    out = []
    for i, item in enumerate(_list(obj, key, where)):
        at = f"{where}.{key}[{i}]"
        if not isinstance(item, dict):
            raise InvalidConfig(at, "must be an object")
        major = _int(item, "major", at, minimum=0)
        minor = _int(item, "minor", at, minimum=0)
        value = _int(item, value_key, at, minimum=0)
        if major is None or minor is None:
            raise InvalidConfig(at, "major and minor are required")
        if value is None:
            if value_key == "weight":
                continue  # a leafWeight-only entry: nothing sampan applies
            raise InvalidConfig(f"{at}.{value_key}", "is required")
        out.append(DeviceLimit(major, minor, value))
    return out


def _devices(resources: dict[str, Any]) -> list[DeviceRule]:
    rules = []
    for i, item in enumerate(_list(resources, "devices", PREFIX)):
        at = f"{PREFIX}.devices[{i}]"
        if not isinstance(item, dict):
            raise InvalidConfig(at, "must be an object")
        allow = item.get("allow")
        if not isinstance(allow, bool):
            raise InvalidConfig(f"{at}.allow", f"must be true or false, got {allow!r}")
        dtype = item.get("type", "a") or "a"
        if dtype not in ("a", "b", "c"):
            raise InvalidConfig(f"{at}.type", f'must be "a", "b" or "c", got {dtype!r}')
        access = item.get("access", "rwm") or "rwm"
        if not isinstance(access, str) or not access or set(access) - set("rwm"):
            raise InvalidConfig(f"{at}.access", f'must be letters from "rwm", got {access!r}')
        major = _int(item, "major", at)
        minor = _int(item, "minor", at)
        rules.append(
            DeviceRule(
                allow,
                dtype,
                None if major is None or major < 0 else major,
                None if minor is None or minor < 0 else minor,
                access,
            )
        )
    return rules


def parse_resources(resources: dict[str, Any] | None) -> Resources:
    """Validate OCI ``linux.resources`` (a dict from config.json) into :class:`Resources`."""
    if resources is None:
        return Resources()
    if not isinstance(resources, dict):
        raise InvalidConfig(PREFIX, f"must be an object, got {type(resources).__name__}")
    r = Resources()
    mem_at = f"{PREFIX}.memory"
    mem = _section(resources, "memory", PREFIX)
    r.memory_limit = _int(mem, "limit", mem_at, minimum=-1)
    r.memory_reservation = _int(mem, "reservation", mem_at, minimum=-1) or None  # 0 = unset
    r.memory_swap = _int(mem, "swap", mem_at, minimum=-1)
    r.memory_swappiness = _int(mem, "swappiness", mem_at, minimum=-1)
    if r.memory_swappiness is not None and r.memory_swappiness > 100:
        raise InvalidConfig(f"{mem_at}.swappiness", f"must be 0..100, got {r.memory_swappiness}")
    if r.memory_swappiness == -1:
        r.memory_swappiness = None
    oom = mem.get("disableOOMKiller")
    if oom is not None and not isinstance(oom, bool):
        raise InvalidConfig(f"{mem_at}.disableOOMKiller", f"must be true or false, got {oom!r}")
    r.disable_oom_killer = oom
    if (
        r.memory_limit not in (None, -1)
        and r.memory_swap not in (None, -1, 0)
        and r.memory_swap < r.memory_limit  # type: ignore[operator]
    ):
        raise InvalidConfig(
            f"{mem_at}.swap", "must be at least memory.limit (it counts memory plus swap)"
        )
    cpu_at = f"{PREFIX}.cpu"
    cpu = _section(resources, "cpu", PREFIX)
    r.cpu_shares = _int(cpu, "shares", cpu_at, minimum=0) or None
    r.cpu_quota = _int(cpu, "quota", cpu_at, minimum=-1) or None
    r.cpu_period = _int(cpu, "period", cpu_at, minimum=0) or None
    r.cpu_rt_runtime = _int(cpu, "realtimeRuntime", cpu_at, minimum=-1) or None
    r.cpu_rt_period = _int(cpu, "realtimePeriod", cpu_at, minimum=0) or None
    r.cpu_idle = _int(cpu, "idle", cpu_at, minimum=0)
    r.cpus = _cpu_list(cpu, "cpus", cpu_at)
    r.mems = _cpu_list(cpu, "mems", cpu_at)
    pids = _section(resources, "pids", PREFIX)
    r.pids_limit = _int(pids, "limit", f"{PREFIX}.pids") or None  # 0 = unset, < 0 = max
    blk_at = f"{PREFIX}.blockIO"
    blk = _section(resources, "blockIO", PREFIX)
    r.blkio_weight = _int(blk, "weight", blk_at, minimum=0) or None
    if r.blkio_weight is not None and not 10 <= r.blkio_weight <= 1000:
        raise InvalidConfig(f"{blk_at}.weight", f"must be 10..1000, got {r.blkio_weight}")
    r.blkio_leaf_weight = _int(blk, "leafWeight", blk_at, minimum=0) or None
    r.blkio_weight_devices = _device_limits(blk, "weightDevice", blk_at, "weight")
    r.throttle_read_bps = _device_limits(blk, "throttleReadBpsDevice", blk_at, "rate")
    r.throttle_write_bps = _device_limits(blk, "throttleWriteBpsDevice", blk_at, "rate")
    r.throttle_read_iops = _device_limits(blk, "throttleReadIOPSDevice", blk_at, "rate")
    r.throttle_write_iops = _device_limits(blk, "throttleWriteIOPSDevice", blk_at, "rate")
    r.devices = _devices(resources)
    for i, item in enumerate(_list(resources, "hugepageLimits", PREFIX)):
        at = f"{PREFIX}.hugepageLimits[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("pageSize"), str):
            raise InvalidConfig(at, "needs a pageSize string and a limit")
        limit = _int(item, "limit", at, minimum=0)
        r.hugepage_limits.append((item["pageSize"], limit or 0))
    unified = _section(resources, "unified", PREFIX)
    for key, value in unified.items():
        if not isinstance(value, str) or "/" in key or key.startswith("."):
            raise InvalidConfig(f"{PREFIX}.unified.{key}", "must map a file name to a string")
    r.unified = dict(unified)
    r.network = _section(resources, "network", PREFIX)
    return r
