"""Container lifecycle endpoints (swagger v1.51 "Container"): create, list, inspect, start,
stop, restart, kill, pause, unpause, remove, rename, update, wait, prune.

Blocking engine work runs in worker threads.  ``wait`` answers its headers at once (the CLI
opens it before ``start`` and must know it is registered) and the body when the condition
holds; a client that goes away cancels only its own wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from aiohttp import web

from sampan import errors
from sampan.api import convert, types
from sampan.api import types_containers as tc
from sampan.api.services import api_version, services
from sampan.engine import links
from sampan.engine.container_query import ListOptions
from sampan.engine.containers import ContainerService


def container_service(request: web.Request) -> ContainerService:
    svc = services(request).containers
    if svc is None:
        raise errors.Unavailable("containers are not available in this daemon")
    return svc


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None


def _int_query(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {key}: {value!r}") from None


async def create(request: web.Request) -> web.Response:
    body = await _json_body(request)
    spec = convert.container_spec(body)
    host = convert.host_spec(body.get("HostConfig"))
    host.endpoints_config = convert.endpoints_config(body)
    if isinstance(body.get("Runtime"), str) and not (body.get("HostConfig") or {}).get("Runtime"):
        host.runtime = convert.runtime_name(body["Runtime"])  # docker-py sends it at the top level
    platform = request.query.get("platform", "")
    if platform and not platform.startswith("linux"):
        raise errors.InvalidArgument(f"image platform {platform} is not supported on this host")
    c, warnings = await asyncio.to_thread(container_service(request).create, spec, host, name=request.query.get("name", ""))
    return web.json_response({"Id": c.id, "Warnings": warnings}, status=201)


async def list_containers(request: web.Request) -> web.Response:
    q = request.query
    opts = ListOptions(
        all=types.query_bool(q.get("all")),
        limit=_int_query(request, "limit") or -1,
        size=types.query_bool(q.get("size")),
        filters=types.parse_filters(q.get("filters")),
    )
    found = await asyncio.to_thread(container_service(request).list, opts)
    version = api_version(request)
    return web.json_response([tc.container_summary(c, version) for c in found])


async def inspect(request: web.Request) -> web.Response:
    svc = container_service(request)
    size = types.query_bool(request.query.get("size"))

    def load() -> dict[str, Any]:
        c = dataclasses.replace(svc.get(request.match_info["id"]), size_rw=None, size_root_fs=None)
        if size:
            svc.fill_size(c)
        data: dict[str, str] = {}
        try:
            data["UpperDir"] = str(svc.store.snapshotter.upper_dir(c.id))
            for m in svc.store.snapshotter.mounts(c.id):
                for opt in m.options:
                    key, _, value = opt.partition("=")
                    if key in ("lowerdir", "workdir"):
                        data["LowerDir" if key == "lowerdir" else "WorkDir"] = value
        except errors.SampanError:
            pass
        return tc.container_inspect(c, api_version(request), graph_data=data)

    return web.json_response(await asyncio.to_thread(load))


async def start(request: web.Request) -> web.Response:
    await asyncio.to_thread(container_service(request).start, request.match_info["id"])
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    t = _int_query(request, "t")
    await asyncio.to_thread(
        container_service(request).stop, request.match_info["id"], timeout=t, signal=request.query.get("signal", "")
    )
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    t = _int_query(request, "t")
    await asyncio.to_thread(
        container_service(request).restart, request.match_info["id"], timeout=t, signal=request.query.get("signal", "")
    )
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    await asyncio.to_thread(
        container_service(request).kill, request.match_info["id"], signal=request.query.get("signal", "")
    )
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    await asyncio.to_thread(container_service(request).pause, request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await asyncio.to_thread(container_service(request).unpause, request.match_info["id"])
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    q = request.query
    if types.query_bool(q.get("link")):  # /containers/<parent>/<alias>?link=1: remove a legacy link
        name = "/".join(p for p in (request.match_info["id"], request.match_info.get("alias", "")) if p)
        await asyncio.to_thread(links.remove_link, container_service(request), name)
        return web.Response(status=204)
    if request.match_info.get("alias"):
        raise errors.NoSuchContainer(f"{request.match_info['id']}/{request.match_info['alias']}")
    await asyncio.to_thread(
        container_service(request).remove, request.match_info["id"],
        force=types.query_bool(q.get("force")), volumes=types.query_bool(q.get("v")),
    )
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    await asyncio.to_thread(
        container_service(request).rename, request.match_info["id"], request.query.get("name", "")
    )
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    changes = convert.update_changes(await _json_body(request))
    warnings = await asyncio.to_thread(container_service(request).update, request.match_info["id"], changes)
    return web.json_response({"Warnings": warnings})


async def wait(request: web.Request) -> web.StreamResponse:
    svc = container_service(request)
    fut = await asyncio.to_thread(svc.wait_future, request.match_info["id"], request.query.get("condition", ""))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)  # headers now: the waiter is registered
    try:
        result = await asyncio.wrap_future(fut)
    except asyncio.CancelledError:
        svc.cancel_wait(fut)
        raise
    body: dict[str, Any] = {"StatusCode": result.exit_code}
    if result.error:  # dockerd's WaitResponse.Error is `omitempty`: absent, not null, without one
        body["Error"] = {"Message": result.error}
    await response.write(json.dumps(body).encode() + b"\n")
    await response.write_eof()
    return response


async def prune(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    removed, freed = await asyncio.to_thread(container_service(request).prune, filters=filters)
    return web.json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})
