"""Blob and upload endpoints: ``/v2/<name>/blobs/<digest>`` and ``/v2/<name>/blobs/uploads/...``.

An upload's life: ``POST`` opens it (202 + Location), or finishes it at once (``?digest=``,
monolithic, 201), or mounts a blob from another repository (``?mount=&from=``, 201, falling back
to a new upload when the blob is not there); ``PATCH`` appends chunks, in order (a
``Content-Range`` that does not start at the current size is answered 416 with the current
``Range``); ``GET`` reports the size received; ``PUT ?digest=`` appends a last chunk if any,
checks the digest and publishes the blob (201); ``DELETE`` cancels it.

Blob bodies are served by ``FileResponse`` (Range requests -> 206): zero-copy ``sendfile(2)`` to
remote peers, a user-space copy to loopback peers (faster there, see ``_CopyingFileResponse``);
the config key ``blob_transfer`` (``auto``, ``sendfile``, ``copy``) overrides the choice.
"""

from __future__ import annotations

import ipaddress
import re
from typing import IO, TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from sampan.distribution.server.errors import RegistryError
from sampan.distribution.server.storage import Upload, check_digest
from sampan.oci import digest as dg

if TYPE_CHECKING:
    from sampan.distribution.server.app import Registry

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_READ = 1 << 20


def _upload_headers(name: str, up: Upload) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{up.id}",
        "Range": f"0-{max(up.size - 1, 0)}",
        "Docker-Upload-UUID": up.id,
        "Blob-Upload-Session-ID": up.id,
        "Content-Length": "0",
    }


def _created(name: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"},
    )


async def get_blob(reg: Registry, request: web.Request, name: str, digest: str) -> web.StreamResponse:
    check_digest(digest)
    path = reg.storage.blob_path(name, digest)
    headers = {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "ETag": f'"{digest}"',
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(path.stat().st_size)
        return web.Response(status=200, headers=headers)
    if _use_sendfile(reg.cfg.blob_transfer, request):
        return web.FileResponse(path, headers=headers, chunk_size=_READ)
    return _CopyingFileResponse(path, headers=headers, chunk_size=_READ)


class _CopyingFileResponse(web.FileResponse):
    """A FileResponse (Range, If-Range, ETag) that copies through user space in 1 MiB reads.

    Measured here (skopeo pulling a 200 MiB blob over loopback, 2 vCPUs): sendfile(2) gave
    151 MB/s, this copy 187 MB/s, docker-registry (32 KiB writes) 181 MB/s.  On loopback the
    client's own copy out of the socket dominates, and it is faster from freshly written,
    cache-hot buffers than from page-cache pages handed over by sendfile.
    """

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int) -> AbstractStreamWriter:
        writer = await web.StreamResponse.prepare(self, request)
        assert writer is not None
        return await self._sendfile_fallback(writer, fobj, offset, count)


def _use_sendfile(mode: str, request: web.Request) -> bool:
    """``sendfile``/``copy`` as configured; ``auto``: zero-copy except to loopback peers."""
    if mode != "auto":
        return mode == "sendfile"
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    try:
        return not ipaddress.ip_address(peer[0]).is_loopback if peer else True
    except ValueError:
        return True


async def delete_blob(reg: Registry, request: web.Request, name: str, digest: str) -> web.Response:
    check_digest(digest)
    reg.storage.delete_blob(name, digest)
    return web.Response(status=202, headers={"Content-Length": "0"})


async def _receive(request: web.Request, up: Upload) -> int:
    """Append the request body to the upload; return the bytes received."""
    got = 0
    with up.open_append() as f:
        async for chunk in request.content.iter_chunked(_READ):
            up.feed(f, chunk)
            got += len(chunk)
    return got


def _check_range(request: web.Request, name: str, up: Upload) -> None:
    """416 unless the Content-Range (if any) starts at the upload's current size."""
    value = request.headers.get("Content-Range")
    if value is None:
        return
    m = _CONTENT_RANGE.match(value.strip())
    ok = m is not None and int(m.group(1)) == up.size and int(m.group(2)) >= int(m.group(1))
    if ok and m is not None and request.content_length is not None:
        ok = int(m.group(2)) - int(m.group(1)) + 1 == request.content_length
    if not ok:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID", f"Content-Range {value!r} does not continue the upload at {up.size}",
            status=416, headers=_upload_headers(name, up),
        )


async def start_upload(reg: Registry, request: web.Request, name: str) -> web.Response:
    q = request.query
    mount = q.get("mount")
    if mount is not None and dg.is_digest(mount):
        try:
            mounted = await reg.blocking(reg.storage.mount_blob, name, mount, q.get("from"))
        except RegistryError:  # an invalid source: fall back to an upload, as the spec says
            mounted = False
        if mounted:
            await request.read()
            return _created(name, mount)
    up = reg.storage.new_upload(name)
    digest = q.get("digest")
    if digest is None or mount is not None:
        await request.read()
        return web.Response(status=202, headers=_upload_headers(name, up))
    try:
        check_digest(digest)
        await _receive(request, up)
        final = await reg.blocking(reg.storage.finish_upload, up, digest)
    finally:
        reg.storage.cancel_upload(up)
    return _created(name, final)


async def upload_status(reg: Registry, request: web.Request, name: str, upload_id: str) -> web.Response:
    up = reg.storage.get_upload(name, upload_id)
    return web.Response(status=204, headers=_upload_headers(name, up))


async def patch_upload(reg: Registry, request: web.Request, name: str, upload_id: str) -> web.Response:
    up = reg.storage.get_upload(name, upload_id)
    async with reg.upload_lock(up.id):
        _check_range(request, name, up)
        await _receive(request, up)
    return web.Response(status=202, headers=_upload_headers(name, up))


async def put_upload(reg: Registry, request: web.Request, name: str, upload_id: str) -> web.Response:
    up = reg.storage.get_upload(name, upload_id)
    digest = request.query.get("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", "PUT needs a digest parameter", detail={"digest": ""})
    check_digest(digest)
    try:
        async with reg.upload_lock(up.id):
            _check_range(request, name, up)
            await _receive(request, up)
            final = await reg.blocking(reg.storage.finish_upload, up, digest)
    except RegistryError as exc:
        if exc.code != "BLOB_UPLOAD_INVALID":  # a bad range leaves the session usable
            reg.forget_upload(up.id)
        raise
    reg.forget_upload(up.id)
    return _created(name, final)


async def cancel_upload(reg: Registry, request: web.Request, name: str, upload_id: str) -> web.Response:
    up = reg.storage.get_upload(name, upload_id)
    async with reg.upload_lock(up.id):
        reg.storage.cancel_upload(up)
    reg.forget_upload(up.id)
    return web.Response(status=204, headers={"Content-Length": "0"})

