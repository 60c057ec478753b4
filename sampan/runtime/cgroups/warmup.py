"""Warming up the kernel's cgroup migration lock before the container's first move.

Moving a process into a cgroup (a write to ``cgroup.procs``, v1 or v2) takes the kernel's global
``cgroup_threadgroup_rwsem`` for writing.  The first writer after a quiet spell waits a whole
RCU grace period while readers switch to their slow path (``rcu_sync_enter``): 10-15 ms on
these machines, measured; writers that follow within about a grace period pass at once
(0.03 ms).  runc hides that wait behind its other threads' work; sampan-runtime is one thread,
and the wait sat on its critical path between the fork of the init and the init's CGROUP_DONE.

:func:`start` begins the wait early, in a side thread (``_thread``: no ``threading`` import):
it writes this process's own pid into its own cgroup's ``cgroup.procs`` -- a move to where the
process already is, which changes nothing but takes the lock -- and repeats every 2 ms, so the
lock stays in its fast state until :func:`stop` (the managers call it after the real move) or
a time limit.  Any error ends the thread quietly: the warm-up is only ever an optimisation.

The kernel holds ``cgroup_mutex`` during that first wait, so a ``mkdir`` of the container's
cgroup that comes too soon waits for the rest of it: what is left of the grace period moves
from ``add`` to ``create``.  Measured (``sampan-runtime run`` of /bin/true, a bundle with
memory/pids/cpu limits, medians under load): 52.8 ms without the warm-up, 43.0 ms with it,
33.4 ms for the same bundle without cgroups; ``add`` alone 9.1 -> 0.2 ms.

On cgroup v1 there is a better way, so the warm-up is for v2 only (:func:`needed`): a
single-threaded process that writes ``0`` to a v1 ``tasks`` file moves itself without taking
the global lock at all (the kernel skips it for a thread moving only itself), so the init
joins its cgroup that way (0.2-0.4 ms for eight hierarchies, against 6-19 ms for a first
``cgroup.procs`` move measured on the same host).  A warm-up there would hurt: its first
write holds ``cgroup_mutex`` through the grace period, and the container's ``mkdir`` and
self-move would wait for it.
"""

from __future__ import annotations

import _thread
import os
import time

_stop = [False]


def needed() -> bool:
    """Whether container moves here go through the global lock: not on a host that drives its
    controllers through v1, where the init moves itself in without it
    (``CgroupManager.open_join_fds``) and a warm-up would only hold ``cgroup_mutex`` through a
    grace period that the container's ``mkdir`` and move then wait out.  Told by
    /proc/self/cgroup alone: a controller sampan drives is listed there with its v1 hierarchy."""
    from sampan.runtime.cgroups.membership import V1_CONTROLLERS, parse_proc_cgroup

    try:
        with open("/proc/self/cgroup") as f:
            listed = parse_proc_cgroup(f.read())
    except OSError:
        return False
    return not any(ctrl in V1_CONTROLLERS for ctrl in listed)


def start(limit: float = 0.5) -> bool:
    """Start the warm-up thread (for at most ``limit`` seconds) if the host :func:`needed` it;
    False if not, or if this process's cgroup could not be found."""
    return needed() and begin(limit)


def begin(limit: float = 0.5) -> bool:
    """Start the warm-up thread whatever the host (False if this process's cgroup could not be
    found)."""
    try:
        path = own_procs_file()
    except (OSError, ValueError):
        return False
    if path is None:
        return False
    _stop[0] = False
    _thread.start_new_thread(_run, (path, time.monotonic() + limit))
    return True


def start_for_bundle(bundle: str) -> bool:
    """:func:`start` if the bundle's config.json mentions cgroup resources or a cgroup path.
    A byte search, not a parse (the runtime parses the spec later, once): a false positive
    only costs an idle thread."""
    if not needed():
        return False
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            data = f.read()
    except OSError:
        return False
    if b'"resources"' not in data and b'"cgroupsPath"' not in data:
        return False
    return begin()


def stop() -> None:
    _stop[0] = True


def own_procs_file() -> str | None:
    """``cgroup.procs`` of the cgroup this process is in, in one hierarchy (v1 if any)."""
    from sampan.runtime.cgroups.select import _dir_for, detect_host

    layout = detect_host()
    for ctrl, h in sorted(layout.v1.items()):
        path = layout.self_paths.get(ctrl)
        if path is not None:
            return os.path.join(_dir_for(h, path), "cgroup.procs")
    if layout.unified is not None and "" in layout.self_paths:
        return os.path.join(_dir_for(layout.unified, layout.self_paths[""]), "cgroup.procs")
    return None


def _run(path: str, deadline: float) -> None:
    me = str(os.getpid()).encode()
    while not _stop[0] and time.monotonic() < deadline:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, me)
            finally:
                os.close(fd)
        except OSError:
            return
        time.sleep(0.002)
