"""Staging: how blobs and layers enter the store before their image exists.

One operation (a load, an import, later a pull or a commit) opens a :class:`Staging`.  It
writes blobs through the content store (digest verified, fsynced, renamed) and unpacks layers
into *active* snapshots that it commits under their chain IDs.  While the staging is open,
what it touched is *leased*: no removal or prune of another image frees it.  The image rows go
into the database in one transaction at the very end (``ImageStore.add_image``); then
``close()`` frees whatever this operation created that no image row names (junk blobs of an
archive, everything after a failure).

A crash at any point leaves only unreferenced blobs, committed snapshots that no row names,
active ``extract-`` snapshots and files under ``tmp/``: ``ImageStore.reconcile`` removes them.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from sampan.errors import Conflict, DigestMismatch, InvalidArgument, NotFound
from sampan.image.schema import LayerRecord
from sampan.image.streams import TeeReader, decompressed
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt
from sampan.storage.compression import decompressing_reader, detect

if TYPE_CHECKING:
    from sampan.image.store import ImageStore
    from sampan.storage.archive import AppliedLayer

EXTRACT_PREFIX = "extract-"
LABEL_DIFF_ID = "sampan.diff_id"
LABEL_SIZE = "sampan.size"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    """A layer to unpack: its blob in the content store and the diff_id the config announces."""

    blob: str
    media_type: str
    diff_id: str
    where: str = ""


class Staging:
    """Blobs and layers of one operation; see the module docstring."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.blobs: set[str] = set()
        self.created_blobs: set[str] = set()
        self.layers: set[str] = set()
        self.created_layers: list[str] = []
        self.verified: set[tuple[str, str]] = set()  # (blob, diff_id) pairs checked while unpacking
        self._closed = False

    # ---------------------------------------------------------------- blobs

    def lease_blob(self, digest: str, *, created: bool = False) -> None:
        if digest not in self.blobs:
            self.blobs.add(digest)
            self.store.lease(blobs=[digest])
        if created:
            self.created_blobs.add(digest)

    def put_bytes(self, data: bytes, *, expected: str | None = None, what: str = "blob") -> str:
        digest = dg.of_bytes(data)
        if expected is not None and expected != digest:
            raise DigestMismatch(what, expected, digest)
        self.lease_blob(digest)  # before looking, so no removal frees it meanwhile
        if self.store.content.exists(digest):
            return digest
        self.store.content.put_bytes(data, expected=digest, what=what)
        self.lease_blob(digest, created=True)
        return digest

    def copy_blob(self, src: BinaryIO, *, expected: str | None = None, size: int | None = None, what: str = "blob") -> str:
        """Stream ``src`` into the content store (skipped when ``expected`` is already there)."""
        if expected is not None:
            self.lease_blob(expected)  # before looking, so no removal frees it meanwhile
            if self.store.content.exists(expected):
                return expected
        with self.store.content.writer(expected=expected, size=size, what=what) as w:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                w.write(chunk)
            existed = expected is not None and self.store.content.exists(expected)
            digest = w.commit()
        self.lease_blob(digest, created=not existed)
        return digest

    # ---------------------------------------------------------------- layers

    def unpack(
        self, layers: list[LayerBlob], *, on_layer: Callable[[LayerBlob, bool], None] | None = None
    ) -> list[LayerRecord]:
        """Make sure a committed snapshot exists for every chain of ``layers``; in order."""
        diff_ids = [layer.diff_id for layer in layers]
        chains = dg.chain_ids(diff_ids)
        records: list[LayerRecord] = []
        parent: str | None = None
        for layer, chain in zip(layers, chains, strict=True):
            self._lease_layer(chain)
            blob_size = self.store.content.size(layer.blob)
            size = self._committed_size(chain)
            if size is not None and not self._known_pair(layer):
                self._verify_diff(layer)
            if on_layer is not None:
                on_layer(layer, False)
            if size is None:
                with self.store.content.open(layer.blob) as f:
                    size = self._apply(
                        f, chain, parent, expected_diff_id=layer.diff_id,
                        where=layer.where or f"layer {layer.blob}",
                    ).size
            if on_layer is not None:
                on_layer(layer, True)
            records.append(
                LayerRecord(
                    diff_id=layer.diff_id, chain_id=chain, blob=layer.blob,
                    media_type=layer.media_type, blob_size=blob_size, size=size,
                )
            )
            parent = chain
        return records

    def adopt_blob(self, path: Path, *, expected: str, what: str = "blob", verified: bool = False) -> str:
        """Move a complete file under ``tmp/`` into the content store as blob ``expected``
        (``verified``: its writer already checked the digest)."""
        self.lease_blob(expected)  # before looking, so no removal frees it meanwhile
        if self.store.content.exists(expected):
            path.unlink(missing_ok=True)
            return expected
        digest = self.store.content.adopt(path, expected=expected, what=what, verified=verified)
        self.lease_blob(digest, created=True)
        return digest

    def unpack_blob_stream(
        self, src: BinaryIO, layer: LayerBlob, *, chain: str, parent: str | None, size: int | None = None,
        blob_file: Path | None = None,
    ) -> None:
        """Store ``src`` as the blob ``layer.blob`` and unpack it as ``chain`` on ``parent`` in
        the same pass (a pull extracts a layer as it downloads); ``unpack`` later finds the
        layer committed and its blob checked.  With ``blob_file``, reading ``src`` to its end
        writes and verifies the blob there itself (a resumable download): it is adopted, not
        copied."""
        where = layer.where or f"layer {layer.blob}"
        self.lease_blob(layer.blob)
        self._lease_layer(chain)
        if blob_file is not None:
            if self._committed_size(chain) is None:
                self._apply(src, chain, parent, expected_diff_id=layer.diff_id, where=where)
            while src.read(_CHUNK):
                pass
            self.adopt_blob(blob_file, expected=layer.blob, what=where, verified=True)
            self.verified.add((layer.blob, layer.diff_id))
            return
        with self.store.content.writer(expected=layer.blob, size=size, what=where) as w:
            reader = io.BufferedReader(TeeReader(src, w), _CHUNK)
            if self._committed_size(chain) is None:
                self._apply(reader, chain, parent, expected_diff_id=layer.diff_id, where=where)
            while reader.read(_CHUNK):  # the rest (tar padding) is part of the blob
                pass
            existed = self.store.content.exists(layer.blob)
            w.commit()
        self.lease_blob(layer.blob, created=not existed)
        self.verified.add((layer.blob, layer.diff_id))

    def unpack_stream(self, src: BinaryIO, *, what: str = "layer") -> LayerRecord:
        """Store ``src`` as a blob as given and unpack it as a base layer, reading it once
        (``docker import``)."""
        # bzip2 and xz (which docker import takes) are stored decompressed: layers are
        # plain, gzip or zstd tars
        src = decompressed(src, what, kinds=("bzip2", "xz"))
        with self.store.content.writer(what=what) as w:
            tee = TeeReader(src, w)
            reader = io.BufferedReader(tee, _CHUNK)
            applied = self._apply(reader, None, None, expected_diff_id=None, where=what)
            while reader.read(_CHUNK):  # what apply_layer left (tar padding) is part of the blob
                pass
            blob = w.commit()
        self.lease_blob(blob, created=True)
        with self.store.content.open(blob) as f:
            head = f.read(8)
        return LayerRecord(
            diff_id=applied.diff_id, chain_id=applied.diff_id, blob=blob,
            media_type=_layer_media_type(detect(head)),
            blob_size=self.store.content.size(blob), size=applied.size,
        )

    def _apply(
        self, f: BinaryIO, chain: str | None, parent: str | None, *,
        expected_diff_id: str | None, where: str,
    ) -> AppliedLayer:
        """Unpack ``f`` into a new active snapshot and commit it as ``chain`` (a base layer
        given ``chain=None`` is named by its diff_id, known once it is unpacked)."""
        from sampan.storage.archive import apply_layer

        sn = self.store.snapshotter
        key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex}"
        sn.prepare(key, parent)
        try:
            applied = apply_layer(
                f, sn.upper_dir(key), whiteouts=sn.whiteouts, compression="auto",
                expected_diff_id=expected_diff_id, where=where,
            )
            target = chain or applied.diff_id
            self._lease_layer(target)
            if self._committed_size(target) is not None:
                self._drop(key)
                return applied
            labels = {LABEL_DIFF_ID: applied.diff_id, LABEL_SIZE: str(applied.size)}
            try:
                sn.commit(target, key, labels=labels)
                self.created_layers.append(target)
            except Conflict:
                if self._committed_size(target) is None:
                    raise
                self._drop(key)
        except BaseException:
            self._drop(key)
            raise
        return applied

    def _drop(self, key: str) -> None:
        try:
            self.store.snapshotter.remove(key)
        except NotFound:
            pass

    def _known_pair(self, layer: LayerBlob) -> bool:
        if (layer.blob, layer.diff_id) in self.verified:
            return True
        return self.store.db.query_one(
            "SELECT 1 FROM image_layers WHERE blob = ? AND diff_id = ? LIMIT 1",
            (layer.blob, layer.diff_id),
        ) is not None

    def _verify_diff(self, layer: LayerBlob) -> None:
        """The layer is unpacked already; check that this blob really is that diff."""
        h = hashlib.sha256()
        with self.store.content.open(layer.blob) as f:
            head = f.read(8)
            f.seek(0)
            kind = detect(head)
            reader = decompressing_reader(f, kind) if kind else f
            try:
                while chunk := reader.read(_CHUNK):
                    h.update(chunk)
            except (OSError, EOFError, ValueError) as exc:
                raise InvalidArgument(f"{layer.where or layer.blob}: corrupt {kind} stream: {exc}") from None
            except Exception as exc:  # zstandard.ZstdError and the like
                raise InvalidArgument(f"{layer.where or layer.blob}: corrupt {kind} stream: {exc}") from None
        actual = "sha256:" + h.hexdigest()
        if actual != layer.diff_id:
            raise DigestMismatch(layer.where or f"layer {layer.blob}", layer.diff_id, actual)

    def _lease_layer(self, chain: str) -> None:
        if chain not in self.layers:
            self.layers.add(chain)
            self.store.lease(layers=[chain])

    def _committed_size(self, chain: str) -> int | None:
        try:
            info = self.store.snapshotter.stat(chain)
        except NotFound:
            return None
        if info.kind.value != "committed":
            return None
        try:
            return int(info.labels.get(LABEL_SIZE, "0"))
        except ValueError:
            return 0

    # ---------------------------------------------------------------- end

    def close(self) -> None:
        """Free what this operation created that no image names; drop the leases."""
        if self._closed:
            return
        self._closed = True
        try:
            self.store.free_unreferenced(
                blobs=sorted(self.created_blobs), layers=list(reversed(self.created_layers)),
                own_lease=True,
            )
        finally:
            self.store.release(blobs=self.blobs, layers=self.layers)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _layer_media_type(compression: str) -> str:
    return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}.get(compression, mt.OCI_LAYER)
