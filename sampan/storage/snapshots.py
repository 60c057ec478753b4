"""The Snapshotter protocol: layers and container filesystems as mounts.

Vocabulary (as containerd's ``core/snapshots/snapshotter.go``):

* a snapshot is a filesystem tree; it is either *committed* (immutable, named by its *name*,
  for an image layer the layer's OCI ChainID) or *active* (writable, named by its *key*), or a
  *view* (a read-only active snapshot);
* ``prepare(key, parent)`` makes an active snapshot on top of the committed snapshot ``parent``
  (or empty) and returns the mounts that assemble it; ``upper_dir(key)`` is the directory that
  receives its changes (where a layer tar is applied, where a container writes);
* ``commit(name, key)`` turns the active snapshot ``key`` into the committed snapshot ``name``;
  ``key`` no longer exists after it;
* ``remove(key_or_name)`` deletes a snapshot that no other snapshot has as parent.

Typical use, unpacking an image of layers L0, L1 with chain IDs C0, C1::

    sn.prepare("extract-C0", None);  apply L0 into sn.upper_dir("extract-C0");  sn.commit(C0, "extract-C0")
    sn.prepare("extract-C1", C0);    apply L1 into sn.upper_dir("extract-C1");  sn.commit(C1, "extract-C1")
    mounts = sn.prepare(container_id, C1)      # a container's root filesystem
    mounts = sn.view("check-" + C1, C1)        # a read-only look at the image

How changes are recorded in ``upper_dir`` depends on the implementation (``whiteouts``): the
overlay snapshotter stores deletions as overlay whiteouts (0/0 character devices and the
``trusted.overlay.opaque`` xattr); the copy-based native snapshotter starts from a full copy of
the parent and deletes files for real.  The layer applier in ``archive.py`` writes in the form
the snapshotter names.  Every implementation passes the suite in ``storage/testing.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from sampan.mount import Mount

WhiteoutMode = Literal["overlay", "delete"]


class Kind(enum.Enum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    name: str
    parent: str | None
    kind: Kind
    created: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    size: int
    inodes: int


class Snapshotter(Protocol):
    """See the module docstring for the vocabulary and a walk-through."""

    #: "overlay" or "native"; shown as GraphDriver.Name.
    name: str
    #: How deletions are stored in an active snapshot's upper_dir.
    whiteouts: WhiteoutMode

    def prepare(
        self, key: str, parent: str | None = None, *, labels: dict[str, str] | None = None
    ) -> list[Mount]: ...

    def view(
        self, key: str, parent: str | None = None, *, labels: dict[str, str] | None = None
    ) -> list[Mount]: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def upper_dir(self, key: str) -> Path: ...

    def commit(self, name: str, key: str, *, labels: dict[str, str] | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def stat(self, key: str) -> SnapshotInfo: ...

    def walk(self) -> Iterator[SnapshotInfo]: ...

    def usage(self, key: str) -> Usage: ...
