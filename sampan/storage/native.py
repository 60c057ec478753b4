"""NativeSnapshotter: the copy-based fallback for filesystems where overlayfs does not work.

Every snapshot's ``diff`` is a full tree: ``prepare``/``view`` copy the parent's tree with
``cp -a --reflink=auto`` (ownership, modes, nanosecond times, xattrs and hard links kept, so
that ``archive.write_diff(upper, lower=parent)`` sees only real changes; reflinks make it cheap
where the filesystem has them).  Deletions in ``upper_dir`` are real deletions
(``whiteouts="delete"``).  Mounts are bind mounts (read-only for views and committed ones).
Slow and space-hungry by nature, like Docker's vfs driver; chosen only when overlay fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from sampan.errors import Internal
from sampan.mount import Mount
from sampan.storage.snapshotdirs import DirSnapshotter, Meta
from sampan.storage.snapshots import Kind, WhiteoutMode


class NativeSnapshotter(DirSnapshotter):
    """See the module docstring; implements :class:`~sampan.storage.snapshots.Snapshotter`."""

    name: str = "native"
    whiteouts: WhiteoutMode = "delete"

    def _create(
        self, key: str, parent: str | None, kind: Kind, labels: dict[str, str] | None
    ) -> list[Mount]:
        pmeta = self._dirs.committed_parent(parent)
        tmp = self._dirs.staging()
        if pmeta is not None:
            src = self._dirs.dir(pmeta.name) / "diff"
            proc = subprocess.run(
                ["cp", "-a", "--reflink=auto", "--", f"{src}/.", f"{tmp}/diff/"],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise Internal(f"copying snapshot {parent!r} for {key!r}: {proc.stderr.strip()}")
        meta = Meta(key, parent, kind, time.time(), dict(labels or {}))
        self._dirs.publish(tmp, meta)
        return self._mounts(meta)

    def _mounts(self, meta: Meta) -> list[Mount]:
        mode = "rw" if meta.kind == Kind.ACTIVE else "ro"
        return [Mount("bind", str(self._dirs.dir(meta.name) / "diff"), options=("rbind", mode))]

    def commit(self, name: str, key: str, *, labels: dict[str, str] | None = None) -> None:
        self._dirs.commit(name, key, labels)
