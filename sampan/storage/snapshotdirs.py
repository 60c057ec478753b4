"""The on-disk layout both snapshotters share: one directory per snapshot, atomic metadata.

::

    <root>/<id>/diff/          the snapshot's contents (overlay: its own layer; native: a full tree)
    <root>/<id>/work/          overlay's workdir (active overlay snapshots only)
    <root>/<id>/info.json      {"name", "parent", "kind", "labels", "created", "link", "lowers"}
    <root>/l/<26 chars>        overlay's short link -> ../<id>/diff (committed overlay snapshots)
    <root>/.tmp-*/ .trash-*/   a snapshot being made / being removed (emptied at start)
    <root>/.probe-*/           select.overlay_supported's test mount (emptied at start)

``<id>`` is the sha256 (hex) of the snapshot's key or name, so a committed layer's directory
follows from its chain ID.  Crash safety:

* a snapshot is made in ``.tmp-*`` and renamed to ``<id>`` when complete (without fsync: a
  crash may lose a new active snapshot, whose unreadable directory ``recover`` then removes);
* ``commit`` first rewrites ``info.json`` (write, fsync, rename) with the new name
  and kind, then renames ``<id(key)>`` to ``<id(name)>``.  A crash between the two leaves a
  directory whose ``info.json`` names a committed snapshot that does not hash to the directory's
  name; :meth:`SnapshotDirs.recover` finishes that rename.  So a restart sees either the
  active snapshot or the committed one, never both and never half of one;
* ``remove`` renames to ``.trash-*`` first, then deletes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sampan.errors import Conflict, InvalidArgument, NotFound
from sampan.mount import Mount
from sampan.storage.snapshots import Kind, SnapshotInfo, Usage

INFO = "info.json"


@dataclass(slots=True)
class Meta:
    name: str
    parent: str | None
    kind: Kind
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    link: str = ""
    lowers: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "name": self.name,
                "parent": self.parent,
                "kind": self.kind.value,
                "created": self.created,
                "labels": self.labels,
                "link": self.link,
                "lowers": self.lowers,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Meta:
        d = json.loads(data)
        return cls(
            d["name"],
            d["parent"],
            Kind(d["kind"]),
            float(d["created"]),
            dict(d["labels"]),
            d.get("link", ""),
            list(d.get("lowers", [])),
        )

    def info(self) -> SnapshotInfo:
        return SnapshotInfo(self.name, self.parent, self.kind, self.created, dict(self.labels))


#: One lock per snapshotter root in this process, shared by every instance on that root.
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _in_progress(entry: str) -> bool:
    """Whether a ``.tmp-<pid>-*`` / ``.trash-<pid>-*`` entry may still be in use: it is if that
    process is alive (this process included: another instance on the root may be staging).
    Entries of dead processes are debris of a crash."""
    try:
        pid = int(entry.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def snapshot_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` by write + rename; with ``durable`` the data is fsynced before the rename,
    so after a crash the file holds either the old or the new contents, never a torn one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def disk_usage(path: Path) -> Usage:
    """Bytes allocated (st_blocks) and inodes below ``path``, each inode counted once."""
    seen: set[int] = set()
    size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                size += st.st_blocks * 512
    return Usage(size=size, inodes=len(seen))


class SnapshotDirs:
    """Directories and metadata of the snapshots under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links = root / "l"
        with _LOCKS_GUARD:
            self.lock = _LOCKS.setdefault(str(root.absolute()), threading.RLock())
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.links.mkdir(exist_ok=True, mode=0o700)
        self.recover()

    def dir(self, key: str) -> Path:
        return self.root / snapshot_id(key)

    def _read(self, path: Path) -> Meta | None:
        try:
            return Meta.from_json((path / INFO).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def get(self, key: str) -> Meta:
        meta = self._read(self.dir(key))
        if meta is None or meta.name != key:
            raise NotFound(f"snapshot {key!r} does not exist")
        return meta

    def exists(self, key: str) -> bool:
        meta = self._read(self.dir(key))
        return meta is not None and meta.name == key

    def metas(self) -> Iterator[Meta]:
        for entry in sorted(os.listdir(self.root)):
            if len(entry) != 64 or entry.startswith("."):
                continue
            meta = self._read(self.root / entry)
            if meta is not None and snapshot_id(meta.name) == entry:
                yield meta

    def walk(self) -> Iterator[SnapshotInfo]:
        for meta in self.metas():
            yield meta.info()

    def committed_parent(self, parent: str | None) -> Meta | None:
        if parent is None:
            return None
        meta = self.get(parent)
        if meta.kind != Kind.COMMITTED:
            raise InvalidArgument(f"snapshot {parent!r} is not committed and cannot be a parent")
        return meta

    def staging(self) -> Path:
        tmp = self.root / f".tmp-{os.getpid()}-{secrets.token_hex(8)}"
        tmp.mkdir(mode=0o700)
        (tmp / "diff").mkdir(mode=0o755)
        return tmp

    def publish(self, tmp: Path, meta: Meta) -> Path:
        """Write ``meta`` into the staged directory and rename it into place."""
        write_atomic(
            tmp / INFO, meta.to_json(), durable=False
        )  # a torn one is removed by recover()
        dest = self.dir(meta.name)
        with self.lock:
            if self.exists(meta.name) or dest.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                raise Conflict(f"snapshot {meta.name!r} already exists")
            os.rename(tmp, dest)
        return dest

    def commit(self, name: str, key: str, labels: dict[str, str] | None, link: str = "") -> Meta:
        with self.lock:
            meta = self.get(key)
            if meta.kind != Kind.ACTIVE:
                raise Conflict(
                    f"snapshot {key!r} is a {meta.kind.value} snapshot and cannot be committed"
                )
            if self.exists(name) or self.dir(name).exists():
                raise Conflict(f"snapshot {name!r} already exists")
            new = Meta(
                name,
                meta.parent,
                Kind.COMMITTED,
                time.time(),
                dict(meta.labels if labels is None else labels),
                link,
                meta.lowers,
            )
            src = self.dir(key)
            write_atomic(src / INFO, new.to_json())
            os.rename(src, self.dir(name))
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(self.dir(name) / "work")
            return new

    def remove(self, key: str) -> Meta:
        with self.lock:
            meta = self.get(key)
            children = [m.name for m in self.metas() if m.parent == key]
            if children:
                raise Conflict(
                    f"snapshot {key!r} is the parent of {len(children)} other snapshot(s), e.g. {children[0]!r}"
                )
            trash = self.root / f".trash-{os.getpid()}-{secrets.token_hex(8)}"
            os.rename(self.dir(key), trash)
            if meta.link:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.links / meta.link)
        shutil.rmtree(trash, ignore_errors=True)
        return meta

    def recover(self) -> None:
        """Finish or undo what a crash interrupted (see the module docstring)."""
        with self.lock:
            for entry in os.listdir(self.root):
                path = self.root / entry
                if entry.startswith((".tmp-", ".trash-", ".probe-")):
                    if not _in_progress(entry):
                        shutil.rmtree(path, ignore_errors=True)
                    continue
                if len(entry) != 64:
                    continue
                meta = self._read(path)
                if meta is None:
                    shutil.rmtree(path, ignore_errors=True)  # a prepare whose metadata a crash lost
                    continue
                want = snapshot_id(meta.name)
                if want != entry:
                    if meta.kind == Kind.COMMITTED and not (self.root / want).exists():
                        os.rename(
                            path, self.root / want
                        )  # a commit interrupted after its first step
                    else:
                        shutil.rmtree(path, ignore_errors=True)
            for link in os.listdir(self.links):
                if not (self.links / link).exists():
                    os.unlink(self.links / link)


class DirSnapshotter:
    """What both snapshotters share on this layout: everything but how a snapshot is created,
    mounted and committed (``_create``, ``_mounts``, ``commit`` in the subclasses)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs = SnapshotDirs(root)

    def _create(self, key: str, parent: str | None, kind: Kind, labels: dict[str, str] | None) -> list[Mount]:
        raise NotImplementedError

    def _mounts(self, meta: Meta) -> list[Mount]:
        raise NotImplementedError

    def prepare(
        self, key: str, parent: str | None = None, *, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        return self._create(key, parent, Kind.ACTIVE, labels)

    def view(
        self, key: str, parent: str | None = None, *, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        return self._create(key, parent, Kind.VIEW, labels)

    def mounts(self, key: str) -> list[Mount]:
        return self._mounts(self._dirs.get(key))

    def upper_dir(self, key: str) -> Path:
        """``key``'s ``diff`` directory, for a committed snapshot too: overlay's holds the
        snapshot's own changes (its layer); native's its full tree (the ``lower`` of
        ``write_diff``)."""
        self._dirs.get(key)
        return self._dirs.dir(key) / "diff"

    def remove(self, key: str) -> None:
        self._dirs.remove(key)

    def stat(self, key: str) -> SnapshotInfo:
        return self._dirs.get(key).info()

    def walk(self) -> Iterator[SnapshotInfo]:
        return self._dirs.walk()

    def usage(self, key: str) -> Usage:
        self._dirs.get(key)
        return disk_usage(self._dirs.dir(key) / "diff")
