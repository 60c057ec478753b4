"""The registry's storage directory: blobs by digest, repositories as small link files.

Layout (everything below ``<root>``)::

    blobs/sha256/<hex>                                   every blob and manifest, by digest
    _uploads/<id>/{data,repo}                            an upload in progress
    _uploads/_tmp/                                       temporaries of manifest writes
    repositories/<name>/_layers/sha256/<hex>             blob linked into <name> (empty file)
    repositories/<name>/_manifests/revisions/sha256/<hex> manifest in <name> (holds its media type)
    repositories/<name>/_manifests/tags/<tag>            tag -> digest
    repositories/<name>/_referrers/<subject hex>/<hex>   referrer descriptor (JSON)
    _gc.lock                                             writers hold it shared, gc exclusive

Vocabulary: a *blob* exists once in ``blobs/``; a repository sees it only through a *link*.
Deleting a blob or manifest through the API removes links; ``gc`` frees unlinked bytes.

Every file lands atomically (write a temporary, fsync, rename): a blob only after its digest
was checked, so two uploads of one blob race harmlessly (the second rename replaces identical
bytes, or finds the blob and drops its own copy).  A writer that finishes an upload, mounts a
blob or writes a manifest holds ``_gc.lock`` shared and touches the blobs it relies on, so a
concurrent gc (exclusive lock, sweeps only blobs older than its start) never frees them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sampan.distribution.server import manifest as mf
from sampan.distribution.server.errors import Problem, RegistryError
from sampan.oci import digest as dg
from sampan.storage.content import ContentStore

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_CHUNK = 1 << 20


def check_name(name: str) -> str:
    if len(name) > 255 or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}", detail={"name": name})
    return name


def check_digest(digest: str, code: str = "DIGEST_INVALID") -> str:
    if not dg.is_digest(digest):
        raise RegistryError(code, f"invalid digest {digest!r}", detail={"digest": digest})
    return digest


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def _hexof(digest: str) -> tuple[str, str]:
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


class Upload:
    """One blob upload: bytes appended in order to ``<dir>/data``, hashed as they arrive."""

    def __init__(self, directory: Path, name: str, *, size: int = 0, hasher: Any = None) -> None:
        self.id = directory.name
        self.dir = directory
        self.name = name
        self.path = directory / "data"
        self.size = size
        self._hash = hasher if hasher is not None else hashlib.sha256()

    def write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)
        self._hash.update(data)
        self.size += len(data)

    def open_append(self) -> Any:
        return open(self.path, "ab")

    def feed(self, f: Any, data: bytes) -> None:
        """Append ``data`` through a file opened by :meth:`open_append`."""
        f.write(data)
        self._hash.update(data)
        self.size += len(data)

    def digest(self, algorithm: str) -> str:
        if algorithm == "sha256":
            return "sha256:" + self._hash.hexdigest()
        h = hashlib.new(algorithm)
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        return f"{algorithm}:{h.hexdigest()}"


class RegistryStorage:
    """The storage directory; see the module docstring.  Blocking calls: run them off the loop."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads_dir = root / "_uploads"
        self.repos_dir = root / "repositories"
        self.content = ContentStore(root, self.uploads_dir / "_tmp")
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[str, Upload] = {}

    # ------------------------------------------------------------ locking

    @contextmanager
    def lock(self, exclusive: bool = False) -> Iterator[None]:
        """``_gc.lock``: shared for writers, exclusive for gc's mark and sweep."""
        fd = os.open(self.root / "_gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _touch(self, digest: str) -> None:
        try:
            os.utime(self.content.path(digest))
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------ repositories

    def repo_dir(self, name: str) -> Path:
        return self.repos_dir / check_name(name)

    def repo_exists(self, name: str) -> bool:
        d = self.repo_dir(name)
        return (d / "_manifests").is_dir() or (d / "_layers").is_dir()

    def repositories(self) -> list[str]:
        out: list[str] = []

        def walk(d: Path, prefix: str) -> None:
            try:
                entries = list(os.scandir(d))
            except FileNotFoundError:
                return
            names = {e.name for e in entries}
            if prefix and ("_manifests" in names or "_layers" in names):
                out.append(prefix)
            for e in entries:
                if e.is_dir() and not e.name.startswith(("_", ".")):
                    walk(Path(e.path), f"{prefix}/{e.name}" if prefix else e.name)

        walk(self.repos_dir, "")
        return sorted(out)

    # ------------------------------------------------------------ blobs

    def _layer_link(self, name: str, digest: str) -> Path:
        algo, hexpart = _hexof(check_digest(digest))
        return self.repo_dir(name) / "_layers" / algo / hexpart

    def blob_visible(self, name: str, digest: str) -> bool:
        """Whether ``digest`` exists and is linked into ``name`` (as a blob or a manifest)."""
        if not self.content.exists(digest):
            return False
        return self._layer_link(name, digest).exists() or self._revision(name, digest).exists()

    def blob_path(self, name: str, digest: str) -> Path:
        if not self.blob_visible(name, digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to {name}", detail={"digest": digest})
        return self.content.path(digest)

    def link_blob(self, name: str, digest: str) -> None:
        link = self._layer_link(name, digest)
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(link, b"")

    def mount_blob(self, name: str, digest: str, source: str | None) -> bool:
        """Link a blob of ``source`` (or of any repository if None) into ``name``."""
        with self.lock():
            if source is not None:
                if not self.blob_visible(source, digest):
                    return False
            elif not self.content.exists(digest):
                return False
            self._touch(digest)
            self.link_blob(name, digest)
            return True

    def delete_blob(self, name: str, digest: str) -> None:
        link = self._layer_link(name, digest)
        if not link.exists():
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to {name}", detail={"digest": digest})
        link.unlink()

    # ------------------------------------------------------------ uploads

    def new_upload(self, name: str) -> Upload:
        check_name(name)
        upload_id = str(uuid.uuid4())
        d = self.uploads_dir / upload_id
        d.mkdir(parents=True)
        (d / "data").touch()
        (d / "repo").write_text(name)
        up = Upload(d, name)
        self._uploads[upload_id] = up
        return up

    def get_upload(self, name: str, upload_id: str) -> Upload:
        unknown = RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id!r} unknown")
        try:
            uuid.UUID(upload_id)
        except ValueError:
            raise unknown from None
        up = self._uploads.get(upload_id)
        if up is None:
            # an upload begun before a restart: rebuild its state from disk
            d = self.uploads_dir / upload_id
            try:
                owner = (d / "repo").read_text()
                h = hashlib.sha256()
                size = 0
                with open(d / "data", "rb") as f:
                    for chunk in iter(lambda: f.read(_CHUNK), b""):
                        h.update(chunk)
                        size += len(chunk)
            except FileNotFoundError:
                raise unknown from None
            up = Upload(d, owner, size=size, hasher=h)
            self._uploads[upload_id] = up
        if up.name != name:
            raise unknown
        if not up.dir.is_dir():  # removed by gc as stale
            self._uploads.pop(upload_id, None)
            raise unknown
        return up

    def cancel_upload(self, up: Upload) -> None:
        self._uploads.pop(up.id, None)
        shutil.rmtree(up.dir, ignore_errors=True)

    def finish_upload(self, up: Upload, expected: str) -> str:
        """Verify the upload against ``expected``, publish the blob, link it; return its digest."""
        check_digest(expected)
        algo = expected.split(":", 1)[0]
        actual = up.digest(algo)
        if actual != expected:
            self.cancel_upload(up)
            raise RegistryError(
                "DIGEST_INVALID", f"upload has digest {actual}, not {expected}", detail={"digest": expected}
            )
        with self.lock():
            dest = self.content.path(actual)
            if dest.exists():
                self._touch(actual)
            else:
                fd = os.open(up.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.rename(up.path, dest)
            self.link_blob(up.name, actual)
        self.cancel_upload(up)
        return actual

    # ------------------------------------------------------------ manifests

    def _revision(self, name: str, digest: str) -> Path:
        algo, hexpart = _hexof(digest)
        return self.repo_dir(name) / "_manifests" / "revisions" / algo / hexpart

    def revision_mtime(self, name: str, digest: str) -> float:
        """When the manifest was last written into ``name`` (0 if it is not there)."""
        try:
            return self._revision(name, digest).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _tag(self, name: str, tag: str) -> Path:
        return self.repo_dir(name) / "_manifests" / "tags" / tag

    def resolve(self, name: str, reference: str) -> tuple[str, str]:
        """(digest, media type) of a manifest named by tag or digest in ``name``."""
        unknown = RegistryError(
            "MANIFEST_UNKNOWN", f"manifest {reference} unknown to {name}", detail={"reference": reference}
        )
        if dg.is_digest(reference):
            digest = reference
        elif TAG_RE.match(reference):
            try:
                digest = self._tag(name, reference).read_text().strip()
            except FileNotFoundError:
                raise unknown from None
        else:  # neither a tag nor a digest: nothing can have that name
            raise unknown
        try:
            media_type = self._revision(name, digest).read_text().strip()
        except FileNotFoundError:
            raise unknown from None
        if not self.content.exists(digest):
            raise unknown
        return digest, media_type

    def manifest_path(self, digest: str) -> Path:
        return self.content.path(digest)

    def put_manifest(self, name: str, reference: str, body: bytes, content_type: str) -> tuple[str, mf.ManifestInfo]:
        """Validate and store a manifest; tag it if ``reference`` is a tag."""
        check_name(name)
        is_digest = dg.is_digest(reference)
        if not is_digest and not TAG_RE.match(reference):
            raise RegistryError("MANIFEST_INVALID", f"invalid tag or digest {reference!r}")
        info = mf.parse(body, content_type)
        algo = reference.split(":", 1)[0] if is_digest else "sha256"
        digest = mf.digest_of(body, algo)
        if is_digest and digest != reference:
            raise RegistryError(
                "DIGEST_INVALID", f"manifest digest is {digest}, not {reference}", detail={"digest": reference}
            )
        with self.lock():
            missing = [
                d.digest for d in info.blobs() if not self.blob_visible(name, d.digest)
            ] + [d.digest for d in info.children if not self._revision(name, d.digest).exists()]
            if missing:
                problems = [mf_problem(d) for d in missing[1:]]
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN", f"manifest references unknown blob {missing[0]}",
                    detail={"digest": missing[0]}, more=problems,
                )
            for d in info.blobs():
                self._touch(d.digest)
            for d in info.children:
                self._touch(d.digest)
            path = self.content.path(digest)
            if path.exists():
                self._touch(digest)
            else:
                _write_atomic(path, body)
            _write_atomic(self._revision(name, digest), info.media_type.encode())
            if info.subject is not None:
                ref = self.repo_dir(name) / "_referrers" / _hexof(info.subject.digest)[1] / _hexof(digest)[1]
                _write_atomic(ref, json.dumps(info.referrer_descriptor(digest, len(body))).encode())
            if not is_digest:
                _write_atomic(self._tag(name, reference), digest.encode())
        return digest, info

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete a tag, or a manifest (with its tags and referrer entry) by digest."""
        if not dg.is_digest(reference):
            if not TAG_RE.match(reference):
                raise RegistryError("MANIFEST_INVALID", f"invalid reference {reference!r}")
            try:
                self._tag(name, reference).unlink()
            except FileNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", f"tag {reference} unknown to {name}") from None
            return
        digest, _ = self.resolve(name, reference)
        self.forget_manifest(name, digest)

    def forget_manifest(self, name: str, digest: str) -> None:
        """Unlink a manifest from ``name`` with its tags and referrer entry (absent: no-op)."""
        for tag in self.tags(name):
            p = self._tag(name, tag)
            try:
                if p.read_text().strip() == digest:
                    p.unlink()
            except FileNotFoundError:
                pass
        self._revision(name, digest).unlink(missing_ok=True)
        hexpart = _hexof(digest)[1]
        for sub in (self.repo_dir(name) / "_referrers").glob(f"*/{hexpart}"):
            sub.unlink(missing_ok=True)

    def tags(self, name: str) -> list[str]:
        if not self.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry", detail={"name": name})
        d = self.repo_dir(name) / "_manifests" / "tags"
        try:
            return sorted(e.name for e in os.scandir(d) if not e.name.startswith("."))
        except FileNotFoundError:
            return []

    def tag_map(self, name: str) -> dict[str, str]:
        """tag -> digest for every tag of ``name``."""
        out = {}
        for tag in self.tags(name):
            try:
                out[tag] = self._tag(name, tag).read_text().strip()
            except FileNotFoundError:
                pass
        return out

    def revisions(self, name: str) -> list[str]:
        d = self.repo_dir(name) / "_manifests" / "revisions"
        out = []
        for algo in ("sha256", "sha512"):
            try:
                out += [f"{algo}:{e.name}" for e in os.scandir(d / algo) if not e.name.startswith(".")]
            except FileNotFoundError:
                pass
        return out

    def referrers(self, name: str, digest: str, artifact_type: str = "") -> list[dict[str, Any]]:
        check_digest(digest, "DIGEST_INVALID")
        d = self.repo_dir(name) / "_referrers" / _hexof(digest)[1]
        out = []
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                desc = json.loads(Path(e.path).read_bytes())
            except (FileNotFoundError, ValueError):
                continue
            if artifact_type and desc.get("artifactType") != artifact_type:
                continue
            out.append(desc)
        return out


def mf_problem(digest: str) -> Problem:
    return Problem("MANIFEST_BLOB_UNKNOWN", f"manifest references unknown blob {digest}", {"digest": digest})


def page(items: list[str], n: int | None, last: str) -> tuple[list[str], bool]:
    """The entries after ``last`` (lexically), at most ``n``; and whether more remain."""
    rest = [i for i in items if i > last] if last else items
    if n is None:
        return rest, False
    return rest[:n], len(rest) > n
