"""The OCI runtime-spec (1.2) Linux config as typed, frozen dataclasses.

``sampan.runtime.spec.load`` builds a :class:`Spec` from ``config.json`` once, validating every
field; the rest of the runtime reads only these types.  Field names are the spec's, in
snake_case; values are already converted (capability names to bit masks, mount options to
flags, rlimit names to numbers) so that the container's init does no parsing.
"""

from __future__ import annotations

from sampan.oci.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@record(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


@record(frozen=True)
class Capabilities:
    """Bit masks (bit N = capability number N)."""

    bounding: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    ambient: int = 0


@record(frozen=True)
class Rlimit:
    resource: int  # resource.RLIMIT_* number
    soft: int
    hard: int


@record(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (rows, cols)
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None

    def env_value(self, name: str) -> str | None:
        prefix = name + "="
        for item in self.env:
            if item.startswith(prefix):
                return item[len(prefix):]
        return None


@record(frozen=True)
class Mount:
    destination: str
    type: str
    source: str
    flags: int = 0  # MS_* bits to set
    clear: int = 0  # MS_* bits the options turned off (rw, suid, ...)
    propagation: int = 0
    data: str = ""
    options: tuple[str, ...] = ()
    bind: bool = False
    recursive_ro: bool = False
    idmap: bool = False  # idmapped with the container's user namespace
    idmap_recursive: bool = False


@record(frozen=True)
class Namespace:
    type: str  # OCI name: pid, mount, ...
    path: str = ""


@record(frozen=True)
class IDMapping:
    container_id: int
    host_id: int
    size: int


@record(frozen=True)
class Device:
    path: str
    type: str  # c, b, u, p
    major: int = 0
    minor: int = 0
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@record(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@record(frozen=True)
class Hooks:
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@record(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    devices: tuple[Device, ...] = ()
    cgroups_path: str | None = None
    resources: dict[str, Any] | None = None
    rootfs_propagation: int = 0
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    sysctl: tuple[tuple[str, str], ...] = ()
    seccomp: dict[str, Any] | None = None  # validated; compiled by runtime.seccomp
    time_offsets: tuple[tuple[str, int, int], ...] = ()  # (clock, secs, nanosecs)

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


@record(frozen=True)
class Spec:
    oci_version: str
    root_path: str  # absolute
    root_readonly: bool
    process: Process
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = field(default_factory=Hooks)
    linux: Linux = field(default_factory=Linux)
    annotations: dict[str, str] = field(default_factory=dict)
