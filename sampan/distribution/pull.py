"""Pull: ``copy(RegistrySource -> LocalDestination)`` with Docker's progress messages.

:class:`RegistrySource` resolves a reference to one image manifest (from an index or manifest
list it picks linux/amd64 or the requested platform), fetches the config, and opens layer blobs
as resumable, digest-checked downloads (``registry.BlobReader``).  The copy routine moves up to
``max-concurrent-downloads`` layers at once; the local destination stores them through the
content store and unpacks them; the image's rows land in one transaction at the end.

Progress (as ``docker pull``)::

    {"status": "Pulling from library/busybox", "id": "latest"}
    {"status": "Pulling fs layer", "id": "<layer>"}        one per layer, then "Waiting" beyond
    {"status": "Already exists", "id": "<layer>"}          the concurrency limit
    {"status": "Downloading", "id": ..., "progressDetail": {"current": n, "total": t}}
    {"status": "Verifying Checksum"}, {"status": "Download complete"}
    {"status": "Extracting", ...}, {"status": "Pull complete", "id": ...}
    {"status": "Digest: sha256:..."}
    {"status": "Status: Downloaded newer image for busybox:latest"}
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sampan.distribution.copy import Descriptor, Progress, SourceImage, copy
from sampan.distribution.local import LocalDestination
from sampan.distribution.registry import BlobReader, Repository
from sampan.errors import InvalidArgument, NotFound, from_oserror
from sampan.image import config as cfg
from sampan.image import reference as refs
from sampan.image.store import ImageStore
from sampan.image.unpack import LayerBlob
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt

_PROGRESS_INTERVAL = 0.1
_CHUNK = 1 << 20


@dataclass
class PullResult:
    image_id: str
    reference: str  # familiar: busybox:latest
    digest: str  # the manifest digest pulled
    downloaded: bool  # False: the image was up to date


def choose_platform(index: dict[str, Any], platform: str, *, what: str) -> dict[str, Any]:
    """The manifest descriptor of an index for ``platform`` (default: the host's, linux/amd64)."""
    want_os, want_arch, want_variant = cfg.parse_platform(platform)
    candidates = []
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if desc.get("mediaType") not in mt.MANIFESTS and desc.get("mediaType") is not None:
            continue
        if p.get("os") != want_os or p.get("architecture") != want_arch:
            continue
        if want_variant and p.get("variant", "") != want_variant:
            continue
        candidates.append(desc)
    if not candidates:
        wanted = "/".join(x for x in (want_os, want_arch, want_variant) if x)
        raise NotFound(f"{what}: no matching manifest for {wanted} in the manifest list entries")
    return dict(candidates[0])


class PullProgress:
    """Turns blob and unpack events into Docker's pull messages; thread-safe."""

    def __init__(self, emit: Progress | None) -> None:
        self.emit = emit
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.by_diff: dict[str, str] = {}  # short diff_id -> short blob id
        self.quiet: set[str] = set()  # layers that were there already: no unpack messages

    def send(self, status: str, ident: str = "", detail: dict[str, int] | None = None, *, layer: bool = True) -> None:
        """One message; a layer's carries ``progressDetail`` (empty at least), as dockerd's do,
        so that a terminal keeps one line per layer."""
        if self.emit is None or (ident in self.quiet and layer):
            return
        msg: dict[str, Any] = {"status": status}
        if detail is not None or (ident and layer):
            msg["progressDetail"] = detail or {}
        if ident:
            msg["id"] = ident
        with self._lock:
            self.emit(msg)

    def downloading(self, ident: str, total: int) -> Any:
        def on_bytes(current: int) -> None:
            now = time.monotonic()
            if current < total and now - self._last.get(ident, 0.0) < _PROGRESS_INTERVAL:
                return
            self._last[ident] = now
            self.send("Downloading", ident, {"current": current, "total": total})
            if current >= total:
                self.send("Verifying Checksum", ident)
                self.send("Download complete", ident)

        return on_bytes

    def unpacking(self, message: dict[str, Any]) -> None:
        ident = self.by_diff.get(str(message.get("id")), str(message.get("id")))
        detail = message.get("progressDetail") or {}
        self.send("Extracting", ident, {"current": int(detail.get("current") or 0),
                                        "total": int(detail.get("total") or 0)})
        if detail.get("current") and detail.get("current") == detail.get("total"):
            self.send("Pull complete", ident)


class RegistrySource:
    """One image of a registry repository as a copy source; see the module docstring."""

    def __init__(self, repo: Repository, ref: refs.Reference, *, tmp: Path, platform: str = "",
                 progress: PullProgress | None = None, have: Any = None, parallel: int = 3) -> None:
        self.repo = repo
        self.ref = ref
        self.tmp = tmp
        self.platform = platform
        self.progress = progress or PullProgress(None)
        self.have = have or (lambda digest: False)
        self.have_image: Any = lambda image_id: False
        self.parallel = parallel
        self.manifest_digest = ""
        self.manifest = b""
        self.config = b""
        self._image: SourceImage | None = None

    @property
    def what(self) -> str:
        return self.ref.familiar()

    def images(self) -> list[SourceImage]:
        if self._image is not None:
            return [self._image]
        reference = self.ref.digest or self.ref.tag or "latest"
        data, media_type, digest = self.repo.get_manifest(reference, what=self.what)
        self.manifest_digest = digest  # what `docker pull` reports: the index's digest, if any
        if media_type in mt.INDEXES:
            desc = choose_platform(json.loads(data), self.platform, what=self.what)
            data, media_type, _ = self.repo.get_manifest(str(desc.get("digest")), what=self.what)
        doc = json.loads(data)
        self.manifest = data
        try:
            config = _descriptor(doc["config"])
            layers = [_descriptor(d) for d in doc["layers"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(f"{self.what}: malformed image manifest") from None
        if config.media_type not in mt.CONFIGS:
            raise InvalidArgument(f"{self.what}: unsupported config media type {config.media_type!r} "
                                  "(not a container image)")
        for layer in layers:
            if layer.media_type not in mt.LAYERS and layer.media_type != mt.DOCKER_FOREIGN_LAYER:
                raise InvalidArgument(f"{self.what}: unsupported layer media type {layer.media_type!r}")
        with self.repo.open_blob(config, tmp=self.tmp, what=f"{self.what} config") as f:
            self.config = f.read()
        references = [str(self.ref)] if self.ref.tag and not self.ref.digest else []
        references.append(str(self.ref.with_digest(self.manifest_digest)))
        self._image = SourceImage(
            config=config, layers=layers, references=references, manifest_digest=self.manifest_digest,
            where=self.what, layer_where=[f"{self.what} layer {d.digest}" for d in layers],
        )
        if self.ref.tag and not self.ref.digest:
            self.progress.send(f"Pulling from {self.ref.path}", self.ref.tag, layer=False)
        self._announce(layers)
        return [self._image]

    def _announce(self, layers: list[Descriptor]) -> None:
        try:
            diff_ids = json.loads(self.config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            diff_ids = []
        for layer, diff_id in zip(layers, diff_ids, strict=False):
            self.progress.by_diff[dg.short(str(diff_id))] = dg.short(layer.digest)
        waiting = 0
        if self.have_image(self._image.config.digest if self._image else ""):
            self.progress.quiet.update(dg.short(la.digest) for la in layers)
            return  # up to date: dockerd lists no layers
        for layer in layers:
            if self.have(layer.digest):
                self.progress.send("Already exists", dg.short(layer.digest))
                self.progress.quiet.add(dg.short(layer.digest))
            else:
                self.progress.send("Pulling fs layer", dg.short(layer.digest))
                waiting += 1
        if waiting > self.parallel:
            missing = [la for la in layers if not self.have(la.digest)]
            for layer in missing[self.parallel:]:
                self.progress.send("Waiting", dg.short(layer.digest))

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        if self._image is not None and desc.digest == self._image.config.digest and self.config:
            return io.BytesIO(self.config)
        ident = dg.short(desc.digest)
        return self.repo.open_blob(desc, tmp=self.tmp, what=f"{self.what} layer {desc.digest}",
                                   on_bytes=self.progress.downloading(ident, desc.size))


class PullDestination(LocalDestination):
    """The local store, extracting a layer while it downloads when its parent is in place
    (else it is stored and unpacked in ``put_image``, in order, as ``LocalDestination`` does)."""

    def __init__(self, store: ImageStore, *, on_progress: Progress | None = None) -> None:
        super().__init__(store, on_progress=on_progress)
        self.plan: dict[str, tuple[LayerBlob, str, str | None]] = {}  # blob -> (layer, chain, parent)

    def plan_image(self, image: SourceImage, config: bytes) -> None:
        try:
            diff_ids = [str(d) for d in json.loads(config)["rootfs"]["diff_ids"]]
        except (ValueError, KeyError, TypeError):
            return  # the copy routine reports a bad config
        if len(diff_ids) != len(image.layers) or not all(dg.is_digest(d) for d in diff_ids):
            return
        parent: str | None = None
        for i, (desc, chain) in enumerate(zip(image.layers, dg.chain_ids(diff_ids), strict=True)):
            where = image.layer_where[i] if i < len(image.layer_where) else f"layer {desc.digest}"
            layer = LayerBlob(blob=desc.digest, media_type=desc.media_type, diff_id=diff_ids[i], where=where)
            self.plan.setdefault(desc.digest, (layer, chain, parent))
            parent = chain

    def _committed(self, chain: str | None) -> bool:
        if chain is None:
            return True
        try:
            return self.store.snapshotter.stat(chain).kind.value == "committed"
        except NotFound:
            return False

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None:
        download = getattr(src, "raw", None)
        blob_file: Path | None = None
        if isinstance(download, BlobReader) and download.verifies:
            # the download writes and checks the blob in tmp/ itself: adopt it, no 2nd copy
            download.keep_partial = True
            blob_file = download.partial
        planned = self.plan.get(desc.digest)
        if planned is None or not self._committed(planned[2]):
            if blob_file is None:
                super().put_blob(desc, src, what=what)
                return
            while src.read(_CHUNK):
                pass
            self.staging.adopt_blob(blob_file, expected=desc.digest, what=what, verified=True)
            return
        layer, chain, parent = planned
        self.staging.unpack_blob_stream(src, layer, chain=chain, parent=parent, size=desc.size, blob_file=blob_file)


def _has_image(store: ImageStore, image_id: str) -> bool:
    return store.db.query_one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is not None


def _descriptor(d: dict[str, Any]) -> Descriptor:
    digest = str(d["digest"])
    dg.validate(digest)
    size = int(d["size"])
    if size < 0:
        raise ValueError("negative size")
    return Descriptor(str(d.get("mediaType") or mt.OCI_LAYER_GZIP), digest, size)


def pull_image(
    store: ImageStore,
    repo: Repository,
    ref: refs.Reference,
    *,
    platform: str = "",
    parallel: int = 3,
    on_progress: Progress | None = None,
) -> PullResult:
    """Pull one reference into ``store`` (blobs verified, layers unpacked, rows in one go)."""
    progress = PullProgress(on_progress)
    shown = ref.familiar()
    try:
        before = store.resolve(str(ref))
    except NotFound:
        before = None
    source = RegistrySource(repo, ref, tmp=store.content.tmp, platform=platform, progress=progress,
                            have=store.content.exists, parallel=parallel)
    destination = PullDestination(store, on_progress=progress.unpacking)
    source.have_image = lambda image_id: _has_image(store, image_id)
    [image] = source.images()
    destination.plan_image(image, source.config)
    try:
        copied = copy(source, destination, parallel=parallel)
    except OSError as exc:  # the disk (full, read-only): one line naming the image
        raise from_oserror(exc, f"pull {shown}") from None
    image_id = copied[0].id
    progress.send(f"Digest: {source.manifest_digest}")
    downloaded = before != image_id
    status = "Downloaded newer image for" if downloaded else "Image is up to date for"
    progress.send(f"Status: {status} {shown}")
    return PullResult(image_id=image_id, reference=shown, digest=source.manifest_digest, downloaded=downloaded)
