"""docker-archive (``docker save``/``load``) and OCI-layout archives.

Reading (:class:`ArchiveSource`): the stream (plain, gzip, zstd, bzip2 or xz) is read ONCE,
in order.  Small members (JSON documents) stay in memory; every larger member goes straight
into the content store through the load's staging (a ``blobs/sha256/<hex>`` member is
verified against its name on the way), so a layer's bytes are written once and then unpacked
from the page cache.  Once the stream ends, the images are read from ``manifest.json``
(docker-archive: Docker before 25 with ``<id>/layer.tar``, or Docker 25+ with an OCI layout
inside) or else from ``index.json`` (a plain OCI layout archive).

Paths in ``manifest.json`` are resolved inside the archive only: an absolute path, a ``..``
that climbs above the archive root or a symlink entry leading out is refused, naming the path;
symlink entries inside (Docker's legacy dirs link duplicated layers) are followed.

Writing (:class:`ArchiveWriter`): the docker-archive format of Docker 25+ (``blobs/sha256``,
``index.json``, ``manifest.json``, ``oci-layout``, ``repositories``), layers uncompressed,
deterministic: the same images saved twice give byte-identical archives.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from sampan.distribution import ocilayout
from sampan.distribution.copy import CopiedImage, Descriptor, Progress, SourceImage, copy
from sampan.distribution.local import LocalDestination, LocalSource, manifest_bytes
from sampan.distribution.tarstream import TarWriter, decompressed, iter_members
from sampan.errors import DigestMismatch, InvalidArgument, UnsafeArchiveEntry
from sampan.image import reference as refs
from sampan.image.store import ImageStore
from sampan.image.unpack import Staging
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt
from sampan.storage import compression

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
SMALL = 1 << 20
MEMORY_BUDGET = 64 << 20
MAX_LINKS = 40
_BLOB_NAME = re.compile(r"^blobs/(sha256)/([a-f0-9]{64})$")


@dataclass
class _Entry:
    type: bytes
    size: int = 0
    data: bytes | None = None
    digest: str | None = None
    linkname: str = ""


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


class ArchiveSource:
    """The images of a docker-archive or OCI-layout archive stream; see the module docstring."""

    def __init__(self, src: BinaryIO, staging: Staging) -> None:
        self._src = src
        self._staging = staging
        self._entries: dict[str, _Entry] = {}
        self._memory: dict[str, bytes] = {}
        self._scanned = False

    # ---------------------------------------------------------------- scanning

    def _scan(self) -> None:
        stream = decompressed(self._src)
        in_memory = 0
        count = 0
        for member, reader in iter_members(stream):
            count += 1
            name = _clean(member.name)
            if not name:
                continue
            entry = _Entry(type=member.type, size=member.size, linkname=member.linkname)
            if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
                match = _BLOB_NAME.match(name)
                expected = f"{match.group(1)}:{match.group(2)}" if match else None
                if member.size <= SMALL and in_memory + member.size <= MEMORY_BUDGET:
                    data = reader.read()
                    entry.data = data
                    entry.digest = dg.of_bytes(data)
                    if expected is not None and entry.digest != expected:
                        raise DigestMismatch(name, expected, entry.digest)
                    self._memory[entry.digest] = data
                    in_memory += member.size
                else:
                    entry.digest = self._staging.copy_blob(
                        reader, expected=expected, size=member.size,  # type: ignore[arg-type]
                        what=name,
                    )
            self._entries[name] = entry
        if count == 0:
            raise InvalidArgument("archive is empty (no tar entries)")
        self._scanned = True

    def resolve(self, path: Any, what: str) -> _Entry:
        """The regular-file entry ``path`` names inside the archive (symlinks followed)."""
        if not isinstance(path, str) or not path:
            raise InvalidArgument(f"{MANIFEST_FILE}: {what} path {path!r} is not a string")
        if path.startswith("/"):
            raise UnsafeArchiveEntry(path, f"{what} path is absolute, outside the archive", where=MANIFEST_FILE)
        pending = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if not done:
                    raise UnsafeArchiveEntry(path, f"{what} path leads outside the archive", where=MANIFEST_FILE)
                done.pop()
                continue
            current = "/".join([*done, part])
            entry = self._entries.get(current)
            if entry is not None and entry.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                hops += 1
                if hops > MAX_LINKS:
                    raise UnsafeArchiveEntry(path, f"{what} path has too many links", where=MANIFEST_FILE)
                target = entry.linkname
                if target.startswith("/"):
                    raise UnsafeArchiveEntry(
                        path, f"{what} path goes through link {current!r} to absolute {target!r}, outside the archive",
                        where=MANIFEST_FILE,
                    )
                base = done if entry.type == tarfile.SYMTYPE else []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                done = list(base)
                continue
            done.append(part)
        final = "/".join(done)
        entry = self._entries.get(final)
        if entry is None or entry.digest is None:
            raise InvalidArgument(f"{MANIFEST_FILE}: {what} {path!r} is not a file in the archive")
        match = _BLOB_NAME.match(final)
        if match and entry.digest != f"{match.group(1)}:{match.group(2)}":
            raise DigestMismatch(final, f"{match.group(1)}:{match.group(2)}", entry.digest)
        return entry

    def _read_small(self, entry: _Entry, what: str) -> bytes:
        if entry.data is not None:
            return entry.data
        assert entry.digest is not None
        if entry.size > 16 * SMALL:
            raise InvalidArgument(f"{what} is too large ({entry.size} bytes)")
        return self._staging.store.content.read_bytes(entry.digest)

    def _read_blob(self, desc: Descriptor) -> bytes:
        entry = self.resolve(ocilayout.blob_path(desc.digest), f"blob {desc.digest}")
        return self._read_small(entry, ocilayout.blob_path(desc.digest))

    # ---------------------------------------------------------------- images

    def images(self) -> list[SourceImage]:
        if not self._scanned:
            self._scan()
        if MANIFEST_FILE in self._entries:
            return self._docker_images()
        if ocilayout.INDEX_FILE in self._entries:
            index = self._read_small(self.resolve(ocilayout.INDEX_FILE, "index"), ocilayout.INDEX_FILE)
            return ocilayout.images_from_index(index, self._read_blob)
        raise InvalidArgument(
            "archive has neither manifest.json nor index.json: not a docker-archive or OCI layout"
        )

    def _docker_images(self) -> list[SourceImage]:
        raw = self._read_small(self.resolve(MANIFEST_FILE, "manifest"), MANIFEST_FILE)
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidArgument(f"{MANIFEST_FILE}: not valid JSON") from None
        if not isinstance(items, list):
            raise InvalidArgument(f"{MANIFEST_FILE}: not a JSON list")
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidArgument(f"{MANIFEST_FILE}: entry {n} is not an object")
            config = self.resolve(item.get("Config"), "Config")
            layer_paths = item.get("Layers")
            if not isinstance(layer_paths, list):
                raise InvalidArgument(f"{MANIFEST_FILE}: entry {n}: Layers is not a list")
            layers = []
            for path in layer_paths:
                entry = self.resolve(path, "Layer")
                assert entry.digest is not None
                layers.append(Descriptor(self._layer_media_type(entry), entry.digest, entry.size))
            tags = item.get("RepoTags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise InvalidArgument(f"{MANIFEST_FILE}: entry {n}: RepoTags is not a list of strings")
            references = [str(refs.parse(t)) for t in tags]
            assert config.digest is not None
            out.append(
                SourceImage(
                    config=Descriptor(mt.OCI_CONFIG, config.digest, config.size),
                    layers=layers,
                    references=references,
                    where=str(item.get("Config")),
                    layer_where=[f"layer {p}" for p in layer_paths],
                )
            )
        if not out:
            raise InvalidArgument(f"{MANIFEST_FILE}: names no image")
        return out

    def _layer_media_type(self, entry: _Entry) -> str:
        if entry.data is not None:
            head = entry.data[:8]
        else:
            assert entry.digest is not None
            with self._staging.store.content.open(entry.digest) as f:
                head = f.read(8)
        kind = compression.detect(head)
        return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}.get(kind, mt.OCI_LAYER)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        data = self._memory.get(desc.digest)
        if data is not None:
            return io.BytesIO(data)
        return self._staging.store.content.open(desc.digest)


class _HashingReader(io.RawIOBase):
    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._src.read(-1 if size is None else size)
        self.hash.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ArchiveWriter:
    """A copy destination that writes the Docker 25+ docker-archive format to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._tar = TarWriter(out)
        self._written: set[str] = set()
        self._manifests: list[dict[str, Any]] = []
        self._index: list[tuple[Descriptor, list[str]]] = []
        self._images: list[CopiedImage] = []
        self._tar.directory("blobs")
        self._tar.directory("blobs/sha256")

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self._written

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None:
        reader = _HashingReader(src)
        self._tar.file_stream(ocilayout.blob_path(desc.digest), reader, desc.size)  # type: ignore[arg-type]
        actual = "sha256:" + reader.hash.hexdigest()
        if actual != desc.digest:
            raise DigestMismatch(what, desc.digest, actual)
        self._written.add(desc.digest)

    def put_image(self, image: SourceImage, config: bytes, diff_ids: list[str]) -> None:
        manifest = manifest_bytes(image)
        desc = Descriptor(mt.OCI_MANIFEST, dg.of_bytes(manifest), len(manifest))
        if desc.digest not in self._written:
            self._tar.file_bytes(ocilayout.blob_path(desc.digest), manifest)
            self._written.add(desc.digest)
        self._manifests.append({
            "Config": ocilayout.blob_path(image.config.digest),
            "RepoTags": [refs.parse(r).familiar() for r in image.references] or None,
            "Layers": [ocilayout.blob_path(d.digest) for d in image.layers],
        })
        self._index.append((desc, image.references))
        self._images.append(CopiedImage(id=image.config.digest, references=image.references))

    def finish(self) -> list[CopiedImage]:
        self._tar.file_bytes(ocilayout.INDEX_FILE, ocilayout.index_bytes(self._index))
        self._tar.file_bytes(MANIFEST_FILE, json.dumps(self._manifests, separators=(",", ":")).encode())
        self._tar.file_bytes(ocilayout.LAYOUT_FILE, ocilayout.layout_bytes())
        repositories: dict[str, dict[str, str]] = {}
        for (desc, references), manifest in zip(self._index, self._manifests, strict=True):
            for text in references:
                ref = refs.parse(text)
                if ref.tag:
                    top = manifest["Layers"][-1] if manifest["Layers"] else desc.digest
                    repositories.setdefault(ref.familiar_name(), {})[ref.tag] = posixpath.basename(top)
        if repositories:
            self._tar.file_bytes(REPOSITORIES_FILE, json.dumps(repositories, separators=(",", ":")).encode())
        self._tar.close()
        return self._images

    def abort(self) -> None:
        pass


def load_archive(store: ImageStore, src: BinaryIO, *, on_progress: Progress | None = None) -> list[str]:
    """``docker load``: every image of the archive ``src`` into ``store``; returns the lines
    Docker prints ("Loaded image: busybox:latest", "Loaded image ID: sha256:...")."""
    destination = LocalDestination(store, on_progress=on_progress)
    source = ArchiveSource(src, destination.staging)
    lines: list[str] = []
    for image in copy(source, destination, on_progress=on_progress):
        lines += image.notes
        if image.references:
            lines += [f"Loaded image: {refs.parse(r).familiar()}" for r in image.references]
        else:
            lines.append(f"Loaded image ID: {image.id}")
    return lines


def save_archive(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    """``docker save``: the named images as a docker-archive with an OCI layout inside."""
    if not names:
        raise InvalidArgument("save needs at least one image name")
    source = LocalSource(store, names)
    source.images()  # resolve every name before writing a byte
    copy(source, ArchiveWriter(out))
