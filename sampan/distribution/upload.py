"""Blob uploads to a registry repository (the OCI distribution spec's push flows).

* :meth:`Uploader.start` — ``POST /v2/<name>/blobs/uploads/`` (with ``?mount=D&from=R`` a
  cross-repository mount: ``201`` means done, ``202`` an upload to continue);
* :meth:`Uploader.upload` — a blob of known digest: one ``PUT ?digest=`` with the whole body
  (monolithic), or ``PATCH`` chunks of ``chunk_size`` bytes with ``Content-Range`` and then the
  closing ``PUT``;
* :class:`StreamUpload` — a blob whose digest is not known yet (a layer being compressed):
  its bytes go out in one chunked ``PATCH`` as they are produced, and the ``PUT ?digest=``
  follows once the producer knows the digest.  This overlaps compressing and uploading.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from sampan.distribution.registry import Repository, registry_error
from sampan.errors import InvalidArgument, SampanError

log = logging.getLogger("sampan.distribution")
_QUEUE_DEPTH = 8

OnBytes = Callable[[int], None]


class _Counting:
    """A reader that reports how many bytes were read (the "Pushing" progress)."""

    def __init__(self, f: BinaryIO, on_bytes: OnBytes, limit: int | None = None) -> None:
        self.f = f
        self.on_bytes = on_bytes
        self.done = 0
        self.limit = limit

    def read(self, size: int = -1) -> bytes:
        if self.limit is not None:
            left = self.limit - self.done
            if left <= 0:
                return b""
            size = left if size < 0 else min(size, left)
        data = self.f.read(size)
        if data:
            self.done += len(data)
            self.on_bytes(self.done)
        return data


def _shifted(on_bytes: OnBytes, base: int) -> OnBytes:
    return lambda k: on_bytes(base + k)


class Uploader:
    def __init__(self, repo: Repository, *, chunk_size: int = 0) -> None:
        self.repo = repo
        self.chunk_size = chunk_size

    def _what(self, what: str) -> str:
        return f"push {self.repo.name}: {what}"

    def start(self, *, what: str, mount: str = "", source_repo: str = "") -> str | None:
        """POST an upload; its location, or None when the blob was mounted instead (201)."""
        target = f"/v2/{self.repo.path}/blobs/uploads/"
        scopes: list[str] = []
        if mount:
            target += f"?mount={mount}&from={source_repo}"
            scopes = [f"repository:{source_repo}:pull"]
        r = self.repo.request("POST", target, endpoint=self.repo.origin_endpoint(), actions="pull,push",
                              extra_scopes=scopes)
        if mount and r.status == 201:
            r.close()
            return None
        if r.status != 202:
            raise registry_error(self._what(what), r, pull=False)
        r.close()
        location = r.header("Location")
        if not location:
            raise InvalidArgument(f"{self._what(what)}: the registry gave no upload location")
        return location

    def upload(self, location: str, digest: str, size: int, src: BinaryIO, *, what: str,
               on_bytes: OnBytes) -> None:
        ep = self.repo.origin_endpoint()
        body: Any = None
        length: int | None = None
        if self.chunk_size and size > self.chunk_size:
            offset = 0
            while offset < size:
                n = min(self.chunk_size, size - offset)
                chunk = _Counting(src, _shifted(on_bytes, offset), limit=n)
                r = self.repo.request(
                    "PATCH", location, endpoint=ep, actions="pull,push", body=chunk, length=n,  # type: ignore[arg-type]
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{offset + n - 1}"},
                )
                if r.status != 202:
                    raise registry_error(self._what(what), r, pull=False)
                r.close()
                location = r.header("Location") or location
                offset += n
        else:
            body, length = _Counting(src, on_bytes), size
        self.finish(location, digest, what=what, body=body, length=length)

    def finish(self, location: str, digest: str, *, what: str, body: Any = None, length: int | None = None) -> None:
        sep = "&" if "?" in location else "?"
        r = self.repo.request(
            "PUT", f"{location}{sep}digest={digest}", endpoint=self.repo.origin_endpoint(), actions="pull,push",
            body=body, length=length, headers={"Content-Type": "application/octet-stream"},
        )
        if r.status != 201:
            raise registry_error(self._what(what), r, pull=False)
        r.close()


class StreamUpload:
    """Bytes uploaded as they are produced; see the module docstring.

    ``feed`` never blocks on a failed upload (the error is kept and the bytes dropped): the
    producer finishes its own work, ``finish`` returns False, and the caller uploads the blob
    the ordinary way later.
    """

    def __init__(self, uploader: Uploader, *, what: str, on_bytes: OnBytes | None = None) -> None:
        self.uploader = uploader
        self.what = what
        self.on_bytes = on_bytes
        self.error: BaseException | None = None
        self.sent = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_DEPTH)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.location = uploader.start(what=what)
        self._thread = threading.Thread(target=self._run, name="stream-upload", daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item
            self.sent += len(item)
            if self.on_bytes is not None:
                self.on_bytes(self.sent)

    def _run(self) -> None:
        repo = self.uploader.repo
        try:
            assert self.location is not None
            r = repo.request("PATCH", self.location, endpoint=repo.origin_endpoint(), actions="pull,push",
                             body=self._chunks(), headers={"Content-Type": "application/octet-stream"})
            if r.status != 202:
                raise registry_error(self.uploader._what(self.what), r, pull=False)
            r.close()
            self.location = r.header("Location") or self.location
        except BaseException as exc:  # kept for finish(); the producer must not block
            self.error = exc
            while self._queue.get() is not None:
                pass

    def feed(self, data: bytes | memoryview) -> None:
        if self.error is not None:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._queue.put(b"".join(self._pending))
            self._pending = []
            self._pending_size = 0

    def finish(self, digest: str) -> bool:
        """Close the stream and commit it as ``digest``; False if the upload failed."""
        self._flush()
        self._queue.put(None)
        self._thread.join()
        if self.error is None:
            assert self.location is not None
            try:
                self.uploader.finish(self.location, digest, what=self.what)
                return True
            except SampanError as exc:
                self.error = exc
        log.info("streamed upload of %s failed (%s); uploading it again", self.what, self.error)
        return False

    def abandon(self) -> None:
        self._pending = []
        self._queue.put(None)
        self._thread.join()
