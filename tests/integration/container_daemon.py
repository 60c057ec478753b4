"""A module-scoped sampand with busybox imported and the fork server warm, for container tests.

Start-up work (daemon, import, the first container that starts the fork server and creates
the /sampan cgroup parent) happens in the fixture, outside the per-test leak checks.  A test
module imports ``api`` and ``leak_check`` (which removes every container and volume after each
test, then checks for leaks); ``busybox_daemon`` is a daemon of the test's own, which the test
may stop or kill (live restore).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import Daemon, cleanup, new_daemon


class Api:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    def call(self, method: str, path: str, body: Any = None, status: int | None = None, timeout: float = 60) -> Any:
        r = self.d.request(method, path, body, timeout=timeout)
        if status is not None:
            assert r.status == status, f"{method} {path}: {r.status} {r.body[:300]!r}"
        if not r.body:
            return None
        try:
            return r.json()
        except ValueError:
            return r.body

    def status(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        r = self.d.request(method, path, body)
        try:
            return r.status, r.json() if r.body else None
        except ValueError:
            return r.status, r.body

    def create(self, cmd: list[str] | None = None, *, name: str = "", host: dict[str, Any] | None = None, **config: Any) -> str:
        body = {"Image": "busybox", **({"Cmd": cmd} if cmd is not None else {}), "HostConfig": host or {}, **config}
        query = f"?name={name}" if name else ""
        return str(self.call("POST", "/containers/create" + query, body, status=201)["Id"])

    def run(self, cmd: list[str], **kw: Any) -> str:
        cid = self.create(cmd, **kw)
        self.call("POST", f"/containers/{cid}/start", status=204)
        return cid

    def wait(self, cid: str, condition: str = "not-running") -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"/containers/{cid}/wait?condition={condition}", status=200)
        return result

    def inspect(self, cid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/containers/{cid}/json", status=200)
        return result

    def output(self, cid: str) -> str:
        """The container's stdout and stderr, from its json-file log."""
        path = self.inspect(cid)["LogPath"]
        try:
            return "".join(json.loads(line)["log"] for line in Path(path).read_text().splitlines())
        except FileNotFoundError:
            return ""

    def remove_all(self) -> None:
        for c in self.call("GET", "/containers/json?all=1", status=200):
            self.d.request("DELETE", f"/containers/{c['Id']}?force=1&v=1")
        for v in self.call("GET", "/volumes", status=200)["Volumes"] or []:
            self.d.request("DELETE", f"/volumes/{v['Name']}?force=1")

    def until(self, check: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)


def import_busybox(d: Daemon, tar: Path) -> None:
    with open(tar, "rb") as f:
        r = d.request("POST", '/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D', f.read(),
                      headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, r.body


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs_tar: Path) -> Iterator[Api]:
    d = new_daemon(tmp_path_factory.mktemp("containers"))
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        a = Api(d)
        warm = a.run(["true"])
        a.wait(warm)
        a.call("DELETE", f"/containers/{warm}", status=204)
        yield a
    finally:
        try:
            Api(d).remove_all()
        finally:
            cleanup(d)


@pytest.fixture
def busybox_daemon(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Daemon]:
    """A sampand of the test's own with busybox (live-restore tests, build tests): the test may
    stop or SIGKILL it (its shims outlive it).  Afterwards a stopped daemon is started again, so that
    it re-adopts and removes every container, then it is stopped and its directories removed."""
    d = new_daemon(tmp_path)
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        yield d
    finally:
        if d.proc is None or d.proc.poll() is not None:
            d.start()
        try:
            Api(d).remove_all()
        finally:
            cleanup(d)


def _container_cgroups() -> set[str]:
    out: set[str] = set()
    for ctrl in ("memory", "pids", "cpu,cpuacct", "freezer", "unified"):
        base = Path("/sys/fs/cgroup") / ctrl / "sampan"
        if base.is_dir():
            out |= {str(p) for p in base.iterdir() if p.is_dir()}
    return out


def _processes() -> set[int]:
    from tests.conftest import _descendants, _is_zombie

    return {p for p in _descendants(os.getpid()) if Path(f"/proc/{p}").exists() and not _is_zombie(p)}


@pytest.fixture(autouse=True)
def leak_check(api: Api) -> Iterator[None]:
    """Replaces the shared checker of tests/conftest.py in the modules that import it (with
    ``api``): every container and volume is removed after the test, then its processes
    (pytest's descendants: the daemon's fork server and shims are), mounts (under this
    session's directories) and container cgroups are checked.  Kept, not the shared one,
    because the shared one's cgroup, link, nft and netns checks are machine-wide: beside
    other sessions it reports (and removes!) their cgroups and veths, and it does not see a
    container's cgroup (``/sampan/<id>``) at all; this one checks exactly the cgroups of this
    daemon's containers.  Teardown waits up to 5 s for the asynchronous end of shims."""
    from tests.conftest import _mounts

    before = _processes(), _mounts(), _container_cgroups()
    yield
    api.remove_all()
    deadline = time.monotonic() + 5
    while True:
        leaks = {
            "processes": sorted(_processes() - before[0]),
            "mounts": sorted(_mounts() - before[1]),
            "cgroups": sorted(c for c in _container_cgroups() - before[2] if Path(c).name in _our_ids(api)),
        }
        leaks = {k: v for k, v in leaks.items() if v}
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if leaks:
        pytest.fail(f"test left behind: {leaks}", pytrace=False)


_SEEN: set[str] = set()


def _our_ids(api: Api) -> set[str]:
    """Container IDs this daemon ever reported (events history), to scope the cgroup check."""
    r = api.d.request("GET", f"/events?since=0&until={int(time.time()) + 1}")
    for line in r.body.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("Type") == "container":
            _SEEN.add(str(event.get("id") or event.get("Actor", {}).get("ID", "")))
    return _SEEN
