"""Cgroups: one manager protocol, one implementation per cgroup version.

Vocabulary
----------
*cgroup path*
    The container's place in the cgroup tree, as OCI ``linux.cgroupsPath`` spells it: absolute
    paths (``/sampan/<id>``, the default) are relative to the root of each hierarchy; relative
    paths are relative to the cgroup of the calling process.
*hierarchy*
    One mounted cgroup filesystem.  cgroup v1 has one per controller (or per group of co-mounted
    controllers: ``cpu,cpuacct``); cgroup v2 has a single unified one.
*layout*
    What this machine mounts: ``v2`` (unified only), ``v1`` (legacy only) or ``hybrid`` (v1
    controllers plus a cgroup2 mount that holds few or no controllers).  Hybrid machines are
    driven through v1 for every controller bound to v1; whatever sits on the v2 side (here at
    most ``hugetlb``) is left alone.

Typical use (the runtime's parent side)::

    mgr = new_manager(spec.linux.cgroups_path, container_id)   # detects the layout
    mgr.create()                     # idempotent; parents made as needed
    mgr.set(spec.linux.resources)    # OCI linux.resources; InvalidConfig names a bad field
    mgr.add(init_pid)                # before the init execs the user's program
    ...
    mgr.stats()                      # CgroupStats, same fields on v1 and v2
    mgr.freeze(); mgr.thaw()         # pause / resume
    mgr.kill_all(signal.SIGKILL)     # delete --force
    mgr.destroy()                    # rmdir everywhere; waits briefly for tasks to go

Nothing here needs CAP_SYS_RESOURCE: cgroup limits are plain file writes.

Import cost: this package is on ``sampan-runtime``'s start path whenever a bundle has cgroup
resources, so, like the runtime core, it imports no ``dataclasses``, ``typing``, ``re`` or
``enum`` at run time (``sampan.oci.record`` stands in for dataclasses; typing names are read
only under ``TYPE_CHECKING``), and ``select`` imports only the manager the host needs.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sampan.runtime.cgroups.manager import CgroupManager, CgroupStats

__all__ = ["CgroupManager", "CgroupStats", "new_manager"]


def __getattr__(name: str) -> object:
    # the protocol and the stats record load on first use: the runtime's start imports this
    # package (for the warm-up check) before it needs either
    if name in ("CgroupManager", "CgroupStats"):
        from sampan.runtime.cgroups import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_manager(cgroups_path: str | None, container_id: str) -> CgroupManager:
    """The manager for this machine's layout (detected from /proc/self/mountinfo and
    /proc/self/cgroup).  ``cgroups_path`` None means ``/sampan/<container_id>``."""
    from sampan.runtime.cgroups.select import manager_for_host

    return manager_for_host(cgroups_path, container_id)
