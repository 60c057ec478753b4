"""The cgroup manager protocol and the stats record both versions fill (re-exported by
:mod:`sampan.runtime.cgroups`, which imports this module only when they are asked for)."""

from __future__ import annotations

from sampan.oci.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # at run time CgroupManager is a plain base class (no typing import)


@record
class CgroupStats:
    """A container's resource usage, uniform for cgroup v1 and v2.

    Units: bytes and nanoseconds.  A limit of 0 means unlimited (``memory_limit``,
    ``pids_limit``).  A counter the kernel does not provide on this version reads 0 (or ``[]``
    for ``cpu_percpu_ns`` on v2).  ``blkio`` holds ``(major, minor, op, bytes)`` with ``op`` one
    of ``Read``, ``Write``, ``Sync``, ``Async``, ``Discard``, ``Total`` (v1) or ``Read``,
    ``Write``, ``Discard`` (v2).  ``oom_events`` counts times the group hit OOM (v2
    ``memory.events`` oom; on v1 the kernel only exposes kills, so it equals ``oom_kill``).
    """

    memory_usage: int = 0
    memory_limit: int = 0
    memory_max_usage: int = 0
    memory_stat: dict[str, int] = field(default_factory=dict)
    oom_events: int = 0
    oom_kill: int = 0
    cpu_total_ns: int = 0
    cpu_percpu_ns: list[int] = field(default_factory=list)
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    throttled_periods: int = 0
    throttled_time_ns: int = 0
    periods: int = 0
    pids_current: int = 0
    pids_limit: int = 0
    blkio: list[tuple[int, int, str, int]] = field(default_factory=list)


class CgroupManager(Protocol):
    """The cgroup of one container, on whichever cgroup version the machine runs."""

    path: str  # the cgroup path (absolute, as seen from the hierarchy root)

    def create(self) -> None:
        """Make the cgroup (and its parents); idempotent.  On v1, cpuset cpus/mems are copied
        from the parent so that tasks can join."""

    def set(self, resources: dict[str, Any]) -> None:
        """Apply OCI ``linux.resources``: memory limit/reservation/swap/swappiness, cpu
        shares/quota/period/realtime/cpus/mems, pids limit, blockIO weight and throttles,
        device rules.  Raises ``InvalidConfig`` naming the field on a bad value or a missing
        controller."""

    def add(self, pid: int) -> None:
        """Move a process into the cgroup (every hierarchy)."""

    def open_join_fds(self) -> list[int]:
        """Write-only fds through which a single-threaded process moves itself into the cgroup
        by writing ``0`` to each (v1 ``tasks``), without the kernel's global
        ``cgroup_threadgroup_rwsem``: a thread moving only itself skips that lock, whose first
        writer after a quiet spell waits an RCU grace period (10-15 ms here; see ``warmup``).
        The permission check uses the opener's credentials, so the fds work in a child that
        has since entered a user namespace.  Empty where only :meth:`add` works (v2, whose
        domain cgroups take whole processes)."""

    def pids(self) -> list[int]:
        """The processes in the cgroup (not its children)."""

    def freeze(self) -> None:
        """Freeze every task; returns once the kernel reports the group frozen."""

    def thaw(self) -> None: ...

    def frozen(self) -> bool: ...

    def stats(self) -> CgroupStats: ...

    def kill_all(self, sig: int) -> None:
        """Signal every process in the cgroup (frozen while signalling, so none escapes by
        forking)."""

    def destroy(self) -> None:
        """Remove the cgroup everywhere; idempotent; waits briefly for exiting tasks."""
