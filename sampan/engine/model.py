"""Containers as engine data: what the user asked for, and what the engine knows.

Vocabulary: a container's *spec* (:class:`ContainerSpec`) is the image-independent part of
what ``create`` was given (command, environment, user, labels...), merged with the image's
config at create time; its *host spec* (:class:`HostSpec`) says how the host runs it (mounts,
resources, security, restart policy); its *state* (:class:`ContainerState`) is where it is in
its life (see ``lifecycle.py``).  A :class:`Container` ties them together with its ID, name,
image and paths.  Docker's PascalCase JSON never appears here: ``api/`` converts.

Everything here is a plain dataclass that round-trips through ``to_dict``/``from_dict`` (the
row stored in ``sampan.db``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

ZERO_TIME = "0001-01-01T00:00:00Z"

T = TypeVar("T")


@dataclass
class HealthConfig:
    test: list[str] = field(default_factory=list)  # ["CMD", ...], ["CMD-SHELL", "..."], ["NONE"]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


@dataclass
class HealthLogEntry:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class Health:
    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: list[HealthLogEntry] = field(default_factory=list)


@dataclass
class ContainerSpec:
    image: str = ""
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)  # anonymous volume targets
    stop_signal: str = ""
    stop_timeout: int | None = None
    healthcheck: HealthConfig | None = None
    on_build: list[str] = field(default_factory=list)
    shell: list[str] = field(default_factory=list)


@dataclass
class MountSpec:
    """One ``--mount`` (or a converted ``-v``/``--tmpfs``)."""

    type: str  # bind | volume | tmpfs
    target: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""
    no_copy: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    tmpfs_size: int = 0
    tmpfs_mode: int = 0
    options: list[str] = field(default_factory=list)  # extra mount options (tmpfs, -v modes)


@dataclass
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


@dataclass
class RestartPolicy:
    name: str = "no"  # no | always | on-failure | unless-stopped
    maximum_retry_count: int = 0


@dataclass
class LogConfig:
    type: str = "json-file"
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class HostSpec:
    binds: list[str] = field(default_factory=list)
    mounts: list[MountSpec] = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    ulimits: list[Ulimit] = field(default_factory=list)
    init: bool = False
    auto_remove: bool = False
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    network_mode: str = "none"
    memory: int = 0
    memory_reservation: int = 0
    memory_swappiness: int | None = None  # 0..100; None: the kernel's (Docker's -1)
    memory_swap: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0
    blkio_weight: int = 0
    shm_size: int = 0
    log_config: LogConfig = field(default_factory=LogConfig)
    runtime: str = "sampan"
    oom_score_adj: int = 0
    oom_kill_disable: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)
    devices: list[DeviceMapping] = field(default_factory=list)
    console_size: list[int] = field(default_factory=lambda: [0, 0])
    group_add: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # legacy links, "name:alias" (``links.py``)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    ipc_mode: str = "private"
    pid_mode: str = ""
    uts_mode: str = ""
    isolation: str = ""
    volumes_from: list[str] = field(default_factory=list)
    device_cgroup_rules: list[str] = field(default_factory=list)
    #: "80/tcp" -> [{"HostIp": "", "HostPort": "8080"}] (Docker's PortBindings, kept as given)
    port_bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    publish_all_ports: bool = False
    #: network name -> its endpoint settings (``--network-alias``, ``--ip``, ``--mac-address``)
    endpoints_config: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class EndpointState:
    """One network a running container is attached to (``NetworkSettings.Networks``)."""

    network: str = ""
    network_id: str = ""
    endpoint_id: str = ""
    ip_address: str = ""
    prefixlen: int = 0
    gateway: str = ""
    mac_address: str = ""
    aliases: list[str] = field(default_factory=list)
    ipv6_address: str = ""  # on an --ipv6 network
    ipv6_prefixlen: int = 0
    ipv6_gateway: str = ""


@dataclass
class PublishedPort:
    """``NetworkSettings.Ports``: "80/tcp" published on host_ip:host_port."""

    container_port: str = ""
    host_ip: str = ""
    host_port: str = ""


@dataclass
class ContainerState:
    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Health | None = None


@dataclass
class MountPoint:
    """A mount as ``inspect`` shows it (``Mounts``)."""

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""
    name: str = ""  # volume name
    driver: str = ""
    mode: str = ""
    rw: bool = True
    propagation: str = ""
    anonymous: bool = False


@dataclass
class Container:
    id: str
    name: str  # without the leading "/"
    created: str
    spec: ContainerSpec
    host: HostSpec
    image_id: str
    image_name: str = ""  # what the user typed (Config.Image)
    state: ContainerState = field(default_factory=ContainerState)
    restart_count: int = 0
    mount_points: list[MountPoint] = field(default_factory=list)
    log_path: str = ""
    bundle_dir: str = ""
    hostname_path: str = ""
    hosts_path: str = ""
    resolv_conf_path: str = ""
    driver: str = ""
    path: str = ""  # the program (first of entrypoint + cmd)
    args: list[str] = field(default_factory=list)
    has_been_started: bool = False
    has_been_manually_stopped: bool = False
    platform: str = "linux"
    size_rw: int | None = None
    size_root_fs: int | None = None
    sandbox_key: str = ""  # the network namespace while running on bridge networks
    link_env: list[str] = field(default_factory=list)  # legacy links' variables, set at each start
    joined: dict[str, int] = field(default_factory=dict)  # container:<id> modes: ns type -> that container's pid
    endpoints: list[EndpointState] = field(default_factory=list)
    ports: list[PublishedPort] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Container:
        return from_dict(cls, raw)

    @property
    def short_id(self) -> str:
        return self.id[:12]


def from_dict(cls: type[T], raw: Any) -> T:
    """Rebuild a dataclass (nested dataclasses, lists, optionals) from ``asdict`` output.

    Unknown keys are ignored and missing ones take their defaults, so rows written by an older
    sampan still load.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value)
    return value
