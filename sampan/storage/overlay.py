"""OverlaySnapshotter: layers as overlayfs lowerdirs (Docker's overlay2 layout, containerd's API).

Each committed snapshot holds only its own layer in ``<root>/<id>/diff`` and a short link
``<root>/l/<26 chars> -> ../<id>/diff``; an active snapshot's ``lowerdir=`` lists its
ancestors' links, nearest first, so about twice as many layers fit in mount(2)'s one-page
option string as with the full paths.  Deeper images (200 layers) are mounted by
``sampan._sys.mount.perform`` through the new mount API (``lowerdir+``), which has no such limit.

Mounts returned:

* active snapshot without parent: a read-write bind mount of its ``diff``;
* active snapshot with parents: ``overlay`` with ``lowerdir``, ``upperdir`` (its ``diff``) and
  ``workdir`` (its ``work``);
* view of one layer (or of nothing): a read-only bind mount; of several: a read-only overlay
  of the lowerdirs alone.

Deletions in ``upper_dir`` are overlay whiteouts (0/0 character devices, ``trusted.overlay.opaque``),
which is what ``archive.apply_layer(..., whiteouts="overlay")`` writes.
"""

from __future__ import annotations

import base64
import os
import secrets
import time

from sampan.mount import Mount
from sampan.storage.snapshotdirs import DirSnapshotter, Meta, snapshot_id
from sampan.storage.snapshots import Kind, WhiteoutMode


def _link_name() -> str:
    return base64.b32encode(secrets.token_bytes(17)).decode()[:26]


class OverlaySnapshotter(DirSnapshotter):
    """See the module docstring; implements :class:`~sampan.storage.snapshots.Snapshotter`."""

    name: str = "overlay"
    whiteouts: WhiteoutMode = "overlay"

    # ------------------------------------------------------------ creating

    def _create(
        self, key: str, parent: str | None, kind: Kind, labels: dict[str, str] | None
    ) -> list[Mount]:
        pmeta = self._dirs.committed_parent(parent)
        lowers = [pmeta.link, *pmeta.lowers] if pmeta is not None else []
        tmp = self._dirs.staging()
        if kind == Kind.ACTIVE:
            (tmp / "work").mkdir(mode=0o700)
        meta = Meta(key, parent, kind, time.time(), dict(labels or {}), "", lowers)
        self._dirs.publish(tmp, meta)
        return self._mounts(meta)

    # ------------------------------------------------------------ using

    def _mounts(self, meta: Meta) -> list[Mount]:
        diff = self._dirs.dir(meta.name) / "diff"
        if meta.kind == Kind.COMMITTED:
            return [Mount("bind", str(diff), options=("rbind", "ro"))]
        if not meta.lowers:
            mode = "ro" if meta.kind == Kind.VIEW else "rw"
            return [Mount("bind", str(diff), options=("rbind", mode))]
        lowerdir = "lowerdir=" + ":".join(str(self._dirs.links / link) for link in meta.lowers)
        if meta.kind == Kind.VIEW:
            if len(meta.lowers) == 1:
                assert meta.parent is not None
                return [
                    Mount(
                        "bind", str(self._dirs.dir(meta.parent) / "diff"), options=("rbind", "ro")
                    )
                ]
            return [Mount("overlay", "overlay", options=("ro", lowerdir))]
        work = self._dirs.dir(meta.name) / "work"
        return [
            Mount("overlay", "overlay", options=(lowerdir, f"upperdir={diff}", f"workdir={work}"))
        ]

    def commit(self, name: str, key: str, *, labels: dict[str, str] | None = None) -> None:
        link = _link_name()
        os.symlink(f"../{snapshot_id(name)}/diff", self._dirs.links / link)
        try:
            self._dirs.commit(name, key, labels, link)
        except BaseException:
            os.unlink(self._dirs.links / link)
            raise
