"""cgroup v2: one directory in the unified hierarchy."""

from __future__ import annotations

import errno
import os
import time

from sampan.errors import Internal, InvalidConfig, from_oserror
from sampan.runtime.cgroups import files as cgf
from sampan.runtime.cgroups import warmup
from sampan.runtime.cgroups.manager import CgroupStats
from sampan.runtime.cgroups.resources import PREFIX, parse_resources

_SIGKILL = 9  # signal.SIGKILL without importing signal (it imports enum: 4 ms of a start)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sampan.runtime.cgroups.resources import DeviceRule, Resources

#: Controllers enabled in the ancestors' subtree_control when present.
CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), as runc and crun convert it."""
    if shares == 0:
        return 0
    return 1 + ((max(2, min(shares, 262144)) - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio weight (10..1000) to io.weight (1..10000)."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int | None, limit: int | None) -> int | None:
    """OCI swap counts memory + swap; memory.swap.max counts swap alone (-1 = max)."""
    if swap is None or swap == 0:
        return None
    if swap == -1:
        return -1
    if limit is None or limit == -1:
        return swap
    return swap - limit


class V2CgroupManager:
    """A container's cgroup in the unified hierarchy mounted at ``mountpoint``."""

    def __init__(self, path: str, dir: str, *, mountpoint: str, removable_parents: int = 0) -> None:
        self.path = path
        self.dir = dir
        self.mountpoint = mountpoint.rstrip("/") or "/"
        self._removable_parents = removable_parents
        self._created: set[str] = set()

    def _file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # ------------------------------------------------------------ lifecycle

    def create(self) -> None:
        rel = os.path.relpath(self.dir, self.mountpoint)
        if rel.startswith(".."):
            raise Internal(f"cgroup {self.dir} is outside {self.mountpoint}")
        parts = [] if rel == "." else rel.split("/")
        current = self.mountpoint
        for part in parts:
            self._enable_controllers(current)
            current = os.path.join(current, part)
            try:
                os.mkdir(current, 0o755)
                self._created.add(current)
            except FileExistsError:
                pass
            except OSError as exc:
                raise from_oserror(exc, f"create cgroup {current}") from exc

    @staticmethod
    def _enable_controllers(d: str) -> None:
        try:
            available = cgf.read(os.path.join(d, "cgroup.controllers")).split()
            enabled = cgf.read(os.path.join(d, "cgroup.subtree_control")).split()
        except FileNotFoundError:
            return
        wanted = [c for c in CONTROLLERS if c in available and c not in enabled]
        if wanted:
            line = " ".join(f"+{c}" for c in wanted)
            cgf.write(
                os.path.join(d, "cgroup.subtree_control"), line, field="cgroup.subtree_control"
            )

    def add(self, pid: int) -> None:
        try:
            cgf.write(self._file("cgroup.procs"), pid, field="cgroup.procs")
        except InvalidConfig as exc:
            raise Internal(f"add pid {pid} to cgroup {self.dir}: {exc.message}") from exc
        finally:
            warmup.stop()

    def open_join_fds(self) -> list[int]:
        return []  # a domain cgroup takes whole processes only: the parent calls add()

    def pids(self) -> list[int]:
        return cgf.procs(self._file("cgroup.procs"))

    def destroy(self) -> None:
        deadline = time.monotonic() + 2.0
        while True:
            try:
                os.rmdir(self.dir)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                raise from_oserror(exc, f"remove cgroup {self.dir}") from exc
        p, level = os.path.dirname(self.dir), 0
        while p.startswith(self.mountpoint + "/"):
            level += 1
            if level > self._removable_parents and p not in self._created:
                return
            try:
                os.rmdir(p)
            except OSError:
                return
            p = os.path.dirname(p)

    # ------------------------------------------------------------ freezer and signals

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        cgf.write(self._file("cgroup.freeze"), int(frozen), field="cgroup.freeze")
        deadline = time.monotonic() + 5.0
        while self.frozen() != frozen:
            if time.monotonic() > deadline:
                raise Internal(f"{'freeze' if frozen else 'thaw'} cgroup {self.path}: timed out")
            time.sleep(0.001)

    def frozen(self) -> bool:
        return cgf.read_keyed(self._file("cgroup.events")).get("frozen", 0) == 1

    def kill_all(self, sig: int) -> None:
        if sig == _SIGKILL and os.path.exists(self._file("cgroup.kill")):
            cgf.write(self._file("cgroup.kill"), 1, field="cgroup.kill")
            return
        was_frozen = self.frozen()
        if not was_frozen:
            self.freeze()
        try:
            cgf.signal_members(self.pids(), sig)
        finally:
            if not was_frozen:
                self.thaw()

    # ------------------------------------------------------------ resources

    def _write(self, name: str, value: str | int, field: str) -> None:
        cgf.write(self._file(name), value, field=field)

    def set(self, resources: dict[str, Any]) -> None:
        self.apply(parse_resources(resources))

    def apply(self, r: Resources) -> None:
        if r.cpus is not None:
            self._write("cpuset.cpus", r.cpus, f"{PREFIX}.cpu.cpus")
        if r.mems is not None:
            self._write("cpuset.mems", r.mems, f"{PREFIX}.cpu.mems")
        self._apply_memory(r)
        self._apply_cpu(r)
        if r.pids_limit is not None:
            self._write(
                "pids.max", "max" if r.pids_limit <= 0 else r.pids_limit, f"{PREFIX}.pids.limit"
            )
        self._apply_io(r)
        for i, (size, limit) in enumerate(r.hugepage_limits):
            self._write(f"hugetlb.{size}.max", limit, f"{PREFIX}.hugepageLimits[{i}]")
        if r.devices:
            self._apply_devices(r.devices)
        if r.network:
            raise InvalidConfig(f"{PREFIX}.network", "net_cls/net_prio do not exist on cgroup v2")
        for key, value in sorted(r.unified.items()):
            self._write(key, value, f"{PREFIX}.unified.{key}")

    def _apply_devices(self, rules: list[DeviceRule]) -> None:
        """v2 has no devices files: the rules become a BPF program attached to the cgroup
        (one per cgroup; a new set replaces the old one)."""
        from sampan._sys import bpf
        from sampan.runtime.cgroups.devices import device_program

        field = f"{PREFIX}.devices"
        program = device_program(rules)
        try:
            dirfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise InvalidConfig(field, f"cgroup {self.dir} does not exist") from exc
        try:
            prog = bpf.load_device_program(program)
            try:
                bpf.attach_device_program(dirfd, prog)
            finally:
                os.close(prog)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EACCES, errno.EBADF):
                raise InvalidConfig(field, f"device filter refused: {exc.strerror}") from exc
            raise from_oserror(exc, f"install device filter on {self.dir}") from exc
        finally:
            os.close(dirfd)

    def _apply_memory(self, r: Resources) -> None:
        at = f"{PREFIX}.memory"
        limit = r.memory_limit or None
        swap = swap_to_v2(r.memory_swap, limit)
        if swap is not None:
            self._write("memory.swap.max", "max" if swap == -1 else swap, f"{at}.swap")
        if limit is not None:
            self._write("memory.max", "max" if limit == -1 else limit, f"{at}.limit")
        if r.memory_reservation is not None:
            res = r.memory_reservation
            self._write("memory.low", "max" if res == -1 else res, f"{at}.reservation")
        if r.memory_swappiness is not None:
            raise InvalidConfig(f"{at}.swappiness", "cgroup v2 has no per-group swappiness")
        if r.disable_oom_killer:
            raise InvalidConfig(f"{at}.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")

    def _apply_cpu(self, r: Resources) -> None:
        at = f"{PREFIX}.cpu"
        if r.cpu_shares is not None:
            self._write("cpu.weight", shares_to_weight(r.cpu_shares), f"{at}.shares")
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota = "max" if r.cpu_quota in (None, -1) else str(r.cpu_quota)
            period = r.cpu_period or 100000
            self._write("cpu.max", f"{quota} {period}", f"{at}.quota")
        if r.cpu_rt_runtime is not None or r.cpu_rt_period is not None:
            raise InvalidConfig(f"{at}.realtimeRuntime", "realtime scheduling needs cgroup v1")
        if r.cpu_idle is not None:
            self._write("cpu.idle", r.cpu_idle, f"{at}.idle")

    def _apply_io(self, r: Resources) -> None:
        at = f"{PREFIX}.blockIO"
        bfq = os.path.exists(self._file("io.bfq.weight"))
        if r.blkio_weight is not None:
            if bfq:
                self._write("io.bfq.weight", r.blkio_weight, f"{at}.weight")
            else:
                self._write("io.weight", blkio_to_io_weight(r.blkio_weight), f"{at}.weight")
        for i, dev in enumerate(r.blkio_weight_devices):
            name, value = (
                ("io.bfq.weight", dev.value)
                if bfq
                else ("io.weight", blkio_to_io_weight(dev.value))
            )
            self._write(name, f"{dev.major}:{dev.minor} {value}", f"{at}.weightDevice[{i}]")
        for key, word, limits in (
            ("throttleReadBpsDevice", "rbps", r.throttle_read_bps),
            ("throttleWriteBpsDevice", "wbps", r.throttle_write_bps),
            ("throttleReadIOPSDevice", "riops", r.throttle_read_iops),
            ("throttleWriteIOPSDevice", "wiops", r.throttle_write_iops),
        ):
            for i, dev in enumerate(limits):
                rate = str(dev.value or "max")
                self._write("io.max", f"{dev.major}:{dev.minor} {word}={rate}", f"{at}.{key}[{i}]")

    # ------------------------------------------------------------ stats

    def stats(self) -> CgroupStats:
        s = CgroupStats()
        s.memory_usage = cgf.read_int(self._file("memory.current"))
        s.memory_limit = cgf.read_int(self._file("memory.max"))
        s.memory_max_usage = cgf.read_int(self._file("memory.peak"))
        s.memory_stat = cgf.read_keyed(self._file("memory.stat"))
        events = cgf.read_keyed(self._file("memory.events"))
        s.oom_events = events.get("oom", 0)
        s.oom_kill = events.get("oom_kill", 0)
        cpu = cgf.read_keyed(self._file("cpu.stat"))
        s.cpu_total_ns = cpu.get("usage_usec", 0) * 1000
        s.cpu_user_ns = cpu.get("user_usec", 0) * 1000
        s.cpu_system_ns = cpu.get("system_usec", 0) * 1000
        s.periods = cpu.get("nr_periods", 0)
        s.throttled_periods = cpu.get("nr_throttled", 0)
        s.throttled_time_ns = cpu.get("throttled_usec", 0) * 1000
        s.pids_current = cgf.read_int(self._file("pids.current"))
        s.pids_limit = cgf.read_int(self._file("pids.max"))
        s.blkio = parse_io_stat(self._file("io.stat"))
        return s


_IO_OPS = {"rbytes": "Read", "wbytes": "Write", "dbytes": "Discard"}


def parse_io_stat(path: str) -> list[tuple[int, int, str, int]]:
    """``8:0 rbytes=1 wbytes=2 rios=3 ...`` lines to (major, minor, op, bytes)."""
    out: list[tuple[int, int, str, int]] = []
    try:
        text = cgf.read(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":", 1))
        for item in parts[1:]:
            key, _, value = item.partition("=")
            if key in _IO_OPS and value.isdigit():
                out.append((major, minor, _IO_OPS[key], int(value)))
    return out
