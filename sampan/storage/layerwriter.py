"""LayerWriter: the one deterministic writer of layer tars.

``write_tree`` (export, import re-normalization), ``write_diff`` (commit of a container or a
build step) and ``save`` all produce layer bytes through this class, so that the same tree
always gives the same ``diff_id``:

* entries must be added in sorted order (by path components, as bytes; a directory's
  ``.wh..wh..opq`` marker sorts right after the directory); the writer checks it;
* headers are normalized: names relative without ``./``, directories end in ``/``, numeric
  uid/gid only (no user or group names), permission bits only (``mode & 0o7777``), integer
  seconds, ustar fields whenever they fit and a PAX header only for what does not (long names,
  big numbers, xattrs), PAX records sorted, no atime/ctime;
* with ``source_date_epoch`` every mtime later than it is clamped to it
  (reproducible-builds.org's ``SOURCE_DATE_EPOCH``);
* the archive ends with two zero blocks, as Go's archive/tar (and so Docker) writes.

Use::

    w = LayerWriter(out, source_date_epoch=0)
    w.add(TarEntry("etc", tarformat.DIR, mode=0o755, mtime_ns=...))
    w.add(TarEntry("etc/hosts", tarformat.REG, mode=0o644, size=n, mtime_ns=...), data_fd)
    layer = w.close()          # AppliedLayer(diff_id, size); ``out`` stays open
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from sampan.errors import Internal, InvalidArgument
from sampan.storage import tarformat as tf

OPAQUE = ".wh..wh..opq"
_BUF = 1 << 20


def _key(name: str) -> tuple[bytes, ...]:
    parts = tuple(tf.encode_name(p) for p in name.split("/"))
    if parts[-1] == tf.encode_name(OPAQUE):
        return (*parts[:-1], b"")
    return parts


class LayerWriter:
    """See the module docstring."""

    def __init__(self, out: BinaryIO, *, source_date_epoch: int | None = None) -> None:
        self._out = out
        self._sde = source_date_epoch
        self._hash = hashlib.sha256()
        self._size = 0
        self._last: tuple[bytes, ...] | None = None
        self._buf = bytearray(_BUF)
        self._closed = False

    def _write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self._out.write(data)
        self._size += len(data)

    def add(self, entry: tf.TarEntry, data: int | bytes | None = None) -> None:
        """Append one entry; ``data`` (regular files) is an fd to read ``entry.size`` bytes from,
        or the bytes themselves (then ``len(data)`` must equal ``entry.size``).

        The entry's name may carry a leading ``/`` or ``./``; it is normalized.
        """
        name = tf.clean_path(entry.name)
        if not name:
            raise InvalidArgument(f"layer entry {entry.name!r} is not a path below the root")
        key = _key(name)
        if self._last is not None and key <= self._last:
            raise Internal(f"layer writer: entry {name!r} added out of order or twice")
        self._last = key
        linkname = entry.linkname
        if entry.type == tf.LNK:
            linkname = tf.clean_path(entry.linkname) or ""
            if not linkname:
                raise InvalidArgument(
                    f"layer entry {name!r}: bad hard link target {entry.linkname!r}"
                )
        mtime = entry.mtime_ns // 1_000_000_000
        if self._sde is not None and mtime > self._sde:
            mtime = self._sde
        norm = tf.TarEntry(
            name=name + "/" if entry.type == tf.DIR else name,
            type=entry.type,
            mode=entry.mode & 0o7777,
            uid=entry.uid,
            gid=entry.gid,
            size=entry.size if entry.type == tf.REG else 0,
            mtime_ns=mtime * 1_000_000_000,
            linkname=linkname,
            devmajor=entry.devmajor if entry.type in (tf.CHR, tf.BLK) else 0,
            devminor=entry.devminor if entry.type in (tf.CHR, tf.BLK) else 0,
            xattrs=dict(entry.xattrs),
        )
        self._write(tf.encode_header(norm))
        if norm.size:
            if data is None:
                raise Internal(f"layer writer: no data for {name!r}")
            if isinstance(data, bytes):
                if len(data) != norm.size:
                    raise Internal(
                        f"layer writer: {name!r}: {len(data)} bytes for size {norm.size}"
                    )
                self._write(data)
                if norm.size % tf.BLOCK:
                    self._write(bytes(-norm.size % tf.BLOCK))
            else:
                self._copy(data, norm.size, name)

    def _copy(self, fd: int, size: int, name: str) -> None:
        view = memoryview(self._buf)
        left = size
        while left:
            n = os.readv(fd, [view[: min(left, _BUF)]])
            if n == 0:
                raise InvalidArgument(f"layer writer: {name!r} shrank while being archived")
            self._write(view[:n])
            left -= n
        pad = -size % tf.BLOCK
        if pad:
            self._write(b"\0" * pad)

    def close(self) -> tf.AppliedLayer:
        """Write the end-of-archive blocks; return the layer's diff_id and size."""
        if not self._closed:
            self._write(b"\0" * (2 * tf.BLOCK))
            self._out.flush()
            self._closed = True
        return tf.AppliedLayer("sha256:" + self._hash.hexdigest(), self._size)
