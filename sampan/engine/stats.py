"""Container resource statistics (``docker stats``): one cgroup read per container per tick,
shared by every subscriber.

A :class:`Sampler` runs while a container has at least one subscriber: every ``interval``
(1 s, as dockerd's collector) it reads the container's cgroup once (``runtime.cgroups``
``CgroupStats``), the host's CPU counter and ``/proc/<pid>/net/dev``, and hands the same
:class:`Sample` to every subscriber's queue; the last subscriber to leave stops it.  A sample
carries the previous one's CPU figures (Docker's ``precpu_stats``), so a one-shot reader
(``stream=false``) that is not ``one-shot`` waits for the second sample, as Docker does, and
gets a non-zero CPU percentage.

Docker's JSON shape is made in ``api/``; a :class:`Sample` is plain engine data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sampan import errors
from sampan.runtime.cgroups import CgroupStats, new_manager

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class NetStats:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass
class Sample:
    read: str  # RFC 3339 time of this sample
    cgroup: CgroupStats
    system_cpu_ns: int
    online_cpus: int
    networks: dict[str, NetStats] = field(default_factory=dict)
    host_memory: int = 0
    # the previous sample's figures (zeros on the first)
    preread: str = "0001-01-01T00:00:00Z"
    pre_cgroup: CgroupStats = field(default_factory=CgroupStats)
    pre_system_cpu_ns: int = 0
    running: bool = True


def system_cpu_ns(stat_path: str = "/proc/stat") -> int:
    """Total CPU time of the host in ns (the ``cpu`` line of /proc/stat), as dockerd reads it."""
    with open(stat_path) as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(x) for x in line.split()[1:8])
                return ticks * 1_000_000_000 // CLOCK_TICKS
    return 0


def host_memory(meminfo: str = "/proc/meminfo") -> int:
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def parse_net_dev(text: str) -> dict[str, NetStats]:
    """``/proc/<pid>/net/dev`` -> per-interface counters (loopback left out, as Docker does)."""
    out: dict[str, NetStats] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        values = rest.split()
        if not name or name == "lo" or len(values) < 16:
            continue
        v = [int(x) for x in values]
        out[name] = NetStats(v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11])
    return out


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


class Sampler:
    """The shared reader for one container."""

    def __init__(self, read: Callable[[], Sample], interval: float) -> None:
        self._read = read
        self.interval = interval
        self.subscribers: set[asyncio.Queue[Sample | None]] = set()
        self.last: Sample | None = None
        self.task: asyncio.Task[None] | None = None
        self.reads = 0  # cgroup reads done (tests check sharing)

    async def run(self) -> None:
        try:
            while self.subscribers:
                try:
                    sample = await asyncio.to_thread(self._read)
                except errors.SampanError:
                    sample = None
                if sample is not None:
                    self.reads += 1
                    if self.last is not None:
                        sample.preread = self.last.read
                        sample.pre_cgroup = self.last.cgroup
                        sample.pre_system_cpu_ns = self.last.system_cpu_ns
                    self.last = sample
                for q in list(self.subscribers):
                    q.put_nowait(sample)
                if sample is None or not sample.running:
                    return
                await asyncio.sleep(self.interval)
        finally:
            for q in list(self.subscribers):
                q.put_nowait(None)


class StatsService:
    def __init__(self, containers: ContainerService, *, interval: float = 1.0) -> None:
        self.containers = containers
        self.interval = interval
        self._samplers: dict[str, Sampler] = {}
        self._host_memory = host_memory()
        self._cpus = os.cpu_count() or 1

    def read_once(self, container_id: str) -> Sample:
        """One sample now (no subscriber needed): the cgroup, the host CPU, the network."""
        c = self.containers.get(container_id)
        running = c.state.running
        cg = CgroupStats()
        if running:
            try:
                cg = new_manager(f"/sampan/{c.id}", c.id).stats()
            except (OSError, errors.SampanError):
                cg = CgroupStats()
        nets: dict[str, NetStats] = {}
        if running and c.state.pid:
            with contextlib.suppress(OSError), open(f"/proc/{c.state.pid}/net/dev") as f:
                nets = parse_net_dev(f.read())
        cpus = len(cg.cpu_percpu_ns) or self._cpus
        return Sample(_now(), cg, system_cpu_ns(), cpus, nets, self._host_memory, running=running)

    def sampler(self, container_id: str) -> Sampler | None:
        return self._samplers.get(container_id)

    async def subscribe(self, container: str) -> tuple[str, asyncio.Queue[Sample | None]]:
        """A queue that receives every sample of ``container`` (None when it stops)."""
        c = self.containers.get(container)
        q: asyncio.Queue[Sample | None] = asyncio.Queue()
        s = self._samplers.get(c.id)
        if s is None or s.task is None or s.task.done():
            s = Sampler(lambda: self.read_once(c.id), self.interval)
            self._samplers[c.id] = s
            s.subscribers.add(q)
            s.task = asyncio.ensure_future(s.run())
        else:
            s.subscribers.add(q)
            if s.last is not None:
                q.put_nowait(s.last)
        return c.id, q

    def unsubscribe(self, container_id: str, q: asyncio.Queue[Sample | None]) -> None:
        s = self._samplers.get(container_id)
        if s is None:
            return
        s.subscribers.discard(q)
        if not s.subscribers:
            if s.task is not None:
                s.task.cancel()
            self._samplers.pop(container_id, None)
