"""Fixtures every sampan test may use.

* ``data_root``: a fresh data root (``--data-root``) for this test only.
* ``names``: per-test names for a socket, bridge, netns, nft table, subnet and free TCP ports,
  so that tests never collide with each other, with the host or with a peer engine.
* the leak checker: every test marked ``root`` fails if it leaves behind a mount, a process, a
  cgroup, a network link, a netns or an nftables table that was not there before it ran (and
  the checker removes what it found, so one leak does not cascade into other tests).  While
  another test session runs on the machine (each holds a lock file in /tmp/sampan-pytest-sessions),
  the kernel objects that cannot be traced to a test (cgroups, links, netns, nft tables) count
  only when their names carry the test's ``names`` tag: never delete another session's table.
* ``base_images``: the busybox (and, when asked, Debian) rootfs tars, built once per test run
  into a cache outside the clone (``$SAMPAN_TEST_CACHE``, default /var/tmp/sampan-test-cache).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SAMPAN_TEST_CACHE", "/var/tmp/sampan-test-cache"))
IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_root = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip_root)


# ---------------------------------------------------------------- per-test names


@dataclass(frozen=True)
class Names:
    """Names unique to one test (derived from its node id and pid)."""

    tag: str  # 8 hex characters

    @property
    def bridge(self) -> str:
        return f"sp-br{self.tag[:8]}"  # <= 15 characters (IFNAMSIZ)

    @property
    def netns(self) -> str:
        return f"sp-ns-{self.tag}"

    @property
    def nft_table(self) -> str:
        return f"sampan_t{self.tag}"

    @property
    def subnet(self) -> str:
        """A /24 in 10.231.0.0/16 .. 10.239.0.0/16, picked by the tag."""
        n = int(self.tag, 16)
        return f"10.{231 + n % 9}.{(n >> 4) % 256}.0/24"

    def free_port(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Names:
    tag = hashlib.sha256(f"{request.node.nodeid}:{os.getpid()}".encode()).hexdigest()[:8]
    return Names(tag)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    return root


# ---------------------------------------------------------------- leak checker


#: Where a test's mounts live: this session's pytest temp dir (set at session start), the short
#: /tmp/sp-* dirs of tests/daemon_fixture.py, and sampan's default roots.  Mounts elsewhere
#: (another pytest session's, a peer engine's storage) are not this test's to report or undo.
_MOUNT_ROOTS: list[str] = ["/tmp/sp-", "/run/sampan", "/var/lib/sampan"]


@pytest.fixture(scope="session", autouse=True)
def _scope_mounts_to_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    _MOUNT_ROOTS.append(str(tmp_path_factory.getbasetemp()) + "/")


def _mounts() -> set[str]:
    out = set()
    roots = tuple(_MOUNT_ROOTS)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(roots):
                out.add(point)
    return out


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in out:
                out.add(child)
                stack.append(child)
    return out


def _marked_processes(marker: bytes) -> set[int]:
    """Processes whose environment carries this test's marker: everything the test started,
    even daemons that left its process tree (setsid, double fork, a fork server's children)."""
    out = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if marker in env.split(b"\0"):
            out.add(int(entry))
    return out


def _cgroups() -> set[str]:
    """cgroup directories with "sampan" in their name, in every mounted hierarchy.

    os.walk ignores directories that vanish while it walks (other processes' cgroups come and go).
    """
    out = set()
    base = "/sys/fs/cgroup"
    if not os.path.isdir(base):
        return out
    for top, dirs, _files in os.walk(base):
        for d in dirs:
            if "sampan" in d:
                out.add(os.path.join(top, d))
    return out


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _links() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in _run("ip", "-o", "link").splitlines()}


def _nft_tables() -> set[str]:
    return {line.strip() for line in _run("nft", "list", "tables").splitlines() if line.strip()}


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


@dataclass
class _Snapshot:
    mounts: set[str]
    procs: set[int]
    cgroups: set[str]
    links: set[str]
    nft: set[str]
    netns: set[str]

    @classmethod
    def take(cls, marker: bytes) -> _Snapshot:
        return cls(
            _mounts(),
            _descendants(os.getpid()) | _marked_processes(marker),
            _cgroups(),
            _links(),
            _nft_tables(),
            _netns(),
        )


def _cleanup(leaks: dict[str, list[str]]) -> None:
    for pid in leaks.get("processes", []):
        try:
            os.kill(int(pid.split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    for mnt in sorted(leaks.get("mounts", []), key=len, reverse=True):
        _run("umount", "-l", mnt)
    for cg in sorted(leaks.get("cgroups", []), key=len, reverse=True):
        try:
            os.rmdir(cg)
        except OSError:
            pass
    for link in leaks.get("links", []):
        _run("ip", "link", "del", link)
    for table in leaks.get("nft tables", []):
        _run("nft", "delete", "table", *table.split()[1:])
    for ns in leaks.get("netns", []):
        _run("ip", "netns", "del", ns)


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        return f"{pid} {cmd[:120]}"
    except OSError:
        return str(pid)


SESSIONS = Path("/tmp/sampan-pytest-sessions")
_session_lock: list[object] = []  # this session's locked file, held open until exit


def pytest_sessionstart(session: pytest.Session) -> None:
    if not IS_ROOT:
        return
    SESSIONS.mkdir(exist_ok=True)
    f = open(SESSIONS / f"{os.getpid()}-{os.urandom(4).hex()}", "w")  # noqa: SIM115 - held until exit
    fcntl.flock(f, fcntl.LOCK_EX)
    _session_lock.append(f)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for f in _session_lock:
        Path(getattr(f, "name", "")).unlink(missing_ok=True)


def _other_sessions_running() -> bool:
    """Whether another pytest session (any pid namespace) holds its lock file."""
    own = getattr(_session_lock[0], "name", "") if _session_lock else ""
    try:
        entries = list(SESSIONS.iterdir())
    except FileNotFoundError:
        return False
    for path in entries:
        if str(path) == own:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            path.unlink(missing_ok=True)  # a session that ended without removing it
        finally:
            os.close(fd)
    return False


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    if "root" not in request.node.keywords or not IS_ROOT:
        yield
        return
    # Children inherit this variable, so the checker finds what the test started (and only
    # that: tests of other runs on the same machine are left alone).
    tag = hashlib.sha256(f"{request.node.nodeid}:{os.getpid()}".encode()).hexdigest()[:12]
    marker = f"SAMPAN_TEST_ID={tag}"
    previous = os.environ.get("SAMPAN_TEST_ID")
    os.environ["SAMPAN_TEST_ID"] = tag
    before = _Snapshot.take(marker.encode())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SAMPAN_TEST_ID", None)
        else:
            os.environ["SAMPAN_TEST_ID"] = previous
    after = _Snapshot.take(marker.encode())
    # processes that are already exiting do not count
    alive = {p for p in after.procs - before.procs if Path(f"/proc/{p}").exists()}
    alive = {p for p in alive if not _is_zombie(p)}
    leaks = {
        "mounts": sorted(after.mounts - before.mounts),
        "processes": [_describe(p) for p in sorted(alive)],
        "cgroups": sorted(after.cgroups - before.cgroups),
        "links": sorted(after.links - before.links),
        "nft tables": sorted(after.nft - before.nft),
        "netns": sorted(after.netns - before.netns),
    }
    if _other_sessions_running():  # only what carries this test's names (see the module docstring)
        for kind in ("cgroups", "links", "nft tables", "netns"):
            leaks[kind] = [name for name in leaks[kind] if tag[:8] in name]
    leaks = {k: v for k, v in leaks.items() if v}
    if leaks:
        _cleanup(leaks)
        pytest.fail(f"test left behind: {leaks}", pytrace=False)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------- base images


def _build_cached(script: str, output: Path) -> Path:
    if not output.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", str(REPO / "scripts" / script), str(output)], check=True)
    return output


@pytest.fixture(scope="session")
def busybox_rootfs_tar() -> Path:
    """A rootfs tar of busybox from Debian's busybox-static (``sampan import`` takes it)."""
    return _build_cached("mkimage-busybox.sh", CACHE / "busybox-rootfs.tar")


@pytest.fixture(scope="session")
def debian_rootfs_tar() -> Path:
    """A rootfs tar of Debian bookworm (debootstrap minbase); slow the first time."""
    return _build_cached("mkimage-debian.sh", CACHE / "debian-bookworm-rootfs.tar")


PYTHON = sys.executable
