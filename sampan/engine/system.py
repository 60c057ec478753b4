"""Facts about the host and the daemon for ``/info``, ``/version`` and ``/system/df``.

Everything here is read from the running system (``uname``, ``/proc``, ``/etc/os-release``,
``/sys/fs/cgroup``) when asked, so that the answers are true, not configured.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sampan import API_VERSION, MIN_API_VERSION, __version__
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from sampan.image.store import ImagesUsage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str
    api_version: str
    min_api_version: str
    python_version: str
    os: str
    arch: str
    kernel_version: str
    git_commit: str
    build_time: str


@dataclass(frozen=True, slots=True)
class SystemInfo:
    id: str
    name: str
    images: int
    containers: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    driver: str
    driver_status: list[tuple[str, str]]
    data_root: str
    exec_root: str
    cgroup_driver: str
    cgroup_version: str
    kernel_version: str
    operating_system: str
    os_version: str
    os_type: str
    architecture: str
    ncpu: int
    mem_total: int
    server_version: str
    debug: bool
    system_time: str
    event_listeners: int
    open_fds: int
    threads: int
    runtimes: dict[str, str]
    default_runtime: str
    logging_driver: str
    security_options: list[str]
    warnings: list[str]
    labels: list[str] = field(default_factory=list)
    firewall_backend: dict[str, str] = field(default_factory=dict)
    ipv4_forwarding: bool = True
    memory_limit: bool = True
    swap_limit: bool = False
    pids_limit: bool = True
    cpu_cfs: bool = True
    cpu_shares: bool = True
    cpuset: bool = True
    oom_kill_disable: bool = True
    live_restore: bool = True


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return default


def os_release() -> tuple[str, str]:
    """(PRETTY_NAME, VERSION_ID) from /etc/os-release."""
    values: dict[str, str] = {}
    for line in _read("/etc/os-release").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values.get("PRETTY_NAME", "Linux"), values.get("VERSION_ID", "")


def mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def cgroup_version() -> str:
    """"2" on a unified hierarchy, else "1" (hybrid hosts count as v1, as Docker does)."""
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/self/mountinfo, longest match)."""
    best, fstype = "", "unknown"
    target = str(path.resolve())
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mnt = fields[4]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, fstype = mnt, right.split()[0]
    return {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}.get(fstype, fstype)


def kernel_version() -> str:
    return platform.release()


def architecture() -> str:
    return platform.machine()


def go_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        platform.machine(), platform.machine()
    )


def python_version() -> str:
    return "python" + platform.python_version()


class SystemService:
    """The daemon-wide answers; built once by ``daemon.wiring`` with what the daemon knows."""

    def __init__(
        self,
        images: ImageService,
        events: EventBus,
        *,
        daemon_id: str,
        data_root: Path,
        exec_root: Path,
        storage_driver: str,
        debug: bool = False,
        runtimes: dict[str, str] | None = None,
        default_runtime: str = "sampan-runtime",
    ) -> None:
        self.images = images
        self.events = events
        self.daemon_id = daemon_id
        self.data_root = data_root
        self.exec_root = exec_root
        self.storage_driver = storage_driver
        self.debug = debug
        self.runtimes = runtimes or {"sampan-runtime": "sampan-runtime", "runc": "runc", "crun": "crun"}
        self.default_runtime = default_runtime
        #: set by daemon.wiring once the container service exists (counts in /info)
        self.containers: ContainerService | None = None
        #: set by daemon.wiring: the network service's firewall facts (``FirewallBackend``)
        self.network_info: Callable[[], dict[str, str]] | None = None

    def version(self) -> VersionInfo:
        return VersionInfo(
            version=__version__,
            api_version=API_VERSION,
            min_api_version=MIN_API_VERSION,
            python_version=python_version(),
            os="linux",
            arch=go_arch(),
            kernel_version=kernel_version(),
            git_commit="",
            build_time="",
        )

    def info(self) -> SystemInfo:
        pretty, version_id = os_release()
        warnings = []
        if cgroup_version() == "1":
            warnings.append("WARNING: No swap limit support")
        states = [c.state.status for c in self.containers.all()] if self.containers else []
        running = sum(s in ("running", "restarting") for s in states)
        paused = states.count("paused")
        return SystemInfo(
            id=self.daemon_id,
            name=platform.node(),
            images=len(self.images.store.list()),
            containers=len(states),
            containers_running=running,
            containers_paused=paused,
            containers_stopped=len(states) - running - paused,
            driver=self.storage_driver,
            driver_status=[("Backing Filesystem", filesystem_type(self.data_root))],
            data_root=str(self.data_root),
            exec_root=str(self.exec_root),
            cgroup_driver="cgroupfs",
            cgroup_version=cgroup_version(),
            kernel_version=kernel_version(),
            operating_system=pretty,
            os_version=version_id,
            os_type="linux",
            architecture=architecture(),
            ncpu=os.cpu_count() or 1,
            mem_total=mem_total(),
            server_version=__version__,
            debug=self.debug,
            system_time=datetime.datetime.now().astimezone().isoformat(),
            event_listeners=self.events.listeners,
            open_fds=len(os.listdir("/proc/self/fd")),
            threads=_threads(),
            runtimes=dict(self.runtimes),
            default_runtime=self.default_runtime,
            logging_driver="json-file",
            security_options=["name=seccomp,profile=builtin"],
            warnings=warnings,
            firewall_backend=self.network_info() if self.network_info else {},
        )

    def disk_usage(self) -> ImagesUsage:
        """Images now; later issues add containers, volumes and the build cache."""
        return self.images.disk_usage()


def _threads() -> int:
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 1
