"""Docker's container defaults, as data for spec generation.

* capabilities: moby ``oci/caps/defaults.go`` (the 14 capabilities Docker grants);
* masked and read-only paths, default mounts: moby ``oci/defaults.go``;
* devices: the ones every container gets (runc adds them itself too);
* seccomp: moby ``profiles/seccomp/default.json`` carried unchanged in ``data/seccomp-default.json``
  (Apache-2.0, notice inside), resolved here against a capability set and architecture the way
  Docker resolves it before writing ``linux.seccomp`` into config.json.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

DEFAULT_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
)

#: (path, type, major, minor) created in every container's /dev.
DEFAULT_DEVICES: tuple[tuple[str, str, int, int], ...] = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)

#: Device cgroup rules every container gets after a deny-all (runc's AllowedDevices): mknod
#: of any node, and read/write/mknod of the default devices, ptys, ptmx and tun.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
)

def with_default_device_rules(resources: dict[str, Any], devices: Any) -> dict[str, Any]:
    """``linux.resources`` with runc's allowed devices (and the spec's own ``linux.devices``)
    appended after the spec's device rules, as runc does when it applies a deny-all."""
    if "devices" not in resources:
        return resources
    rules = list(resources["devices"])
    extra = [dict(r) for r in DEFAULT_DEVICE_RULES]
    for d in devices:
        kind = "c" if d.type == "u" else d.type
        extra.append({"allow": True, "type": kind, "major": d.major, "minor": d.minor, "access": "rwm"})
    for rule in extra:  # each rule is a cgroup file write: none twice (specgen adds them too)
        if rule not in rules:
            rules.append(rule)
    return {**resources, "devices": rules}


DEFAULT_NAMESPACES: tuple[str, ...] = ("pid", "network", "ipc", "uts", "mount", "cgroup")

DEFAULT_ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DATA = os.path.join(os.path.dirname(__file__), "data")

#: Docker's GOARCH names for this machine's architecture.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "riscv64": "riscv64"}
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "s390x": "SCMP_ARCH_S390X", "riscv64": "SCMP_ARCH_RISCV64"}


def seccomp_profile() -> dict[str, Any]:
    """Docker's default profile, as in the file (with includes/excludes unresolved)."""
    from sampan.oci import jsoncodec

    with open(os.path.join(_DATA, "seccomp-default.json")) as f:
        profile: dict[str, Any] = jsoncodec.loads(f.read())
    return profile


def _kernel_at_least(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("-")[0].split(".")[:2] if p.isdigit())

    return parts(os.uname().release) >= parts(version)


def default_seccomp(capabilities: list[str] | tuple[str, ...], machine: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` section Docker writes for a container with ``capabilities``.

    Rules whose ``includes`` do not match (capability, architecture, kernel) or whose
    ``excludes`` match are dropped, as moby's ``profiles/seccomp`` does.
    """
    machine = machine or os.uname().machine
    goarch = _GOARCH.get(machine, machine)
    caps = set(capabilities)
    profile = seccomp_profile()
    arches: list[str] = []
    native = _SCMP_ARCH.get(machine)
    for entry in profile["archMap"]:
        if entry["architecture"] == native:
            arches = [entry["architecture"], *(entry["subArchitectures"] or [])]
    syscalls: list[dict[str, Any]] = []
    for rule in profile["syscalls"]:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        out = {k: v for k, v in rule.items() if k in ("names", "action", "args", "errnoRet")}
        syscalls.append(out)
    return {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": syscalls,
    }


def default_config(
    args: list[str],
    *,
    rootfs: str = "rootfs",
    hostname: str = "sampan",
    terminal: bool = False,
    seccomp: bool = True,
    readonly_root: bool = False,
) -> dict[str, Any]:
    """A complete config.json as Docker would generate it for ``docker run IMAGE ARGS``."""
    caps = list(DEFAULT_CAPABILITIES)
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in DEFAULT_NAMESPACES],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if seccomp:
        linux["seccomp"] = default_seccomp(caps)
    return {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [DEFAULT_ENV_PATH, f"HOSTNAME={hostname}"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": readonly_root},
        "hostname": hostname,
        "mounts": [dict(m, options=list(m["options"])) for m in DEFAULT_MOUNTS],
        "linux": linux,
    }
