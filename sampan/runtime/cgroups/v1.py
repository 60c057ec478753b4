"""cgroup v1: one directory per controller hierarchy (also the v1 side of a hybrid host)."""

from __future__ import annotations

import errno
import os
import time

from sampan.errors import Internal, InvalidConfig, from_oserror
from sampan.runtime.cgroups import files as cgf
from sampan.runtime.cgroups import warmup
from sampan.runtime.cgroups.manager import CgroupStats
from sampan.runtime.cgroups.membership import V1_CONTROLLERS
from sampan.runtime.cgroups.resources import PREFIX, parse_resources

_SIGKILL = 9  # signal.SIGKILL without importing signal (it imports enum: 4 ms of a start)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sampan.runtime.cgroups.resources import Resources

#: The controllers sampan drives on v1.
CONTROLLERS = V1_CONTROLLERS


class V1CgroupManager:
    """A container's cgroup on v1: ``dirs`` maps each available controller to its directory.

    Co-mounted controllers (``cpu,cpuacct``) share a directory; a missing controller is simply
    absent from ``dirs`` (setting a resource that needs it raises InvalidConfig).
    """

    def __init__(self, path: str, dirs: dict[str, str], *, removable_parents: int = 0) -> None:
        self.path = path
        self.dirs = dict(dirs)
        # how many ancestors (below the hierarchy root) destroy() may remove when empty
        self._removable_parents = removable_parents
        self._created: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    def _unique_dirs(self) -> list[str]:
        return sorted(set(self.dirs.values()))

    def create(self) -> None:
        for ctrl, d in sorted(self.dirs.items()):
            self._mkdirs(d, cpuset=ctrl == "cpuset")

    def _mkdirs(self, d: str, *, cpuset: bool) -> None:
        missing = []
        p = d
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for attempt in range(5):
            try:
                for m in reversed(missing):
                    try:
                        os.mkdir(m, 0o755)
                        self._created.add(m)
                    except FileExistsError:
                        pass
                    if cpuset:
                        self._inherit_cpuset(m)
                break
            except FileNotFoundError:  # a parent removed by a concurrent destroy(): retry
                if attempt == 4:
                    raise
            except OSError as exc:
                raise from_oserror(exc, f"create cgroup {m}") from exc
        if cpuset and not missing:
            self._inherit_cpuset(d)

    @staticmethod
    def _inherit_cpuset(d: str) -> None:
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            try:
                if cgf.read(os.path.join(d, name)).strip():
                    continue
                value = cgf.read(os.path.join(parent, name)).strip()
            except FileNotFoundError:
                continue
            cgf.write(os.path.join(d, name), value, field=f"{PREFIX}.cpu.{name[7:]}")

    def add(self, pid: int) -> None:
        try:
            for d in self._unique_dirs():
                try:
                    cgf.write(os.path.join(d, "cgroup.procs"), pid, field="cgroup.procs")
                except InvalidConfig as exc:
                    raise Internal(f"add pid {pid} to cgroup {d}: {exc.message}") from exc
        finally:
            warmup.stop()

    def open_join_fds(self) -> list[int]:
        fds: list[int] = []
        try:
            for d in self._unique_dirs():
                path = os.path.join(d, "tasks")
                fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise from_oserror(exc, f"open {path}") from exc
        return fds

    def pids(self) -> list[int]:
        d = (
            self.dirs.get("pids")
            or self.dirs.get("freezer")
            or next(iter(self.dirs.values()), None)
        )
        return [] if d is None else cgf.procs(os.path.join(d, "cgroup.procs"))

    def destroy(self) -> None:
        dirs = self._unique_dirs()
        deadline = time.monotonic() + 2.0
        for d in dirs:
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.01)
                        continue
                    raise from_oserror(exc, f"remove cgroup {d}") from exc
            self._remove_parents(d)

    def _remove_parents(self, d: str) -> None:
        p = os.path.dirname(d)
        level = 0
        while True:
            level += 1
            if level > self._removable_parents and p not in self._created:
                return
            try:
                os.rmdir(p)
            except OSError:
                return  # not empty (another container's) or already gone
            p = os.path.dirname(p)

    # ------------------------------------------------------------ freezer and signals

    def _freezer(self) -> str:
        d = self.dirs.get("freezer")
        if d is None:
            raise InvalidConfig(f"{PREFIX}", "the freezer controller is not available")
        return os.path.join(d, "freezer.state")

    def freeze(self) -> None:
        state = self._freezer()
        deadline = time.monotonic() + 5.0
        while True:
            cgf.write(state, "FROZEN", field="freezer.state")
            if cgf.read(state).strip() == "FROZEN":
                return
            if time.monotonic() > deadline:
                cgf.write(state, "THAWED", field="freezer.state")
                raise Internal(f"freeze cgroup {self.path}: still freezing after 5s")
            time.sleep(0.001)

    def thaw(self) -> None:
        cgf.write(self._freezer(), "THAWED", field="freezer.state")

    def frozen(self) -> bool:
        try:
            return cgf.read(self._freezer()).strip() == "FROZEN"
        except FileNotFoundError:
            return False

    def kill_all(self, sig: int) -> None:
        can_freeze = "freezer" in self.dirs and os.path.isdir(self.dirs["freezer"])
        was_frozen = can_freeze and self.frozen()
        if can_freeze and not was_frozen:
            self.freeze()
        try:
            cgf.signal_members(self.pids(), sig)
        finally:
            if can_freeze and not was_frozen:
                self.thaw()
            elif was_frozen and sig == _SIGKILL:
                self.thaw()  # killed tasks in a frozen group die only once thawed

    # ------------------------------------------------------------ resources

    def _dir(self, ctrl: str, field: str) -> str:
        d = self.dirs.get(ctrl)
        if d is None:
            raise InvalidConfig(field, f"the {ctrl} controller is not available (cgroup v1)")
        return d

    def _write(self, ctrl: str, name: str, value: str | int, field: str) -> None:
        cgf.write(os.path.join(self._dir(ctrl, field), name), value, field=field)

    def set(self, resources: dict[str, Any]) -> None:
        self.apply(parse_resources(resources))

    def apply(self, r: Resources) -> None:
        self._apply_cpuset(r)
        self._apply_memory(r)
        self._apply_cpu(r)
        if r.pids_limit is not None:
            value = "max" if r.pids_limit <= 0 else r.pids_limit
            self._write("pids", "pids.max", value, f"{PREFIX}.pids.limit")
        self._apply_blkio(r)
        self._apply_devices(r)
        if r.hugepage_limits:
            raise InvalidConfig(
                f"{PREFIX}.hugepageLimits", "the hugetlb controller is not on cgroup v1 here"
            )
        if r.unified:
            raise InvalidConfig(f"{PREFIX}.unified", "needs cgroup v2 (this host drives v1)")
        if r.network:
            raise InvalidConfig(f"{PREFIX}.network", "net_cls/net_prio are not supported")

    def _apply_cpuset(self, r: Resources) -> None:
        if r.cpus is not None:
            self._write("cpuset", "cpuset.cpus", r.cpus, f"{PREFIX}.cpu.cpus")
        if r.mems is not None:
            self._write("cpuset", "cpuset.mems", r.mems, f"{PREFIX}.cpu.mems")

    def _apply_memory(self, r: Resources) -> None:
        at = f"{PREFIX}.memory"
        limit = r.memory_limit or None  # 0 means unset, as in runc
        swap = r.memory_swap or None
        if limit is not None or swap is not None:
            mem = self._dir("memory", f"{at}.limit")
            limit_file = os.path.join(mem, "memory.limit_in_bytes")
            swap_file = os.path.join(mem, "memory.memsw.limit_in_bytes")
            have_swap = os.path.exists(swap_file)
            if swap is not None and not have_swap:
                raise InvalidConfig(f"{at}.swap", "swap accounting is not enabled in this kernel")
            if limit == -1 and swap is None and have_swap:
                swap = -1
            if limit is not None and swap is not None:
                # memsw must stay >= memory: when growing write memsw first (as runc does)
                current = int(cgf.read(limit_file).split()[0])
                if swap == -1 or current < swap:
                    cgf.write(swap_file, swap, field=f"{at}.swap")
                    cgf.write(limit_file, limit, field=f"{at}.limit")
                else:
                    cgf.write(limit_file, limit, field=f"{at}.limit")
                    cgf.write(swap_file, swap, field=f"{at}.swap")
            elif limit is not None:
                cgf.write(limit_file, limit, field=f"{at}.limit")
            elif swap is not None:
                cgf.write(swap_file, swap, field=f"{at}.swap")
        if r.memory_reservation is not None:
            self._write(
                "memory", "memory.soft_limit_in_bytes", r.memory_reservation, f"{at}.reservation"
            )
        if r.memory_swappiness is not None:
            self._write("memory", "memory.swappiness", r.memory_swappiness, f"{at}.swappiness")
        if r.disable_oom_killer is not None:
            self._write(
                "memory", "memory.oom_control", int(r.disable_oom_killer), f"{at}.disableOOMKiller"
            )

    def _apply_cpu(self, r: Resources) -> None:
        at = f"{PREFIX}.cpu"
        if r.cpu_shares is not None:
            self._write("cpu", "cpu.shares", r.cpu_shares, f"{at}.shares")
        if r.cpu_period is not None:
            self._write("cpu", "cpu.cfs_period_us", r.cpu_period, f"{at}.period")
        if r.cpu_quota is not None:
            self._write("cpu", "cpu.cfs_quota_us", r.cpu_quota, f"{at}.quota")
        if r.cpu_rt_period is not None:
            self._write("cpu", "cpu.rt_period_us", r.cpu_rt_period, f"{at}.realtimePeriod")
        if r.cpu_rt_runtime is not None:
            self._write("cpu", "cpu.rt_runtime_us", r.cpu_rt_runtime, f"{at}.realtimeRuntime")
        if r.cpu_idle is not None:
            self._write("cpu", "cpu.idle", r.cpu_idle, f"{at}.idle")

    def _apply_blkio(self, r: Resources) -> None:
        at = f"{PREFIX}.blockIO"
        if r.blkio_weight is not None or r.blkio_weight_devices:
            d = self._dir("blkio", f"{at}.weight")
            prefix = "blkio." if os.path.exists(os.path.join(d, "blkio.weight")) else "blkio.bfq."
            if r.blkio_weight is not None:
                self._write("blkio", prefix + "weight", r.blkio_weight, f"{at}.weight")
            for i, dev in enumerate(r.blkio_weight_devices):
                line = f"{dev.major}:{dev.minor} {dev.value}"
                self._write("blkio", prefix + "weight_device", line, f"{at}.weightDevice[{i}]")
        for key, name, limits in (
            ("throttleReadBpsDevice", "read_bps_device", r.throttle_read_bps),
            ("throttleWriteBpsDevice", "write_bps_device", r.throttle_write_bps),
            ("throttleReadIOPSDevice", "read_iops_device", r.throttle_read_iops),
            ("throttleWriteIOPSDevice", "write_iops_device", r.throttle_write_iops),
        ):
            for i, dev in enumerate(limits):
                line = f"{dev.major}:{dev.minor} {dev.value}"
                self._write("blkio", f"blkio.throttle.{name}", line, f"{at}.{key}[{i}]")

    def _apply_devices(self, r: Resources) -> None:
        for i, rule in enumerate(r.devices):
            name = "devices.allow" if rule.allow else "devices.deny"
            self._write("devices", name, rule.v1_line(), f"{PREFIX}.devices[{i}]")

    # ------------------------------------------------------------ stats

    def stats(self) -> CgroupStats:
        s = CgroupStats()
        mem = self.dirs.get("memory")
        if mem:
            s.memory_usage = cgf.read_int(os.path.join(mem, "memory.usage_in_bytes"))
            s.memory_limit = cgf.read_int(os.path.join(mem, "memory.limit_in_bytes"))
            s.memory_max_usage = cgf.read_int(os.path.join(mem, "memory.max_usage_in_bytes"))
            s.memory_stat = cgf.read_keyed(os.path.join(mem, "memory.stat"))
            s.oom_kill = cgf.read_keyed(os.path.join(mem, "memory.oom_control")).get("oom_kill", 0)
            s.oom_events = s.oom_kill
        acct = self.dirs.get("cpuacct")
        if acct:
            s.cpu_total_ns = cgf.read_int(os.path.join(acct, "cpuacct.usage"))
            try:
                s.cpu_percpu_ns = [
                    int(x) for x in cgf.read(os.path.join(acct, "cpuacct.usage_percpu")).split()
                ]
            except FileNotFoundError:
                pass
            user = os.path.join(acct, "cpuacct.usage_user")
            if os.path.exists(user):
                s.cpu_user_ns = cgf.read_int(user)
                s.cpu_system_ns = cgf.read_int(os.path.join(acct, "cpuacct.usage_sys"))
            else:  # old kernels: USER_HZ ticks
                ticks = cgf.read_keyed(os.path.join(acct, "cpuacct.stat"))
                hz = os.sysconf("SC_CLK_TCK")
                s.cpu_user_ns = ticks.get("user", 0) * 1_000_000_000 // hz
                s.cpu_system_ns = ticks.get("system", 0) * 1_000_000_000 // hz
        cpu = self.dirs.get("cpu")
        if cpu:
            st = cgf.read_keyed(os.path.join(cpu, "cpu.stat"))
            s.periods = st.get("nr_periods", 0)
            s.throttled_periods = st.get("nr_throttled", 0)
            s.throttled_time_ns = st.get("throttled_time", 0)
        pids = self.dirs.get("pids")
        if pids:
            s.pids_current = cgf.read_int(os.path.join(pids, "pids.current"))
            s.pids_limit = cgf.read_int(os.path.join(pids, "pids.max"))
        blk = self.dirs.get("blkio")
        if blk:
            s.blkio = parse_blkio_v1(os.path.join(blk, "blkio.throttle.io_service_bytes_recursive"))
        return s


def parse_blkio_v1(path: str) -> list[tuple[int, int, str, int]]:
    out: list[tuple[int, int, str, int]] = []
    try:
        text = cgf.read(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":", 1)
        out.append((int(major), int(minor), parts[1], int(parts[2])))
    return out
