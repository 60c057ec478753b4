"""Image endpoints (swagger v1.51 "Image"): list, inspect, history, tag, remove, prune,
load, save (get) and import (create with ``fromSrc``).

Blocking store work runs in worker threads; request bodies (tars of 200 MiB and more) are
read by the store from the socket as they arrive (``streams.body_reader``), never held in
memory whole and never copied to disk first.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from typing import Any

from aiohttp import web

from sampan.api import types
from sampan.api.services import api_version, services
from sampan.api.streams import JSONStream, body_reader, response_writer
from sampan.api.versions import at_least
from sampan.errors import InvalidArgument

log = logging.getLogger("sampan.api")


async def list_images(request: web.Request) -> web.Response:
    q = request.query
    filters = types.parse_filters(q.get("filters"))
    if q.get("filter"):  # API < 1.41: a reference pattern
        filters.setdefault("reference", []).append(q["filter"])
    images = await asyncio.to_thread(
        services(request).images.list, all=types.query_bool(q.get("all")), filters=filters
    )
    version = api_version(request)
    shared: dict[str, int] = {}
    if types.query_bool(q.get("shared-size")) and at_least(version, "1.42"):
        usage = await asyncio.to_thread(services(request).images.disk_usage)
        shared = {u.image.id: u.shared_size for u in usage.images}
    return web.json_response(
        [types.image_summary(i, version, shared_size=shared.get(i.id, -1)) for i in images]
    )


async def inspect(request: web.Request) -> web.Response:
    svc = services(request)
    image = await asyncio.to_thread(svc.images.get, request.match_info["name"])
    body = types.image_inspect(image, api_version(request), driver=svc.system.storage_driver)
    return web.json_response(body)


async def history(request: web.Request) -> web.Response:
    entries = await asyncio.to_thread(services(request).images.history, request.match_info["name"])
    return web.json_response(types.history_json(entries))


async def tag(request: web.Request) -> web.Response:
    q = request.query
    await asyncio.to_thread(
        services(request).images.tag, request.match_info["name"], q.get("repo", ""), q.get("tag", "")
    )
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    q = request.query
    items = await asyncio.to_thread(
        services(request).images.remove,
        request.match_info["name"],
        force=types.query_bool(q.get("force")),
        prune=not types.query_bool(q.get("noprune")),
    )
    return web.json_response(items)


async def prune(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    items, reclaimed = await asyncio.to_thread(services(request).images.prune, filters=filters)
    return web.json_response({"ImagesDeleted": items or None, "SpaceReclaimed": reclaimed})


async def load(request: web.Request) -> web.StreamResponse:
    quiet = types.query_bool(request.query.get("quiet"))
    images = services(request).images
    stream = JSONStream(request)
    await stream.start()
    body = body_reader(request, asyncio.get_running_loop())
    try:

        def work(on_progress: Any) -> list[str]:
            return images.load(body, on_progress=None if quiet else on_progress)

        lines = await stream.run(work)
        for line in lines:
            await stream.send({"stream": line.rstrip("\n") + "\n"})
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        await stream.send_error(exc)
    return await stream.finish()


async def create(request: web.Request) -> web.StreamResponse:
    """``POST /images/create``: import a rootfs tar from the body (``fromSrc=-``)."""
    q = request.query
    if q.get("fromImage"):
        from sampan.api.handlers.distribution import pull

        return await pull(request)
    source = q.get("fromSrc", "")
    if not source:
        raise InvalidArgument("either fromImage or fromSrc must be given")
    if source != "-":
        return await _import_url(request, source)
    repo, tag_ = q.get("repo", ""), q.get("tag", "")
    reference = (f"{repo}:{tag_}" if tag_ else repo) or None
    changes = q.getall("changes", [])
    images = services(request).images
    stream = JSONStream(request)
    await stream.start()
    body = body_reader(request, asyncio.get_running_loop())
    try:
        image = await asyncio.to_thread(
            images.import_rootfs,
            body,
            reference=reference,
            changes=changes,
            message=q.get("message", ""),
            platform=q.get("platform", ""),
        )
        await stream.send({"status": image.id})
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        await stream.send_error(exc)
    return await stream.finish()


async def _import_url(request: web.Request, source: str) -> web.StreamResponse:
    """``fromSrc=<URL>``: dockerd downloads the tar (``http://`` when the URL has no scheme) and
    imports it with the comment "Imported from <URL>" unless a message is given."""
    from sampan.build.remote import download

    q = request.query
    url = source if "://" in source else f"http://{source}"
    repo, tag_ = q.get("repo", ""), q.get("tag", "")
    stream = JSONStream(request)
    await stream.start()

    def work() -> str:
        with tempfile.TemporaryFile() as f:
            download(url, f)
            f.seek(0)
            return services(request).images.import_rootfs(
                f, reference=(f"{repo}:{tag_}" if tag_ else repo) or None, changes=q.getall("changes", []),
                message=q.get("message", "") or f"Imported from {source}", platform=q.get("platform", "")).id

    try:
        await stream.send({"status": await asyncio.to_thread(work)})
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        await stream.send_error(exc)
    return await stream.finish()


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    images = services(request).images
    await asyncio.to_thread(images.resolve, names)  # a missing image is a 404, before any byte
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    def work() -> None:
        out = response_writer(response, loop)
        images.save(names, out)
        out.flush()

    try:
        await asyncio.to_thread(work)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        # the status line is gone: all we can do is cut the stream so the tar is visibly short
        log.error("saving %s failed: %s", names, exc, exc_info=exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def get_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, request.query.getall("names", []))


async def get_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])
