"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/events``, ``/system/df``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from sampan.api import types
from sampan.api.services import api_version, services
from sampan.api.versions import at_least
from sampan.engine.events import Event
from sampan.engine.images import parse_until
from sampan.errors import InvalidArgument

PING_HEADERS = {
    "Builder-Version": "1",
    "Docker-Experimental": "false",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}

EVENT_FILTERS = frozenset({
    "config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
    "scope", "secret", "service", "type", "volume",
})

#: Streams of ``/events`` still open; cancelled at shutdown so that the daemon stops at once.
EVENT_STREAMS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("event_streams")


async def ping(request: web.Request) -> web.Response:
    body = "" if request.method == "HEAD" else "OK"
    return web.Response(text=body, content_type="text/plain", headers=PING_HEADERS)


async def version(request: web.Request) -> web.Response:
    info = services(request).system.version()
    return web.json_response(types.version_json(info))


async def info(request: web.Request) -> web.Response:
    result = await asyncio.to_thread(services(request).system.info)
    body = types.info_json(result, api_version(request))
    dist = services(request).distribution
    if dist is not None:
        from sampan.api.handlers.distribution import registry_config

        body["RegistryConfig"] = registry_config(dist)
    return web.json_response(body)


async def disk_usage(request: web.Request) -> web.Response:
    kinds = request.query.getall("type", [])
    if kinds and not at_least(api_version(request), "1.42"):
        kinds = []
    for kind in kinds:
        if kind not in ("container", "image", "volume", "build-cache"):
            raise InvalidArgument(f"invalid type: {kind}")
    svc = services(request)
    usage = await asyncio.to_thread(svc.system.disk_usage)
    version = api_version(request)
    want = set(kinds) or {"container", "volume"}
    containers = volumes = None
    if svc.containers is not None and "container" in want:
        from sampan.api.types_containers import container_summary
        from sampan.engine.container_query import ListOptions

        found = await asyncio.to_thread(svc.containers.list, ListOptions(all=True, size=True))
        containers = [container_summary(c, version) for c in found]
        for u in usage.images:  # images with containers are "active" (docker system df)
            u.containers = sum(c.image_id == u.image.id for c in found)
    if svc.volumes is not None and "volume" in want:
        from sampan.api.types_containers import volume_json

        volumes = [volume_json(v, usage=True) for v in await asyncio.to_thread(svc.volumes.usage)]
    build_cache = None
    if svc.builds is not None and (not kinds or "build-cache" in kinds):
        build_cache = types.build_cache_json(await asyncio.to_thread(svc.builds.records))
    return web.json_response(types.disk_usage_json(usage, version, kinds, containers=containers, volumes=volumes,
                                                   build_cache=build_cache))


def _time_param(request: web.Request, key: str) -> float | None:
    value = request.query.get(key, "")
    return parse_until(value) if value else None


async def events(request: web.Request) -> web.StreamResponse:
    """Docker's ``GET /events``: replay since ``since``, then follow until ``until``."""
    filters = types.parse_filters(request.query.get("filters"))
    for key in filters:
        if key not in EVENT_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    since = _time_param(request, "since")
    until = _time_param(request, "until")
    if since is not None and until is not None and since > until:
        raise InvalidArgument(f"since time ({since:.0f}) cannot be after until time ({until:.0f})")
    version = api_version(request)
    bus = services(request).events
    history, sub = bus.subscribe()
    streams = request.app[EVENT_STREAMS]
    task = asyncio.current_task()
    if task is not None:
        streams.add(task)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        await response.prepare(request)

        async def send(e: Event) -> None:
            if types.event_matches(e, filters):
                line = types.event_json(e, version)
                await response.write((json.dumps(line, separators=(",", ":")) + "\n").encode())

        if since is not None:
            for e in history:
                if e.time_nano / 1e9 >= since and (until is None or e.time_nano / 1e9 <= until):
                    await send(e)
        while until is None or time.time() < until:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                e = await asyncio.wait_for(sub.get(), timeout)
            except TimeoutError:
                break
            if until is not None and e.time_nano / 1e9 > until:
                break
            await send(e)
        await response.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        pass
    finally:
        sub.close()
        if task is not None:
            streams.discard(task)
    return response
