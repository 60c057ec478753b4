"""The local image store as a copy source and destination.

``LocalDestination`` writes blobs through a :class:`~sampan.image.unpack.Staging` (content
store, verified digests), unpacks layers into committed snapshots in ``put_image``, and adds
every image's rows in ONE transaction in ``finish``; ``abort`` (or a crash) leaves nothing an
image refers to.

``LocalSource`` offers images of the store by name, with their layers as uncompressed tars
(``application/vnd.oci.image.layer.v1.tar``, digest = diff_id), as ``docker save`` writes them.
"""

from __future__ import annotations

import io
import json
from typing import BinaryIO, cast

from sampan.distribution.copy import CopiedImage, Descriptor, Progress, SourceImage
from sampan.errors import InvalidReference, NoSuchImage, NotFound
from sampan.image import reference as refs
from sampan.image.store import Image, ImageStore, LayerRecord
from sampan.image.unpack import LayerBlob
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt
from sampan.storage import compression


class LocalDestination:
    def __init__(self, store: ImageStore, *, on_progress: Progress | None = None) -> None:
        self.store = store
        self.staging = store.staging()
        self.on_progress = on_progress
        self._pending: list[tuple[SourceImage, list[LayerRecord]]] = []

    def has_blob(self, desc: Descriptor) -> bool:
        self.staging.lease_blob(desc.digest)  # before looking, so no removal frees it meanwhile
        return self.store.content.exists(desc.digest)

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None:
        self.staging.copy_blob(src, expected=desc.digest, size=desc.size, what=what)

    def put_image(self, image: SourceImage, config: bytes, diff_ids: list[str]) -> None:
        layers = []
        for i, (desc, diff_id) in enumerate(zip(image.layers, diff_ids, strict=True)):
            where = image.layer_where[i] if i < len(image.layer_where) else f"layer {desc.digest}"
            layers.append(LayerBlob(blob=desc.digest, media_type=desc.media_type, diff_id=diff_id, where=where))
        records = self.staging.unpack(layers, on_layer=self._progress)
        self._pending.append((image, records))

    def _progress(self, layer: LayerBlob, done: bool) -> None:
        if self.on_progress is not None:
            size = self.store.content.size(layer.blob)
            self.on_progress({"status": "Loading layer", "id": dg.short(layer.diff_id),
                              "progressDetail": {"current": size if done else 0, "total": size}})

    def finish(self) -> list[CopiedImage]:
        out = []
        try:
            with self.store.lock, self.store.db.transaction():
                for image, records in self._pending:
                    added, notes = self.store.add_image(
                        image.config.digest, records, references=image.references,
                        manifest_digest=image.manifest_digest,
                    )
                    out.append(CopiedImage(id=added.id, references=list(image.references), notes=notes))
        finally:
            self.staging.close()
        return out

    def abort(self) -> None:
        self.staging.close()


def _images_for(store: ImageStore, names: list[str]) -> list[tuple[Image, list[str]]]:
    """Images to save with the references each carries, in the order first named.

    ``busybox:1`` saves that tag; ``busybox`` (no tag) every tag of the repository; an ID no tag.
    """
    order: list[str] = []
    tags: dict[str, list[str]] = {}
    for name in names:
        selected: list[tuple[str, str]] = []
        try:
            ref = refs.parse(name, default_tag=False)
        except InvalidReference:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None:
            rows = store.db.query(
                "SELECT ref, image_id FROM refs WHERE kind = 'tag' AND ref LIKE ? ESCAPE '\\'"
                " ORDER BY ref", (_like_prefix(ref.name + ":"),),
            )
            selected = [(str(r["image_id"]), str(r["ref"])) for r in rows]
        if not selected:
            image_id = store.resolve(name)
            ref_text = ""
            if ref is not None:
                full = refs.parse(name)
                row = store.db.query_one("SELECT 1 FROM refs WHERE ref = ? AND kind = 'tag'", (str(full),))
                if row is not None:
                    ref_text = str(full)
            selected = [(image_id, ref_text)]
        for image_id, ref_text in selected:
            if image_id not in tags:
                order.append(image_id)
                tags[image_id] = []
            if ref_text and ref_text not in tags[image_id]:
                tags[image_id].append(ref_text)
    return [(store.get(i), tags[i]) for i in order]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class LocalSource:
    def __init__(self, store: ImageStore, names: list[str]) -> None:
        self.store = store
        self.names = names
        self._layers: dict[str, LayerRecord] = {}

    def images(self) -> list[SourceImage]:
        out = []
        for image, references in _images_for(self.store, self.names):
            config_size = self.store.content.size(image.id)
            layers = []
            for layer in image.layers:
                self._layers.setdefault(layer.diff_id, layer)
                layers.append(Descriptor(mt.OCI_LAYER, layer.diff_id, layer.size))
            out.append(
                SourceImage(
                    config=Descriptor(mt.OCI_CONFIG, image.id, config_size),
                    layers=layers,
                    references=references,
                    where=image.id,
                    layer_where=[f"layer {d}" for d in image.diff_ids],
                )
            )
        return out

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        layer = self._layers.get(desc.digest)
        if layer is None or layer.blob == layer.diff_id:
            try:
                return self.store.content.open(desc.digest)
            except NotFound:
                if layer is None:
                    raise NoSuchImage(desc.digest) from None
        assert layer is not None
        f = self.store.content.open(layer.blob)
        head = f.read(8)
        f.seek(0)
        kind = compression.detect(head)
        return cast(BinaryIO, _Owning(compression.decompressing_reader(f, kind), f)) if kind else f


class _Owning(io.RawIOBase):
    """A reader that also closes the file under it (decompressing readers do not)."""

    def __init__(self, reader: BinaryIO, under: BinaryIO) -> None:
        super().__init__()
        self._reader = reader
        self._under = under

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._reader.read(-1 if size is None else size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self._under.close()
            super().close()


def manifest_bytes(image: SourceImage) -> bytes:
    """The OCI manifest sampan writes for an image (deterministic bytes)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": image.config.to_json(),
        "layers": [d.to_json() for d in image.layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()
