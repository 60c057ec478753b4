"""Named network namespaces: bind mounts of an nsfs file under ``<exec-root>/netns/<id>``.

Lifecycle::

    path = netns.create(exec_root / "netns" / endpoint_id)   # a new, empty netns (only ``lo``)
    with netns.entered(path):          # this thread (and processes it spawns) run inside
        subprocess.run(["ip", "-batch", "-"], ...)
    netns.remove(path)                 # unmount + unlink; the kernel frees it with its last user

Choice: the files live under sampan's exec root, not ``/run/netns``, so that sampan never
mixes its namespaces with ``ip netns``'s (and parallel daemons or tests never collide).
iproute2 addresses a namespace by a *path* in ``link ... netns PATH`` but ``ip -n`` takes only
names under ``/run/netns``, so commands that must run inside are run by a thread that has
``setns(2)``-ed into the namespace (``entered``); children spawned by that thread inherit it.
Creation needs no process either: the calling thread ``unshare(CLONE_NEWNET)``s, bind-mounts
``/proc/thread-self/ns/net`` on the file and ``setns``-es back (about 0.2 ms in all).

The OCI spec joins the namespace by path (``linux.namespaces[{type: network, path}]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sampan import errors
from sampan._sys import mount as sysmount
from sampan._sys import ns as sysns

_SELF = "/proc/thread-self/ns/net"


@contextmanager
def entered(path: Path | str) -> Iterator[None]:
    """Run the block with this thread inside the network namespace at ``path``."""
    own = os.open(_SELF, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(str(path), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise errors.from_oserror(exc, f"open network namespace {path}") from exc
        try:
            sysns.setns(target, sysns.CLONE_NEWNET)
        except OSError as exc:
            raise errors.from_oserror(exc, f"enter network namespace {path}") from exc
        finally:
            os.close(target)
        try:
            yield
        finally:
            sysns.setns(own, sysns.CLONE_NEWNET)  # must not fail: same thread, own namespace
    finally:
        os.close(own)


def create(path: Path) -> Path:
    """Make a new network namespace and pin it at ``path`` (which must not exist)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
    except OSError as exc:
        raise errors.from_oserror(exc, f"create network namespace file {path}") from exc
    own = os.open(_SELF, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            sysns.unshare(sysns.CLONE_NEWNET)
            try:
                sysmount.mount(_SELF, str(path), flags=sysmount.MS_BIND)
            finally:
                sysns.setns(own, sysns.CLONE_NEWNET)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise errors.from_oserror(exc, f"create network namespace {path}") from exc
    finally:
        os.close(own)
    return path


def is_netns(path: Path) -> bool:
    """Whether ``path`` is a pinned network namespace (an nsfs bind mount)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev or _is_mountpoint(path)
    except OSError:
        return False


def _is_mountpoint(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def remove(path: Path) -> None:
    """Unpin and delete ``path``; a missing namespace is not an error."""
    try:
        sysmount.umount(str(path), sysmount.MNT_DETACH)
    except OSError:
        pass  # not mounted (half-created or already removed)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise errors.from_oserror(exc, f"remove network namespace {path}") from exc


def listed(directory: Path) -> list[Path]:
    """The namespace files under ``directory`` (reconcile at startup)."""
    try:
        return sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return []
