"""A container's files from outside: ``docker diff``, ``docker cp`` (both ways) and
``docker export``.

Paths inside the container are resolved *in its root* with ``openat2(RESOLVE_IN_ROOT)``: a
symlink such as ``/etc -> /`` or ``../../..`` resolves as it would inside the container and
never reaches the host.  ``cp`` into a container extracts with the storage layer's safe
extractor (``storage.archive.apply_layer``), into the directory so resolved, so an entry can
neither climb out (``../``), nor write through a symlink, nor replace the directory itself.

What is read: the container's root filesystem as the daemon mounts it
(``<bundle>/rootfs``: the overlay of image layers and the container's upper dir).  Volumes
and bind mounts inside the container are not part of it (as with ``docker export``).

``changes`` reads the snapshot's upper dir: overlay whiteouts (0/0 char devices) are
deletions, entries present in a lower layer are modifications, the rest additions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sampan import errors
from sampan._sys.openat2 import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
from sampan.storage.archive import apply_layer, write_tree

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService

MODIFIED, ADDED, DELETED = 0, 1, 2


@dataclass
class PathStat:
    name: str
    size: int
    mode: int  # Go's os.FileMode bits, as Docker's header carries them
    mtime: str
    link_target: str

    def header(self) -> str:
        """The ``X-Docker-Container-Path-Stat`` value: base64 of the JSON."""
        raw = {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
               "linkTarget": self.link_target}
        return base64.b64encode(json.dumps(raw).encode()).decode()


# Go's os.FileMode type bits
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_mode(st_mode: int) -> int:
    m = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        m |= _GO_DIR
    elif stat.S_ISLNK(st_mode):
        m |= _GO_SYMLINK
    elif stat.S_ISFIFO(st_mode):
        m |= _GO_PIPE
    elif stat.S_ISSOCK(st_mode):
        m |= _GO_SOCKET
    elif stat.S_ISCHR(st_mode):
        m |= _GO_DEVICE | _GO_CHARDEV
    elif stat.S_ISBLK(st_mode):
        m |= _GO_DEVICE
    if st_mode & stat.S_ISUID:
        m |= _GO_SETUID
    if st_mode & stat.S_ISGID:
        m |= _GO_SETGID
    if st_mode & stat.S_ISVTX:
        m |= _GO_STICKY
    return m


def _rfc3339(ts: float) -> str:
    import time

    ns = int(ts * 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def _clean(path: str) -> str:
    if not path:
        raise errors.InvalidArgument("path is required")
    return os.path.normpath("/" + path.lstrip("/"))


class ContainerFiles:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers

    def _root(self, name: str, clean: str = "/") -> tuple[int, str]:
        """An fd of the directory that holds ``clean`` (the root filesystem, or the volume or
        bind mount it lies in: those are not part of the rootfs) and the path inside it."""
        c = self.containers.get(name)
        root, rel = "", clean
        best = ""
        for mp in c.mount_points:
            dest = mp.destination.rstrip("/") or "/"
            if mp.type not in ("volume", "bind") or not mp.source or len(dest) <= len(best):
                continue
            if (clean == dest or clean.startswith(dest + "/")) and os.path.isdir(mp.source):
                best, root, rel = dest, mp.source, clean[len(dest):] or "/"
        if not root:
            root = self.containers.rootfs_path(name)
        try:
            return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), rel
        except OSError as exc:
            raise errors.from_oserror(exc, f"open the root filesystem of {name}") from exc

    @contextlib.contextmanager
    def _resolved(self, name: str, path: str, *, follow_last: bool = False) -> Iterator[tuple[int, str, str]]:
        """(fd of the parent directory, base name, clean path) of ``path`` in the container.
        The parent is resolved in the root; the last component is not followed."""
        clean = _clean(path)
        rootfd, rel = self._root(name, clean)
        try:
            parent, base = os.path.split(rel)
            try:
                pfd = openat2(rootfd, parent.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY,
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            except OSError as exc:
                if exc.errno in (2, 20):
                    raise errors.NotFound(f"Could not find the file {path} in container {name}") from None
                raise errors.from_oserror(exc, f"resolve {path} in container {name}") from exc
            try:
                yield pfd, base or ".", clean
            finally:
                os.close(pfd)
        finally:
            os.close(rootfd)

    def stat(self, name: str, path: str) -> PathStat:
        with self._resolved(name, path) as (pfd, base, clean):
            try:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise errors.NotFound(f"Could not find the file {path} in container {name}") from None
            target = ""
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(base, dir_fd=pfd)
            shown = os.path.basename(clean) or "/"
            return PathStat(shown, st.st_size, go_mode(st.st_mode), _rfc3339(st.st_mtime), target)

    def get_archive(self, name: str, path: str, out: BinaryIO) -> None:
        """Write a tar of ``path`` (a file or a directory tree, named by its base name) to
        ``out``.  A trailing ``/.`` (``docker cp c:/dir/. x``) archives the directory's
        contents under ``.``; the CLI renames entries itself."""
        with self._resolved(name, path) as (pfd, base, clean):
            try:
                os.stat(base, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise errors.NotFound(f"Could not find the file {path} in container {name}") from None
            arcname = os.path.basename(clean) or "."
            if path.endswith("/.") or clean == "/":
                arcname = "."
            try:
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    _add(tar, pfd, base, arcname)
            except OSError as exc:
                raise errors.from_oserror(exc, f"archive {path} of container {name}") from exc

    def put_archive(self, name: str, path: str, src: BinaryIO, *, no_overwrite_dir_non_dir: bool = False) -> None:
        """Extract the tar ``src`` into the directory ``path`` of the container, safely."""
        clean = _clean(path)
        rootfd, rel = self._root(name, clean)
        try:
            try:
                dfd = openat2(rootfd, rel.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY,
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            except OSError as exc:
                if exc.errno == 2:
                    raise errors.NotFound(f"Could not find the file {path} in container {name}") from None
                if exc.errno == 20:
                    raise errors.InvalidArgument(f"extraction point is not a directory: {path}") from None
                raise errors.from_oserror(exc, f"resolve {path} in container {name}") from exc
            try:
                apply_layer(src, Path(f"/proc/self/fd/{dfd}"), whiteouts="delete",
                            where=f"archive for {name}:{clean}")
            finally:
                os.close(dfd)
        finally:
            os.close(rootfd)

    def export(self, name: str, out: BinaryIO) -> None:
        """The container's whole root filesystem as a tar (``docker export``)."""
        root = self.containers.rootfs_path(name)
        write_tree(Path(root), out)

    def changes(self, name: str) -> list[tuple[int, str]]:
        """``docker diff``: (kind, path) sorted by path."""
        c = self.containers.get(name)
        sn = self.containers.store.snapshotter
        upper = sn.upper_dir(c.id)
        lowers: list[str] = []
        for m in sn.mounts(c.id):
            for opt in m.options:
                if opt.startswith("lowerdir="):
                    lowers += opt[len("lowerdir="):].split(":")
        if sn.whiteouts != "overlay":
            raise errors.NotImplementedFeature("container changes need the overlay storage driver")
        out: list[tuple[int, str]] = []

        def in_lower(rel: str) -> bool:
            return any(os.path.lexists(os.path.join(lo, rel)) for lo in lowers)

        def walk(rel: str) -> None:
            d = os.path.join(str(upper), rel)
            try:
                names = sorted(os.listdir(d))
            except (NotADirectoryError, FileNotFoundError):
                return
            for n in names:
                r = os.path.join(rel, n) if rel else n
                full = os.path.join(d, n)
                st = os.lstat(full)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out.append((DELETED, "/" + r))
                    continue
                existed = in_lower(r)
                out.append((MODIFIED if existed else ADDED, "/" + r))
                if stat.S_ISDIR(st.st_mode):
                    walk(r)

        walk("")
        return sorted(out, key=lambda x: x[1])


def _add(tar: tarfile.TarFile, dfd: int, name: str, arcname: str) -> None:
    """Add ``name`` (relative to the directory fd ``dfd``) and, for a directory, its tree;
    every lookup is relative to an fd and never follows a symlink."""
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            for child in sorted(os.listdir(sub)):
                _add(tar, sub, child, f"{arcname}/{child}")
        finally:
            os.close(sub)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        with os.fdopen(fd, "rb") as f:
            tar.addfile(info, f)
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(name, dir_fd=dfd)
        tar.addfile(info)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    # sockets are skipped, as Docker's archiver does
