"""Blob and upload endpoints: ``/v2/<name>/blobs/<digest>`` and ``/v2/<name>/blobs/uploads/...``.

An upload's life: ``POST`` opens it (202 + Location), or finishes it at once (``?digest=``,
monolithic, 201), or mounts a blob from another repository (``?mount=&from=``, 201, falling back
to a new upload when the blob is not there); ``PATCH`` appends chunks, in order (a
``Content-Range`` that does not start at the current size is answered 416 with the current
``Range``); ``GET`` reports the size received; ``PUT ?digest=`` appends a last chunk if any,
checks the digest and publishes the blob (201); ``DELETE`` cancels it.

Blob bodies are served by ``FileResponse`` (``sendfile(2)``, Range requests -> 206).
"""

from __future__ import annotations

import os
import re
import socket
from typing import TYPE_CHECKING

from aiohttp import web

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
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is not None and os.environ.get("H5_SNDBUF"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(os.environ["H5_SNDBUF"]))
    return web.FileResponse(path, headers=headers, chunk_size=int(os.environ.get("H5_CHUNK", _READ)))


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
    async with reg.upload_lock(up.id):
        _check_range(request, name, up)
        await _receive(request, up)
        final = await reg.blocking(reg.storage.finish_upload, up, digest)
    return _created(name, final)


async def cancel_upload(reg: Registry, request: web.Request, name: str, upload_id: str) -> web.Response:
    up = reg.storage.get_upload(name, upload_id)
    async with reg.upload_lock(up.id):
        reg.storage.cancel_upload(up)
    return web.Response(status=204, headers={"Content-Length": "0"})

