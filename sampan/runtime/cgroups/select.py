"""Which cgroup layout this machine runs, and the manager for it.

Detection never assumes a controller exists: it reads /proc/self/mountinfo (what is mounted
where) and /proc/self/cgroup (where this process sits), as runc does.

* any v1 hierarchy with a real controller -> ``v1`` (or ``hybrid`` if a cgroup2 is mounted too):
  the v1 manager drives every controller found on v1 and ignores the v2 side;
* only a cgroup2 mount (v1 ones, if any, carry no controller, like ``name=systemd``) -> ``v2``.
"""

from __future__ import annotations

import os

from sampan.errors import InvalidConfig, Unavailable
from sampan.oci.record import field, record
from sampan.runtime.cgroups.membership import V1_CONTROLLERS, parse_proc_cgroup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sampan.runtime.cgroups import CgroupManager

__all__ = ["V1_CONTROLLERS", "Hierarchy", "Layout", "detect", "detect_host", "manager_for_host", "manager_for_layout", "parse_mountinfo", "parse_proc_cgroup"]

DEFAULT_PARENT = "/sampan"



@record(frozen=True)
class Hierarchy:
    mountpoint: str
    root: str  # the cgroup seen at the mountpoint (not "/" inside a cgroup namespace)
    controllers: frozenset[str]  # v1: from the super options; v2: empty (read cgroup.controllers)
    version: int


@record
class Layout:
    mode: str  # "v1", "v2" or "hybrid"
    v1: dict[str, Hierarchy] = field(default_factory=dict)  # controller -> hierarchy
    unified: Hierarchy | None = None
    self_paths: dict[str, str] = field(default_factory=dict)  # controller ("" for v2) -> path


def _unescape(path: str) -> str:
    return (
        path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def parse_mountinfo(text: str) -> list[Hierarchy]:
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype = rfields[0]
        if fstype == "cgroup2":
            out.append(Hierarchy(_unescape(fields[4]), fields[3], frozenset(), 2))
        elif fstype == "cgroup":
            opts = rfields[2].split(",")
            ctrls = frozenset(
                o
                for o in opts
                if o in V1_CONTROLLERS
                or o.startswith("name=")
                or o in ("hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")
            )
            out.append(Hierarchy(_unescape(fields[4]), fields[3], ctrls, 1))
    return out


def detect(mountinfo: str, proc_cgroup: str) -> Layout:
    v1: dict[str, Hierarchy] = {}
    unified = None
    for h in parse_mountinfo(mountinfo):
        if h.version == 2:
            unified = unified or h
            continue
        for ctrl in h.controllers:
            if ctrl in V1_CONTROLLERS:
                v1.setdefault(ctrl, h)
    paths = parse_proc_cgroup(proc_cgroup)
    if v1:
        return Layout("hybrid" if unified else "v1", v1, unified, paths)
    if unified:
        return Layout("v2", {}, unified, paths)
    raise Unavailable("no cgroup filesystem is mounted (looked in /proc/self/mountinfo)")


def detect_host() -> Layout:
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    with open("/proc/self/cgroup") as f:
        proc_cgroup = f.read()
    return detect(mountinfo, proc_cgroup)


def _check_path(cgroups_path: str) -> None:
    if ":" in cgroups_path:
        raise InvalidConfig(
            "linux.cgroupsPath",
            f"{cgroups_path!r} is a systemd path; sampan uses the cgroupfs driver",
        )
    if any(part == ".." for part in cgroups_path.split("/")):
        raise InvalidConfig("linux.cgroupsPath", f"{cgroups_path!r} must not contain '..'")


def _dir_for(h: Hierarchy, cgroup: str) -> str:
    """The directory of absolute cgroup path ``cgroup`` in hierarchy ``h``."""
    rel = cgroup
    root = h.root.rstrip("/")
    if root and (cgroup == root or cgroup.startswith(root + "/")):
        rel = cgroup[len(root) :]
    return os.path.normpath(os.path.join(h.mountpoint, rel.lstrip("/")))


def _absolute(cgroups_path: str, self_path: str) -> str:
    if cgroups_path.startswith("/"):
        return os.path.normpath(cgroups_path)
    return os.path.normpath(os.path.join(self_path or "/", cgroups_path))


def manager_for_layout(
    layout: Layout, cgroups_path: str | None, container_id: str
) -> CgroupManager:
    default = cgroups_path is None or cgroups_path == ""
    path = f"{DEFAULT_PARENT}/{container_id}" if default else str(cgroups_path)
    _check_path(path)
    if default and ("/" in container_id or container_id in ("", ".", "..")):
        raise InvalidConfig("id", f"{container_id!r} cannot name a cgroup")
    parents = 1 if default else 0
    if layout.mode == "v2":
        from sampan.runtime.cgroups.v2 import V2CgroupManager

        assert layout.unified is not None
        full = _absolute(path, layout.self_paths.get("", "/"))
        if full == "/":
            raise InvalidConfig("linux.cgroupsPath", "must not be the root cgroup")
        return V2CgroupManager(
            full,
            _dir_for(layout.unified, full),
            mountpoint=layout.unified.mountpoint,
            removable_parents=parents,
        )
    from sampan.runtime.cgroups.v1 import V1CgroupManager

    dirs = {}
    full = path
    for ctrl, h in sorted(layout.v1.items()):
        full = _absolute(path, layout.self_paths.get(ctrl, "/"))
        if full == "/":
            raise InvalidConfig("linux.cgroupsPath", "must not be the root cgroup")
        dirs[ctrl] = _dir_for(h, full)
    return V1CgroupManager(
        _absolute(path, layout.self_paths.get("memory", "/")), dirs, removable_parents=parents
    )


def manager_for_host(cgroups_path: str | None, container_id: str) -> CgroupManager:
    return manager_for_layout(detect_host(), cgroups_path, container_id)
