"""The local image store: images, their references, blobs and layers.

Vocabulary: an image *ID* is ``sha256:`` + the digest of its config blob; a *reference* names
it (``busybox:latest`` is a *tag*, ``busybox@sha256:...`` a *repo digest*: the digest of a
manifest it was pulled by); its *layers* are committed snapshots named by their chain IDs
(``<data-root>/layers``); its *blobs* (config, manifest, layer blobs) live in
``<data-root>/content``.  Rows in ``sampan.db`` (see ``schema.py``) tie them together, and
reference counts are always derived from those rows.

Typical use::

    store = ImageStore.open(data_root, db=db)
    store.reconcile()                                  # once, at daemon start
    image = store.import_rootfs(f, reference="busybox", changes=['CMD ["sh"]'])
    store.tag("busybox", "busybox:1")
    store.remove("busybox:1")                          # [{"Untagged": "busybox:1"}]
    mounts = store.mounts("busybox", "check-1")        # a read-only view of its rootfs

Blobs and layers arrive through a :class:`~sampan.image.unpack.Staging` (``store.staging()``)
and become an image with ``add_image`` in one transaction; see ``unpack.py``.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from sampan.errors import Conflict, InvalidArgument, InvalidReference, NoSuchImage, NotFound
from sampan.image import config as cfg
from sampan.image import reference as refs
from sampan.image.schema import (
    COMPONENT,
    MIGRATIONS,
    HistoryEntry,
    Image,
    ImagesUsage,
    ImageUsage,
    LayerRecord,
    image_from_rows,
)
from sampan.image.unpack import EXTRACT_PREFIX, Staging
from sampan.mount import Mount
from sampan.oci import digest as dg
from sampan.storage.content import ContentStore
from sampan.storage.db import Database
from sampan.storage.snapshots import Kind, Snapshotter

__all__ = ["HistoryEntry", "Image", "ImageStore", "ImageUsage", "ImagesUsage", "LayerRecord"]

_ID_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")
InUse = Callable[[str], bool]


class ImageStore:
    """Images of one data root; thread-safe (one lock around every change)."""

    def __init__(
        self,
        data_root: Path,
        *,
        db: Database,
        content: ContentStore,
        snapshotter: Snapshotter,
        in_use: InUse | None = None,
    ) -> None:
        self.data_root = data_root
        self.db = db
        self.content = content
        self.snapshotter = snapshotter
        self.in_use: InUse = in_use or (lambda image_id: False)
        self.lock = threading.RLock()
        self._blob_leases: Counter[str] = Counter()
        self._layer_leases: Counter[str] = Counter()
        db.migrate(COMPONENT, MIGRATIONS)

    @classmethod
    def open(
        cls,
        data_root: Path,
        *,
        db: Database,
        storage_driver: str | None = None,
        in_use: InUse | None = None,
    ) -> ImageStore:
        from sampan.storage.select import open_snapshotter

        content = ContentStore(data_root / "content", data_root / "tmp")
        snapshotter = open_snapshotter(data_root / "layers", storage_driver)
        return cls(data_root, db=db, content=content, snapshotter=snapshotter, in_use=in_use)

    # ---------------------------------------------------------------- leases

    def staging(self) -> Staging:
        return Staging(self)

    def lease(self, *, blobs: Iterable[str] = (), layers: Iterable[str] = ()) -> None:
        with self.lock:
            self._blob_leases.update(blobs)
            self._layer_leases.update(layers)

    def release(self, *, blobs: Iterable[str] = (), layers: Iterable[str] = ()) -> None:
        with self.lock:
            self._blob_leases.subtract(blobs)
            self._layer_leases.subtract(layers)
            self._blob_leases = +self._blob_leases
            self._layer_leases = +self._layer_leases

    def free_unreferenced(
        self, *, blobs: Iterable[str], layers: Iterable[str], own_lease: bool = False
    ) -> tuple[builtins.list[str], int]:
        """Delete the given blobs and layers (top layer first) that no image row names and no
        other operation leases; return the removed chain IDs and the bytes freed."""
        allowed = 1 if own_lease else 0
        freed = 0
        removed: builtins.list[str] = []
        with self.lock:
            for chain in layers:
                if self._layer_leases[chain] > allowed or self.db.query_one(
                    "SELECT 1 FROM image_layers WHERE chain_id = ? LIMIT 1", (chain,)
                ):
                    continue
                try:
                    usage = self.snapshotter.usage(chain).size
                    self.snapshotter.remove(chain)
                except NotFound:
                    continue
                except Conflict:
                    break  # a container (or another snapshot) stands on it: keep it and below
                freed += usage
                removed.append(chain)
            for digest in blobs:
                if self._blob_leases[digest] > allowed or self.db.query_one(
                    "SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1", (digest,)
                ):
                    continue
                freed += self.content.delete(digest)
        return removed, freed

    # ---------------------------------------------------------------- reads

    def _load(self, image_id: str) -> Image:
        row = self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))
        if row is None:
            raise NoSuchImage(image_id)
        layers = self.db.query("SELECT * FROM image_layers WHERE image_id = ?", (image_id,))
        ref_rows = self.db.query(
            "SELECT ref, kind FROM refs WHERE image_id = ? ORDER BY added, ref", (image_id,)
        )
        return image_from_rows(row, layers, ref_rows)

    def list(self) -> builtins.list[Image]:
        """Every image, newest first."""
        rows = self.db.query("SELECT * FROM images")
        layers: dict[str, builtins.list[Any]] = {}
        for r in self.db.query("SELECT * FROM image_layers"):
            layers.setdefault(r["image_id"], []).append(r)
        ref_rows: dict[str, builtins.list[Any]] = {}
        for r in self.db.query("SELECT ref, kind, image_id FROM refs ORDER BY added, ref"):
            ref_rows.setdefault(r["image_id"], []).append(r)
        images = [image_from_rows(r, layers.get(r["id"], []), ref_rows.get(r["id"], [])) for r in rows]
        images.sort(key=lambda i: (cfg.parse_time(i.created), i.added, i.id), reverse=True)
        return images

    def resolve(self, name: str) -> str:
        """The image ID that ``name`` (reference, full or short ID, digest reference) means."""
        text = name.strip()
        if dg.is_digest(text) or re.fullmatch(r"[a-f0-9]{64}", text):
            image_id = text if text.startswith("sha256:") else "sha256:" + text
            if self.db.query_one("SELECT 1 FROM images WHERE id = ?", (image_id,)):
                return image_id
            raise NoSuchImage(name)
        try:
            ref = refs.parse(text)
        except InvalidReference:
            ref = None
        if ref is not None:
            key = str(ref.with_digest(ref.digest)) if ref.digest else str(ref)
            row = self.db.query_one("SELECT image_id FROM refs WHERE ref = ?", (key,))
            if row is not None:
                return str(row["image_id"])
            if ref.digest:  # by manifest digest, whatever the repository
                row = self.db.query_one(
                    "SELECT id FROM images WHERE manifest_digest = ?", (ref.digest,)
                )
                if row is not None:
                    return str(row["id"])
        match = _ID_PREFIX.match(text)
        if match:
            found = self.db.query(
                "SELECT id FROM images WHERE id LIKE ? LIMIT 2", ("sha256:" + match.group(1) + "%",)
            )
            if len(found) == 1:
                return str(found[0]["id"])
            if len(found) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {match.group(1)}")
        if ref is None:
            refs.parse(text)  # raise the reference error for names that are neither
        raise NoSuchImage(name)

    def get(self, name: str) -> Image:
        return self._load(self.resolve(name))

    def history(self, name: str) -> builtins.list[HistoryEntry]:
        image = self.get(name)
        entries: builtins.list[HistoryEntry] = []
        layer_sizes = [layer.size for layer in image.layers]
        index = 0
        for h in image.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                size = layer_sizes[index] if index < len(layer_sizes) else 0
                index += 1
            entries.append(
                HistoryEntry(
                    id="<missing>",
                    created=int(cfg.parse_time(str(h.get("created") or ""))),
                    created_by=str(h.get("created_by") or ""),
                    size=size,
                    comment=str(h.get("comment") or ""),
                    tags=[],
                )
            )
        entries.reverse()
        if entries:
            entries[0].id = image.id
            entries[0].tags = list(image.repo_tags)
        return entries

    def mounts(self, name: str, key: str) -> builtins.list[Mount]:
        """A read-only view (snapshot ``key``) of the image's root filesystem."""
        image = self.get(name)
        return self.snapshotter.view(key, image.chain_ids[-1] if image.chain_ids else None)

    def disk_usage(self) -> ImagesUsage:
        images = self.list()
        users: Counter[str] = Counter()
        sizes: dict[str, int] = {}
        for image in images:
            for layer in image.layers:
                users[layer.chain_id] += 1
                sizes[layer.chain_id] = layer.size
        out = []
        for image in images:
            shared = sum(layer.size for layer in image.layers if users[layer.chain_id] > 1)
            out.append(
                ImageUsage(
                    image=image, size=image.size, shared_size=shared,
                    unique_size=image.size - shared, containers=0,
                )
            )
        return ImagesUsage(layers_size=sum(sizes.values()), images=out)

    # ---------------------------------------------------------------- changes

    def add_image(
        self,
        config_blob: str,
        layers: builtins.list[LayerRecord],
        *,
        references: Iterable[str] = (),
        manifest_digest: str | None = None,
        extra_blobs: Iterable[str] = (),
        parent: str = "",
    ) -> tuple[Image, builtins.list[str]]:
        """Record an image whose blobs and layers are in place; one transaction.

        Returns the image and Docker's notes about tags taken from other images ("The image
        busybox:latest already exists, renaming the old one with ID ... to empty string").
        """
        raw = self.content.read_bytes(config_blob)
        try:
            config = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidArgument(f"image config {config_blob} is not valid JSON") from None
        if not isinstance(config, dict):
            raise InvalidArgument(f"image config {config_blob} is not a JSON object")
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if diff_ids != [layer.diff_id for layer in layers]:
            raise InvalidArgument(
                f"image config {config_blob}: rootfs.diff_ids do not match the layers given"
            )
        image_id = config_blob
        parsed = [refs.parse(r) for r in references]
        notes: builtins.list[str] = []
        now = time.time()
        with self.lock, self.db.transaction() as tx:
            exists = tx.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone()
            if not exists:
                tx.execute(
                    "INSERT INTO images (id, config, created, size, parent, comment,"
                    " manifest_digest, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id, raw.decode("utf-8", "surrogateescape"),
                        str(config.get("created") or ""), sum(layer.size for layer in layers),
                        parent, str(config.get("comment") or ""), manifest_digest, now,
                    ),
                )
                tx.executemany(
                    "INSERT INTO image_layers (image_id, idx, diff_id, chain_id, blob, media_type,"
                    " blob_size, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (image_id, i, la.diff_id, la.chain_id, la.blob, la.media_type, la.blob_size, la.size)
                        for i, la in enumerate(layers)
                    ],
                )
            elif manifest_digest is not None:
                tx.execute(
                    "UPDATE images SET manifest_digest = ? WHERE id = ? AND manifest_digest IS NULL",
                    (manifest_digest, image_id),
                )
            blobs = {config_blob, *extra_blobs, *(la.blob for la in layers)}
            if manifest_digest:
                blobs.add(manifest_digest)
            tx.executemany(
                "INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)",
                [(image_id, b) for b in sorted(blobs)],
            )
            for ref in parsed:
                notes += self._set_ref(tx, ref, image_id, now)
        return self._load(image_id), notes

    def _set_ref(self, tx: Any, ref: refs.Reference, image_id: str, now: float) -> builtins.list[str]:
        kind = "digest" if ref.digest and not ref.tag else "tag"
        key = str(ref)
        old = tx.execute("SELECT image_id FROM refs WHERE ref = ?", (key,)).fetchone()
        notes = []
        if old is not None and old["image_id"] != image_id:
            notes.append(
                f"The image {ref.familiar()} already exists, renaming the old one with ID "
                f"{old['image_id']} to empty string"
            )
        tx.execute(
            "INSERT INTO refs (ref, image_id, kind, added) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, added = excluded.added",
            (key, image_id, kind, now),
        )
        if kind == "tag":
            tx.execute(
                "UPDATE images SET last_tag_time = ? WHERE id = ?", (cfg.now_rfc3339(), image_id)
            )
        return notes

    def tag(self, name: str, new_reference: str) -> None:
        image_id = self.resolve(name)
        ref = refs.parse(new_reference)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {new_reference}")
        with self.lock, self.db.transaction() as tx:
            self._set_ref(tx, ref, image_id, time.time())

    def import_rootfs(
        self,
        src: BinaryIO,
        *,
        reference: str | None = None,
        changes: Iterable[str] = (),
        message: str = "",
        platform: str = "",
    ) -> Image:
        """``docker import``: ``src`` (a rootfs tar, plain or compressed) becomes a one-layer
        image; ``changes`` set its config (CMD, ENV, ...), ``message`` its comment."""
        if reference:
            parsed = refs.parse(reference)
            if parsed.digest:
                raise InvalidArgument(f"cannot import with a digest reference: {reference}")
        container_config = cfg.apply_changes({}, list(changes))
        cfg.parse_platform(platform)
        with self.staging() as staging:
            layer = staging.unpack_stream(src, what="imported rootfs")
            created = cfg.now_rfc3339()
            comment = message or "Imported from -"
            history = [{"created": created, "comment": comment}]
            config = cfg.new_config(
                diff_ids=[layer.diff_id], created=created, platform=platform,
                container_config=container_config, comment=comment, history=history,
            )
            config_blob = staging.put_bytes(cfg.encode(config), what="image config")
            image, _ = self.add_image(
                config_blob, [layer], references=[reference] if reference else []
            )
        return image

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> builtins.list[dict[str, str]]:
        from sampan.image.deletion import remove_image

        return remove_image(self, name, force=force, prune=prune)

    def prune(
        self, *, all: bool = False, filters: dict[str, builtins.list[str]] | None = None
    ) -> tuple[builtins.list[dict[str, str]], int]:
        from sampan.image.deletion import prune_images

        return prune_images(self, all_images=all, filters=filters or {})

    # ---------------------------------------------------------------- start-up

    def reconcile(self) -> None:
        """At daemon start (nothing else running): drop what no image row references —
        ``extract-`` snapshots, committed layers, blobs — and empty ``tmp/``."""
        with self.lock:
            for info in list(self.snapshotter.walk()):
                if info.kind is not Kind.COMMITTED and info.name.startswith(EXTRACT_PREFIX):
                    try:
                        self.snapshotter.remove(info.name)
                    except NotFound:
                        pass
            wanted = {r["chain_id"] for r in self.db.query("SELECT DISTINCT chain_id FROM image_layers")}
            committed = [i for i in self.snapshotter.walk() if i.kind is Kind.COMMITTED]
            orphans = _children_first([i.name for i in committed if i.name not in wanted],
                                      {i.name: i.parent for i in committed})
            self.free_unreferenced(blobs=(), layers=orphans)
            blobs = {r["digest"] for r in self.db.query("SELECT DISTINCT digest FROM image_blobs")}
            self.free_unreferenced(blobs=[d for d in self.content.walk() if d not in blobs], layers=())
            _empty_dir(self.content.tmp, keep=_resumable)


def _children_first(names: builtins.list[str], parents: dict[str, str | None]) -> builtins.list[str]:
    """Order snapshot names so that a child comes before its parent."""
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        seen = 0
        node: str | None = name
        while node is not None and seen < 10000:
            node = parents.get(node)
            seen += 1
        return seen

    for name in names:
        depth[name] = level(name)
    return sorted(names, key=lambda n: depth[n], reverse=True)


def _resumable(entry: Path) -> bool:
    """A pull's partial download (``partial-<hex>``) younger than a day: a later pull resumes it."""
    try:
        return (entry.name.startswith("partial-") and entry.name.count("-") == 1
                and entry.is_file() and time.time() - entry.stat().st_mtime < 86400)
    except OSError:
        return False


def _empty_dir(path: Path, keep: Callable[[Path], bool] | None = None) -> None:
    import shutil

    if not path.is_dir():
        return
    for entry in path.iterdir():
        if keep is not None and keep(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
