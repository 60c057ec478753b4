"""Safe, streaming application of one layer tar to a directory.

Every entry is parsed and checked before any of its bytes reach the disk, and every path is
resolved with ``openat2`` relative to an fd of the destination, so nothing is ever written,
linked or removed outside it.  The rules (Docker's, except where noted):

====================================  ==================================================
entry                                  what happens
====================================  ==================================================
absolute name ``/etc/x``               neutralized: the leading ``/`` is dropped (Docker)
``..`` climbing above the root         refused (UnsafeArchiveEntry naming the entry)
write through a symlink in the path    resolved inside the root (``RESOLVE_IN_ROOT``, the
                                       same as Docker's chrooted unpacker): an absolute
                                       link or a chain of links lands inside the layer;
                                       a parent that cannot be resolved there is refused
symlink entry whose target is absolute kept as is: the extractor resolves every path inside
or climbs above the root               the root, and so does the container (its ``/``); a
                                       link can never lead a write outside.  (Docker
                                       refuses relative targets that climb lexically; the
                                       busybox image made by scripts/ has such a link.)
hard link to a path outside / missing  ``..`` refused; otherwise resolved inside the root and
                                       refused if the target is not in the layer
whiteout / opaque whiteout             refused if the name climbs out or if any component
                                       of its directory is a symlink (no legit layer has it)
character / block device               skipped (never created; the runtime provides /dev;
                                       a 0/0 char device would forge an overlay whiteout)
setuid / setgid / sticky bits          kept, as Docker does (the data root is 0700)
PAX or GNU long-name header > 1 MiB    refused
path deeper than 512 directories       refused
duplicate entries                      the last one wins (the earlier one is replaced)
``trusted.overlay.*`` xattrs           ignored (they would forge overlay metadata)
====================================  ==================================================
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from typing import BinaryIO

from sampan._sys.openat2 import (
    RESOLVE_BENEATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    open_dir_in_root,
    openat2,
)
from sampan.errors import InvalidArgument, SampanError, UnsafeArchiveEntry, from_oserror
from sampan.storage import tarformat as tf
from sampan.storage.snapshots import WhiteoutMode

BUFSIZE = 1 << 20
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
WH_META = ".wh..wh."
_MAX_ID = (1 << 32) - 1
#: Deepest path accepted: far beyond real images (deep node_modules trees stay under 100),
#: and shallow enough for the recursive tree removal of whiteouts.
MAX_DEPTH = 512
_MAX_TIME = 1 << 62


class Source:
    """The uncompressed tar stream: exact reads, sha256 and byte count on the way."""

    def __init__(self, f: BinaryIO, where: str, what: str) -> None:
        self._f = f
        self._where = where
        self._what = what
        self.hash = hashlib.sha256()
        self.size = 0
        self._buf = bytearray(BUFSIZE)
        self._view = memoryview(self._buf)

    def _readinto(self, mv: memoryview) -> int:
        try:
            n = self._f.readinto(mv)  # type: ignore[attr-defined]
        except SampanError:
            raise
        # the decompressor's own error types: EOFError, BadGzipFile, IsalError, ZstdError...
        except Exception as exc:
            raise InvalidArgument(
                f"{self._where}: corrupt or truncated {self._what}: {exc}"
            ) from None
        if n:
            self.hash.update(mv[:n])
            self.size += n
        return n or 0

    def fill(self, mv: memoryview, entry: str) -> None:
        """Fill ``mv`` completely or fail naming ``entry``."""
        got = 0
        while got < len(mv):
            n = self._readinto(mv[got:])
            if n == 0:
                raise InvalidArgument(
                    f"{self._where}: truncated layer: unexpected end of data in {entry!r}"
                )
            got += n

    def read(self, n: int, entry: str) -> bytes:
        buf = bytearray(n)
        self.fill(memoryview(buf), entry)
        return bytes(buf)

    def read_block(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of stream."""
        mv = self._view[: tf.BLOCK]
        n = self._readinto(mv)
        if n == 0:
            return None
        if n < tf.BLOCK:
            self.fill(mv[n:], "<header>")
        return bytes(mv)

    def copy_to(self, fd: int | None, size: int, entry: str) -> None:
        """Pass ``size`` bytes (plus padding) to ``fd``, or skip them when ``fd`` is None."""
        total = size + (-size % tf.BLOCK)
        remaining = total
        while remaining:
            chunk = min(remaining, BUFSIZE)
            mv = self._view[:chunk]
            self.fill(mv, entry)
            if fd is not None:
                data = mv[: max(0, min(chunk, size - (total - remaining)))]
                while data:
                    data = data[os.write(fd, data) :]
            remaining -= chunk

    def drain(self) -> None:
        while self._readinto(self._view):
            pass


def entries(src: Source, where: str) -> tf.TarEntry | None:
    """Read headers up to the next real member (merging PAX / GNU long-name headers)."""
    pax: dict[str, bytes] = {}
    longname: str | None = None
    longlink: str | None = None
    meta_bytes = 0  # all the extension headers of one member together stay under the limit
    while True:
        block = src.read_block()
        if block is None or block == b"\0" * tf.BLOCK:
            return None
        entry = tf.parse_header(block, where)
        if entry.type in (tf.PAX, tf.PAX_GLOBAL, tf.GNU_LONGNAME, tf.GNU_LONGLINK):
            meta_bytes += entry.size
            if meta_bytes > tf.MAX_META:
                raise UnsafeArchiveEntry(
                    longname or entry.name,
                    f"{meta_bytes} bytes of {'PAX' if entry.type in 'xg' else 'GNU long name'}"
                    f" headers exceed the {tf.MAX_META}-byte limit",
                    where=where,
                )
            data = src.read(entry.size + (-entry.size % tf.BLOCK), entry.name)[: entry.size]
            if entry.type == tf.PAX:
                pax.update(tf.parse_pax(data, entry.name, where))
            elif entry.type == tf.GNU_LONGNAME:
                longname = tf.decode_name(data.split(b"\0", 1)[0])
            elif entry.type == tf.GNU_LONGLINK:
                longlink = tf.decode_name(data.split(b"\0", 1)[0])
            else:
                tf.parse_pax(data, entry.name, where)  # validated, then ignored (as Docker)
            continue
        if longname is not None:
            entry.name = longname
        if longlink is not None:
            entry.linkname = longlink
        tf.apply_pax(entry, pax, where)
        return entry


class Extractor:
    """Applies entries under ``rootfd``; see the module docstring for the rules."""

    def __init__(self, rootfd: int, whiteouts: WhiteoutMode, where: str) -> None:
        self.rootfd = rootfd
        self.whiteouts = whiteouts
        self.where = where
        self.unpacked: set[str] = set()  # paths this layer made, with their ancestors
        self.dir_times: list[tuple[str, int]] = []
        self._cache: tuple[str, int] | None = None

    # ------------------------------------------------------------ resolution

    def _refuse(self, entry: str, reason: str) -> UnsafeArchiveEntry:
        return UnsafeArchiveEntry(entry, reason, where=self.where)

    def _forget(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def close(self) -> None:
        self._forget()

    def _try_open(self, path: str, entry: str, no_symlinks: bool) -> int | None:
        """An O_PATH fd of directory ``path`` inside the root, or None if it does not exist."""
        try:
            return open_dir_in_root(self.rootfd, path, no_symlinks=no_symlinks)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EXDEV):
                raise self._refuse(entry, f"path {path!r} goes through a symlink") from None
            if exc.errno == errno.ENOTDIR:
                raise self._refuse(entry, f"{path!r} is not a directory") from None
            if exc.errno != errno.ENOENT:
                raise from_oserror(exc, f"{self.where}: resolving {path!r}") from None
        return None

    def _open_dir(self, path: str, entry: str, *, create: bool, no_symlinks: bool) -> int | None:
        """An O_PATH fd of directory ``path`` (inside the root); None if absent and not ``create``.

        With ``create``, missing directories are made (0755, as Docker) from the deepest
        existing ancestor down, each resolved again from the root.
        """
        fd = self._try_open(path, entry, no_symlinks)
        if fd is not None or not create:
            return fd
        missing = [path]
        while True:
            parent = missing[-1].rpartition("/")[0]
            pfd = self._try_open(parent, entry, no_symlinks)
            if pfd is not None:
                break
            missing.append(parent)
        for sub in reversed(missing):
            try:
                os.mkdir(sub.rpartition("/")[2], 0o755, dir_fd=pfd)
            except FileExistsError:
                pass
            finally:
                os.close(pfd)
            self._mark(sub)
            opened = self._try_open(sub, entry, no_symlinks)
            if opened is None:
                raise self._refuse(entry, f"directory {sub!r} cannot be made inside the layer")
            pfd = opened
        return pfd

    def _mark(self, path: str) -> None:
        """Record ``path`` and its ancestors as this layer's (delete-mode opaque dirs keep them)."""
        while path and path not in self.unpacked:
            self.unpacked.add(path)
            path = path.rpartition("/")[0]

    def _parent(self, parent: str, entry: str) -> int:
        if self._cache is not None and self._cache[0] == parent:
            return self._cache[1]
        fd = self._open_dir(parent, entry, create=True, no_symlinks=False)
        assert fd is not None
        self._forget()
        self._cache = (parent, fd)
        return fd

    def _remove(self, pfd: int, base: str, st: os.stat_result, path: str) -> None:
        """Remove ``base`` (at ``path``) below ``pfd``; never follows a symlink."""
        if stat.S_ISDIR(st.st_mode):
            cached = self._cache[0] if self._cache is not None else None
            if cached is not None and (cached == path or cached.startswith(path + "/")):
                self._forget()
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    @staticmethod
    def _lstat(pfd: int, base: str) -> os.stat_result | None:
        try:
            return os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------ entries

    def apply(self, e: tf.TarEntry, src: Source) -> None:
        if "\0" in e.name or "\0" in e.linkname or any("\0" in k for k in e.xattrs):
            raise self._refuse(e.name, "name contains a NUL byte")
        if not (0 <= e.uid < _MAX_ID and 0 <= e.gid < _MAX_ID):
            raise self._refuse(e.name, f"uid/gid {e.uid}/{e.gid} out of range")
        if not -_MAX_TIME < e.mtime_ns < _MAX_TIME:
            raise self._refuse(e.name, "modification time out of range")
        if e.type == tf.AREG and e.name.endswith("/"):
            e.type = tf.DIR  # pre-POSIX tars mark directories by the slash alone (as Go reads them)
        path = tf.clean_path(e.name)
        if path is None:
            raise self._refuse(e.name, "path climbs out of the layer with '..'")
        if path.count("/") >= MAX_DEPTH:
            raise self._refuse(e.name, f"path is deeper than {MAX_DEPTH} directories")
        parent, base = tf.split_path(path)
        if base.startswith(WH_PREFIX):  # whatever its type, as Docker
            src.copy_to(None, e.size, e.name)
            self._whiteout(e, parent, base)
            return
        if e.type in (tf.CHR, tf.BLK):
            src.copy_to(None, e.size, e.name)  # skipped: see the module docstring
            return
        if e.type not in (tf.REG, tf.AREG, tf.CONT, tf.LNK, tf.SYM, tf.DIR, tf.FIFO):
            raise self._refuse(e.name, f"unsupported entry type {e.type!r}")
        if path == "":
            if e.type != tf.DIR:
                raise self._refuse(e.name, "entry would replace the layer root")
            self._dir_meta(self.rootfd, ".", e, "")
            src.copy_to(None, e.size, e.name)
            return
        pfd = self._parent(parent, e.name)
        existing = self._lstat(pfd, base)
        if existing is not None and not (stat.S_ISDIR(existing.st_mode) and e.type == tf.DIR):
            self._remove(pfd, base, existing, path)
        self._mark(path)
        if e.type in (tf.REG, tf.AREG, tf.CONT):
            self._file(pfd, base, e, src)
            return
        src.copy_to(None, e.size, e.name)
        if e.type == tf.DIR:
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            self._dir_meta(pfd, base, e, path)
        elif e.type == tf.SYM:
            os.symlink(e.linkname, base, dir_fd=pfd)
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            self._xattrs_path(pfd, base, e)
            os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif e.type == tf.LNK:
            self._hardlink(pfd, base, e)
        elif e.type == tf.FIFO:
            os.mkfifo(base, 0o600, dir_fd=pfd)
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(base, e.mode, dir_fd=pfd)
            self._xattrs_path(pfd, base, e)
            os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _file(self, pfd: int, base: str, e: tf.TarEntry, src: Source) -> None:
        fd = os.open(
            base,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=pfd,
        )
        try:
            src.copy_to(fd, e.size, e.name)
            os.fchown(fd, e.uid, e.gid)
            os.fchmod(fd, e.mode)
            self._xattrs_fd(fd, e)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _dir_meta(self, pfd: int, base: str, e: tf.TarEntry, path: str) -> None:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.fchown(fd, e.uid, e.gid)
            os.fchmod(fd, e.mode)
            self._xattrs_fd(fd, e)
        finally:
            os.close(fd)
        self.dir_times.append((path, e.mtime_ns))

    def _hardlink(self, pfd: int, base: str, e: tf.TarEntry) -> None:
        target = tf.clean_path(e.linkname)
        if target is None:
            raise self._refuse(e.name, f"hard link target {e.linkname!r} climbs out of the layer")
        if target == "":
            raise self._refuse(e.name, "hard link to the layer root")
        tparent, tbase = tf.split_path(target)
        tfd = self._open_dir(tparent, e.name, create=False, no_symlinks=False)
        if tfd is None:
            raise self._refuse(e.name, f"hard link target {e.linkname!r} is not in the layer")
        try:
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EPERM, errno.EXDEV):
                raise self._refuse(
                    e.name, f"hard link target {e.linkname!r} is not a file in the layer"
                ) from None
            raise
        finally:
            os.close(tfd)

    def _xattr_items(self, e: tf.TarEntry) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in sorted(e.xattrs.items()) if not k.startswith("trusted.overlay.")]

    def _xattrs_fd(self, fd: int, e: tf.TarEntry) -> None:
        for key, value in self._xattr_items(e):
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def _xattrs_path(self, pfd: int, base: str, e: tf.TarEntry) -> None:
        for key, value in self._xattr_items(e):
            try:
                os.setxattr(f"/proc/self/fd/{pfd}/{base}", key, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    # ------------------------------------------------------------ whiteouts

    def _whiteout(self, e: tf.TarEntry, parent: str, base: str) -> None:
        overlay = self.whiteouts == "overlay"
        dfd = self._open_dir(parent, e.name, create=overlay, no_symlinks=True)
        if dfd is None:
            return  # delete mode: nothing below to hide
        self._forget()
        try:
            if base == WH_OPAQUE:
                self._opaque(dfd, parent, e)
            elif base.startswith(WH_META):
                return  # aufs metadata (.wh..wh.plnk etc.): ignored, as Docker does
            else:
                name = base[len(WH_PREFIX) :]
                if name in ("", ".", ".."):
                    raise self._refuse(e.name, "whiteout of an invalid name")
                existing = self._lstat(dfd, name)
                if existing is not None:
                    self._remove(dfd, name, existing, tf.clean_path(parent + "/" + name) or name)
                if overlay:
                    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
                    os.chown(name, e.uid, e.gid, dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(dfd)

    def _opaque(self, dfd: int, parent: str, e: tf.TarEntry) -> None:
        fd = openat2(dfd, ".", os.O_RDONLY | os.O_DIRECTORY, RESOLVE_BENEATH)
        try:
            if self.whiteouts == "overlay":
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
                return
            self._clear(fd, parent + "/" if parent else "", self.unpacked)
        finally:
            os.close(fd)

    def _clear(self, fd: int, prefix: str, kept: set[str]) -> None:
        """Delete mode: remove what the lower layers put below ``fd`` and this layer did not."""
        for name in sorted(os.listdir(fd)):
            st = self._lstat(fd, name)
            if st is None or (prefix + name in kept and not stat.S_ISDIR(st.st_mode)):
                continue
            if prefix + name not in kept:
                self._remove(fd, name, st, prefix + name)
                continue
            sub = openat2(
                fd, name, os.O_RDONLY | os.O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
            )
            try:
                self._clear(sub, prefix + name + "/", kept)
            finally:
                os.close(sub)

    def finish(self) -> None:
        """Set directory times last (creating children changed them), deepest first."""
        self._forget()
        for path, mtime_ns in reversed(self.dir_times):
            try:
                fd = openat2(
                    self.rootfd,
                    path or ".",
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                )
            except OSError:
                continue  # removed later in the layer
            try:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
