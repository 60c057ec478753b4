"""Push: ``copy(PushSource -> RegistryDestination)`` with Docker's progress messages.

:class:`PushSource` offers one image of the local store with its layers *compressed* (gzip,
Docker's media types, by default): a layer whose stored blob is already compressed that way is
pushed as is; any other is compressed once (deterministic bytes: mtime 0, fixed level) into
the content store and remembered (``metadata.py``), so a second push recompresses nothing and
the same image always pushes to the same manifest digest.

:class:`RegistryDestination` skips blobs the repository has (``HEAD``), mounts blobs known to be
in another repository of the same registry (``?mount=&from=``), and otherwise uploads them in
one ``PUT`` (monolithic) or in ``PATCH`` chunks of ``chunk_size`` bytes.  ``finish`` puts the
manifest under the tag and returns its digest and size (the ``aux`` of ``docker push``).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from sampan.distribution.copy import CopiedImage, Descriptor, Progress, SourceImage, copy
from sampan.distribution.metadata import Metadata
from sampan.distribution.registry import Repository
from sampan.distribution.upload import StreamUpload, Uploader
from sampan.errors import InvalidArgument, SampanError, from_oserror
from sampan.image import reference as refs
from sampan.image.store import Image, ImageStore, LayerRecord
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt
from sampan.storage import compression as comp

_CHUNK = 1 << 20
_LAYER_TYPES = {
    (True, "gzip"): mt.DOCKER_LAYER_GZIP, (True, ""): mt.DOCKER_LAYER,
    (False, "gzip"): mt.OCI_LAYER_GZIP, (False, "zstd"): mt.OCI_LAYER_ZSTD, (False, ""): mt.OCI_LAYER,
}


@dataclass
class PushResult:
    tag: str
    digest: str
    size: int


class _Sink:
    """A file-like front of a content writer (and a streamed upload) for ``compressing_writer``."""

    def __init__(self, writer: Any, stream: StreamUpload | None) -> None:
        self.writer = writer
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.writer.write(data)
        if self.stream is not None:
            self.stream.feed(data)
        return len(data)

    def flush(self) -> None:
        pass


class PushSource:
    """One local image, layers compressed for a registry; see the module docstring."""

    def __init__(self, store: ImageStore, image: Image, reference: str, *, compression: str = "gzip",
                 emit: Progress | None = None, parallel: int = 3) -> None:
        if compression not in ("gzip", "zstd", ""):
            raise InvalidArgument(f"unsupported push compression {compression!r}")
        self.store = store
        self.image = image
        self.reference = reference
        self.compression = compression
        self.emit = emit
        self.parallel = parallel
        self.meta = Metadata(store)
        self.docker_types = compression != "zstd"
        self.diff_of: dict[str, str] = {}  # blob digest -> diff_id
        self.early: RegistryDestination | None = None  # uploads layers while compressing them

    def _layer(self, layer: LayerRecord) -> Descriptor:
        with self.store.content.open(layer.blob) as f:
            kind = comp.detect(f.read(8))
        if kind == self.compression and self.store.content.exists(layer.blob):
            blob, size = layer.blob, layer.blob_size
        else:
            cached = self.meta.compressed(layer.diff_id, self.compression)
            blob, size = cached if cached is not None else self._compress(layer, kind)
        self.diff_of[blob] = layer.diff_id
        return Descriptor(_LAYER_TYPES[(self.docker_types, self.compression)], blob, size)

    def _compress(self, layer: LayerRecord, kind: str) -> tuple[str, int]:
        """Compress a layer into the content store, uploading it at the same time when a
        destination is attached (``early``)."""
        what = f"layer {layer.diff_id}"
        stream = self.early.stream(dg.short(layer.diff_id), what) if self.early is not None else None
        try:
            with self.store.content.open(layer.blob) as f:
                reader = comp.decompressing_reader(f, kind) if kind else f
                with self.store.content.writer(what=what) as w:
                    out = comp.compressing_writer(_Sink(w, stream), self.compression)  # type: ignore[arg-type]
                    while chunk := reader.read(_CHUNK):
                        out.write(chunk)
                    out.close()
                    size = w.written
                    blob = w.commit()
        except BaseException:
            if stream is not None:
                stream.abandon()
            raise
        self.meta.remember_compressed(self.image.id, layer.diff_id, self.compression, blob, size)
        if stream is not None and self.early is not None and stream.finish(blob):
            self.early.streamed.add(blob)
        return blob, size

    def images(self) -> list[SourceImage]:
        for layer in self.image.layers:
            self._send("Preparing", dg.short(layer.diff_id))
        for layer in self.image.layers[max(1, self.parallel):]:  # queued behind the parallel ones
            self._send("Waiting", dg.short(layer.diff_id))
        with ThreadPoolExecutor(max_workers=max(1, self.parallel), thread_name_prefix="compress") as pool:
            layers = list(pool.map(self._layer, self.image.layers))
        config_type = mt.DOCKER_CONFIG if self.docker_types else mt.OCI_CONFIG
        config = Descriptor(config_type, self.image.id, self.store.content.size(self.image.id))
        return [SourceImage(
            config=config, layers=layers, references=[self.reference], where=self.reference,
            layer_where=[f"{self.reference} layer {d.digest}" for d in layers],
        )]

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.store.content.open(desc.digest)

    def _send(self, status: str, ident: str = "", detail: dict[str, int] | None = None) -> None:
        if self.emit is not None:
            self.emit({"status": status, **({"progressDetail": detail or {}, "id": ident} if ident else {})})


_FINAL = ("Pushed", "Layer already exists")


def manifest_for(image: SourceImage, *, docker_types: bool) -> tuple[bytes, str]:
    """The manifest bytes, byte for byte as dockerd writes them (Go's ``MarshalIndent`` with
    three spaces, descriptor keys mediaType, size, digest): the same image pushed by docker and
    by sampan gets the same manifest digest."""
    media_type = mt.DOCKER_MANIFEST if docker_types else mt.OCI_MANIFEST

    def desc(d: Descriptor) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": d.digest}
        if d.annotations:
            out["annotations"] = dict(d.annotations)
        return out

    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": desc(image.config),
        "layers": [desc(d) for d in image.layers],
    }
    return json.dumps(doc, indent=3).encode(), media_type


class RegistryDestination:
    """Blobs and one manifest into a registry repository; see the module docstring."""

    def __init__(self, repo: Repository, tag: str, *, source: PushSource, chunk_size: int = 0,
                 emit: Progress | None = None) -> None:
        self.repo = repo
        self.tag = tag
        self.source = source
        self.uploader = Uploader(repo, chunk_size=chunk_size)
        self.streamed: set[str] = set()  # blobs uploaded while they were compressed
        self.emit = emit
        self.meta = source.meta
        self._manifest: tuple[bytes, str] | None = None
        self._image: SourceImage | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()  # layers whose final status was sent
        self.result: PushResult | None = None

    def _ident(self, desc: Descriptor) -> str:
        return dg.short(self.source.diff_of.get(desc.digest, desc.digest))

    def _send(self, status: str, ident: str = "", detail: dict[str, int] | None = None) -> None:
        if self.emit is not None:
            with self._lock:
                if ident and (status in _FINAL or status.startswith("Mounted from ")):
                    # an image listing one layer twice: dockerd's upload manager sends its final
                    # status once (both were "Preparing")
                    if ident in self._reported:
                        return
                    self._reported.add(ident)
                self.emit({"status": status, **({"progressDetail": detail or {}, "id": ident} if ident else {})})

    def has_blob(self, desc: Descriptor) -> bool:
        if desc.digest in self.streamed:
            self._send("Pushed", self._ident(desc))
            return True
        if self.repo.blob_exists(desc.digest):
            if desc.digest in self.source.diff_of:
                self._send("Layer already exists", self._ident(desc))
            return True
        return False

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None:
        ident = self._ident(desc) if desc.digest in self.source.diff_of else ""
        for other in self.meta.repos_of(desc.digest, self.repo.host):
            if other == self.repo.path:
                continue
            location = self.uploader.start(mount=desc.digest, source_repo=other, what=what)
            if location is None:
                if ident:
                    self._send(f"Mounted from {other}", ident)
                return
            self._upload(location, desc, src, ident, what)
            return
        location = self.uploader.start(what=what)
        assert location is not None
        self._upload(location, desc, src, ident, what)

    def _upload(self, location: str, desc: Descriptor, src: BinaryIO, ident: str, what: str) -> None:
        def on_bytes(n: int) -> None:
            if ident and (n == desc.size or n % (8 << 20) < _CHUNK):
                self._send("Pushing", ident, {"current": n, "total": desc.size})

        self.uploader.upload(location, desc.digest, desc.size, src, what=what, on_bytes=on_bytes)
        if ident:
            self._send("Pushed", ident)

    def stream(self, ident: str, what: str) -> StreamUpload | None:
        """An upload fed while the layer is being compressed (None if it cannot start)."""
        def on_bytes(n: int) -> None:
            if n % (8 << 20) < _CHUNK:
                self._send("Pushing", ident, {"current": n})

        try:
            return StreamUpload(self.uploader, what=what, on_bytes=on_bytes)
        except SampanError:
            return None

    def put_image(self, image: SourceImage, config: bytes, diff_ids: list[str]) -> None:
        self._image = image
        self._manifest = manifest_for(image, docker_types=self.source.docker_types)

    def finish(self) -> list[CopiedImage]:
        assert self._manifest is not None and self._image is not None
        data, media_type = self._manifest
        digest = self.repo.put_manifest(self.tag, data, media_type, what=f"push {self.repo.name}:{self.tag}")
        blobs = [self._image.config.digest, *(d.digest for d in self._image.layers)]
        self.meta.remember_repo(blobs, self.repo.host, self.repo.path)
        self.result = PushResult(self.tag, digest, len(data))
        self._send(f"{self.tag}: digest: {digest} size: {len(data)}")
        return [CopiedImage(id=self._image.config.digest, references=list(self._image.references))]

    def abort(self) -> None:
        pass


def push_image(
    store: ImageStore,
    repo: Repository,
    ref: refs.Reference,
    *,
    compression: str = "gzip",
    chunk_size: int = 0,
    parallel: int = 5,
    on_progress: Progress | None = None,
) -> PushResult:
    """Push the local image ``ref`` names to ``repo`` under ``ref.tag``."""
    if ref.tag is None:
        raise InvalidArgument(f"push {ref.familiar()}: a tag is needed")
    image = store.get(str(ref))
    source = PushSource(store, image, str(ref), compression=compression, emit=on_progress, parallel=parallel)
    destination = RegistryDestination(repo, ref.tag, source=source, chunk_size=chunk_size, emit=on_progress)
    if not chunk_size:
        source.early = destination
    try:
        copy(source, destination, parallel=parallel)
    except OSError as exc:
        raise from_oserror(exc, f"push {ref.familiar()}") from None
    assert destination.result is not None
    return destination.result
