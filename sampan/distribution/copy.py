"""One copy routine between image locations (as containers/image ``copy/``).

A *source* lists images (config and layer descriptors, the references they carry) and opens
blobs; a *destination* receives blobs, then each image, then finishes (or aborts).  Pull,
push, save and load are all ``copy(source, destination)``:

=========================  ==============================  ===============================
operation                  source                          destination
=========================  ==============================  ===============================
``docker load``            ``dockerarchive.ArchiveSource`` ``local.LocalDestination``
``docker save``            ``local.LocalSource``           ``dockerarchive.ArchiveWriter``
pull / push (registries)   registry / ``LocalSource``      ``LocalDestination`` / registry
=========================  ==============================  ===============================

Every blob is verified against its digest on the way (a destination writes blobs through the
content store or hashes them), and the destination makes the result visible only in
``finish()`` (one database transaction for the local store).  On any error the routine calls
``abort()``, which leaves the destination as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from sampan.errors import InvalidArgument
from sampan.oci import digest as dg

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass
class SourceImage:
    """One image a source offers.

    ``layers[i]`` is the blob of the layer whose diff_id is ``config.rootfs.diff_ids[i]``;
    ``where`` names each place for error messages (an archive path, a URL).
    """

    config: Descriptor
    layers: list[Descriptor]
    references: list[str] = field(default_factory=list)
    manifest_digest: str | None = None
    where: str = ""
    layer_where: list[str] = field(default_factory=list)


@dataclass
class CopiedImage:
    id: str
    references: list[str]
    notes: list[str] = field(default_factory=list)


class ImageSource(Protocol):
    def images(self) -> list[SourceImage]: ...

    def open_blob(self, desc: Descriptor) -> BinaryIO: ...


class ImageDestination(Protocol):
    def has_blob(self, desc: Descriptor) -> bool: ...

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None: ...

    def put_image(self, image: SourceImage, config: bytes, diff_ids: list[str]) -> None: ...

    def finish(self) -> list[CopiedImage]: ...

    def abort(self) -> None: ...


def read_config(source: ImageSource, image: SourceImage) -> tuple[bytes, list[str]]:
    """The config bytes (digest checked) and its diff_ids (count checked against the layers)."""
    with source.open_blob(image.config) as f:
        data = f.read()
    actual = dg.of_bytes(data)
    if actual != image.config.digest:
        from sampan.errors import DigestMismatch

        raise DigestMismatch(f"image config {image.where}", image.config.digest, actual)
    try:
        config = json.loads(data)
        diff_ids = list(config["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidArgument(f"image config {image.where}: not a valid image config") from None
    if not all(isinstance(d, str) and dg.is_digest(d) for d in diff_ids):
        raise InvalidArgument(f"image config {image.where}: malformed rootfs.diff_ids")
    if len(diff_ids) != len(image.layers):
        raise InvalidArgument(
            f"image {image.where}: config lists {len(diff_ids)} layers (rootfs.diff_ids) "
            f"but the manifest has {len(image.layers)}"
        )
    return data, diff_ids


def copy(
    source: ImageSource,
    destination: ImageDestination,
    *,
    on_progress: Progress | None = None,
    parallel: int = 1,
) -> list[CopiedImage]:
    """Copy every image of ``source`` into ``destination``; see the module docstring.

    ``parallel`` > 1 moves up to that many layer blobs of an image at once (worker threads:
    both sides must then accept concurrent ``open_blob``/``put_blob`` calls).
    """
    try:
        images = source.images()
        configs = [read_config(source, image) for image in images]  # validate all first
        for image, (config, diff_ids) in zip(images, configs, strict=True):
            jobs: list[tuple[int, Descriptor, str]] = []
            for i, desc in enumerate([*image.layers, image.config]):
                if any(desc.digest == j[1].digest for j in jobs) or destination.has_blob(desc):
                    continue
                what = image.layer_where[i] if i < len(image.layer_where) else f"blob {desc.digest}"
                jobs.append((i, desc, what))
            _transfer(source, destination, image, jobs, on_progress, parallel)
            destination.put_image(image, config, diff_ids)
        return destination.finish()
    except BaseException:
        destination.abort()
        raise


def _transfer(
    source: ImageSource,
    destination: ImageDestination,
    image: SourceImage,
    jobs: list[tuple[int, Descriptor, str]],
    on_progress: Progress | None,
    parallel: int,
) -> None:
    def one(job: tuple[int, Descriptor, str]) -> None:
        i, desc, what = job
        if on_progress is not None and i < len(image.layers):
            on_progress({"status": "Copying blob", "id": dg.short(desc.digest),
                         "progressDetail": {"current": 0, "total": desc.size}})
        with source.open_blob(desc) as f:
            destination.put_blob(desc, f, what=what)

    if parallel <= 1 or len(jobs) <= 1:
        for job in jobs:
            one(job)
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="copy") as pool:
        futures = [pool.submit(one, job) for job in jobs]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
