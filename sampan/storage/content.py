"""The content store: blobs addressed by their digest.

Vocabulary (as containerd's content store):

* a *blob* is immutable bytes named by its digest (``sha256:<hex>``); manifests, configs and
  compressed layers are blobs;
* a *writer* receives bytes for one blob under ``<root>/tmp``; on ``commit`` it checks the
  digest (and size, if announced), fsyncs, and renames into ``content/blobs/sha256/<hex>``.

No reader ever sees a partial blob: a blob exists only after its rename, and the rename only
happens after its digest was verified.  A writer that is closed without commit leaves nothing
behind; a crashed process leaves only files under ``tmp/``, which the daemon empties at start.

Typical use::

    store = ContentStore(root / "content", root / "tmp")
    with store.writer(expected=desc_digest, size=desc_size) as w:
        for chunk in stream:
            w.write(chunk)
        digest = w.commit()
    with store.open(digest) as f:
        ...
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from sampan.errors import BlobNotFound, DigestMismatch, InvalidArgument
from sampan.oci import digest as dg


class ContentWriter:
    """Receives the bytes of one blob; see the module docstring."""

    def __init__(self, store: ContentStore, *, expected: str | None, size: int | None, what: str) -> None:
        if expected is not None:
            dg.validate(expected)
        self._store = store
        self._expected = expected
        self._size = size
        self._what = what
        fd, name = tempfile.mkstemp(prefix="blob-", dir=store.tmp)
        self.path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.written = 0
        self._done = False

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.written += len(data)

    def commit(self) -> str:
        """Verify, fsync and publish the blob; return its digest."""
        actual = "sha256:" + self._hash.hexdigest()
        try:
            if self._expected is not None and actual != self._expected:
                raise DigestMismatch(self._what, self._expected, actual)
            if self._size is not None and self.written != self._size:
                raise InvalidArgument(
                    f"{self._what}: size mismatch: expected {self._size} bytes, got {self.written}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            dest = self._store.path(actual)
            if dest.exists():
                self.path.unlink()
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.path, dest)
            self._done = True
            return actual
        finally:
            if not self._done:
                self.abort()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> ContentWriter:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            self.abort()


class ContentStore:
    """Blobs on disk under ``<root>/blobs/<algorithm>/<hex>``; temporaries under ``tmp``."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algo, hexpart = dg.split(digest)
        return self.root / "blobs" / algo / hexpart

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(
        self, *, expected: str | None = None, size: int | None = None, what: str = "blob"
    ) -> ContentWriter:
        return ContentWriter(self, expected=expected, size=size, what=what)

    def put_bytes(self, data: bytes, *, expected: str | None = None, what: str = "blob") -> str:
        with self.writer(expected=expected, size=len(data), what=what) as w:
            w.write(data)
            return w.commit()

    def adopt(self, path: Path, *, expected: str | None = None, what: str = "blob", verified: bool = False) -> str:
        """Move an already written file (on the same filesystem, e.g. under tmp/) into the store.

        The digest is computed while reading it once (unless ``verified``: the caller hashed
        the bytes as it wrote them and they are ``expected``); the file is fsynced and renamed.
        """
        if verified and expected is None:
            raise InvalidArgument(f"{what}: a verified file needs its digest")
        actual = expected if verified and expected is not None else dg.of_file(path)
        if expected is not None and actual != expected:
            path.unlink(missing_ok=True)
            raise DigestMismatch(what, expected, actual)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dest = self.path(actual)
        if dest.exists():
            path.unlink()
        else:
            os.rename(path, dest)
        return actual

    def delete(self, digest: str) -> int:
        """Remove a blob; return the bytes freed (0 if it was absent)."""
        p = self.path(digest)
        try:
            size = p.stat().st_size
            p.unlink()
            return size
        except FileNotFoundError:
            return 0

    def walk(self) -> Iterator[str]:
        """Every blob digest in the store."""
        for algo_dir in (self.root / "blobs").iterdir():
            for entry in algo_dir.iterdir():
                yield f"{algo_dir.name}:{entry.name}"
