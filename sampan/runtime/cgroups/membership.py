"""Which cgroups a process is in, as ``/proc/<pid>/cgroup`` lists them, and which of its
controllers sampan drives on v1.  Small on purpose: the warm-up check reads it at every start,
before the runtime's other modules are imported."""

from __future__ import annotations

#: The controllers sampan drives on v1 (``v1.CONTROLLERS`` is this tuple; kept here so that
#: detection does not import either manager: only the one the host needs is imported).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer")


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``4:memory:/a/b`` lines -> {"memory": "/a/b"}; the v2 line ``0::/x`` -> {"": "/x"}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            out[""] = parts[2]
        for ctrl in parts[1].split(","):
            if ctrl:
                out[ctrl] = parts[2]
    return out
