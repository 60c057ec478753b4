"""Container file endpoints (swagger v1.51 "Container"): changes (diff), archive (HEAD stat,
GET a tar, PUT a tar: ``docker cp`` both ways), export, and ``POST /commit``.

Blocking file work runs in worker threads; tars stream through ``api/streams.py``
(``response_writer`` out, ``body_reader`` in) without being held in memory.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from sampan import errors
from sampan.api import types, types_io
from sampan.api.services import services
from sampan.api.streams import body_reader, response_writer
from sampan.engine.archive import ContainerFiles
from sampan.engine.commit import CommitOptions, commit

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _files(request: web.Request) -> ContainerFiles:
    svc = services(request).files
    if svc is None:
        raise errors.Unavailable("container files are not available in this daemon")
    return svc


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise errors.InvalidArgument("path is required")
    return path


async def changes(request: web.Request) -> web.Response:
    out = await asyncio.to_thread(_files(request).changes, request.match_info["id"])
    return web.json_response(types_io.changes_json(out))


async def archive_head(request: web.Request) -> web.Response:
    st = await asyncio.to_thread(_files(request).stat, request.match_info["id"], _path(request))
    return web.Response(status=200, headers={STAT_HEADER: st.header(), "Content-Type": "application/json"})


async def archive_get(request: web.Request) -> web.StreamResponse:
    files = _files(request)
    name, path = request.match_info["id"], _path(request)
    st = await asyncio.to_thread(files.stat, name, path)
    response = web.StreamResponse(
        status=200, headers={STAT_HEADER: st.header(), "Content-Type": "application/x-tar"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    def work() -> None:
        out = response_writer(response, loop)
        files.get_archive(name, path, out)
        out.flush()

    try:
        await asyncio.to_thread(work)
        await response.write_eof()
    except (ConnectionError, errors.SampanError):
        pass  # the header is sent: a broken tar is all the client can be told
    return response


async def archive_put(request: web.Request) -> web.Response:
    files = _files(request)
    name, path = request.match_info["id"], _path(request)
    no_overwrite = types.query_bool(request.query.get("noOverwriteDirNonDir"))
    c = await asyncio.to_thread(files.containers.get, name)
    if c.host.readonly_rootfs:
        raise errors.PermissionDenied("container rootfs is marked read-only")
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(
        files.put_archive, name, path, body_reader(request, loop), no_overwrite_dir_non_dir=no_overwrite
    )
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    files = _files(request)
    name = request.match_info["id"]
    c = await asyncio.to_thread(files.containers.get, name)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    def work() -> None:
        out = response_writer(response, loop)
        files.export(name, out)
        out.flush()

    try:
        await asyncio.to_thread(work)
        await response.write_eof()
    except (ConnectionError, errors.SampanError):
        pass
    services(request).events.publish("container", "export", c.id, {"name": c.name, "image": c.image_name})
    return response


async def commit_container(request: web.Request) -> web.Response:
    containers = services(request).containers
    if containers is None:
        raise errors.Unavailable("containers are not available in this daemon")
    q = request.query
    name = q.get("container", "")
    if not name:
        raise errors.InvalidArgument("a container name or ID is required (container=)")
    config: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None
            if isinstance(parsed, dict):
                config = parsed
    repo, tag = q.get("repo", ""), q.get("tag", "")
    reference = ""
    if repo:
        reference = f"{repo}:{tag}" if tag else repo
    elif tag:
        raise errors.InvalidArgument("tag requires a repository name (repo=)")
    opts = CommitOptions(
        reference=reference, comment=q.get("comment", ""), author=q.get("author", ""),
        pause=types.query_bool(q.get("pause", "1")), changes=q.getall("changes", []), config=config,
    )
    image_id = await asyncio.to_thread(commit, containers, name, opts)
    return web.json_response({"Id": image_id}, status=201)
