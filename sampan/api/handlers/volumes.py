"""Volume endpoints (swagger v1.51 "Volume"): list, create, inspect, remove, prune."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from sampan import errors
from sampan.api import types
from sampan.api import types_containers as tc
from sampan.api.services import services
from sampan.engine.volumes import VolumeService


def volume_service(request: web.Request) -> VolumeService:
    svc = services(request).volumes
    if svc is None:
        raise errors.Unavailable("volumes are not available in this daemon")
    return svc


async def list_volumes(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    found = await asyncio.to_thread(volume_service(request).list, filters=filters)
    return web.json_response({"Volumes": [tc.volume_json(v) for v in found], "Warnings": []})


async def create(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise errors.InvalidArgument("volume create body must be a JSON object")
    labels = body.get("Labels") or {}
    options = body.get("DriverOpts") or {}
    if not isinstance(labels, dict) or not isinstance(options, dict):
        raise errors.InvalidArgument("Labels and DriverOpts must be objects")
    v = await asyncio.to_thread(
        volume_service(request).create, str(body.get("Name") or ""), driver=str(body.get("Driver") or "local"),
        labels={str(k): str(v) for k, v in labels.items()}, options={str(k): str(v) for k, v in options.items()},
    )
    return web.json_response(tc.volume_json(v), status=201)


async def inspect(request: web.Request) -> web.Response:
    v = await asyncio.to_thread(volume_service(request).inspect, request.match_info["name"])
    return web.json_response(tc.volume_json(v))


async def remove(request: web.Request) -> web.Response:
    await asyncio.to_thread(
        volume_service(request).remove, request.match_info["name"], force=types.query_bool(request.query.get("force"))
    )
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    removed, freed = await asyncio.to_thread(volume_service(request).prune, filters=filters)
    return web.json_response({"VolumesDeleted": removed or None, "SpaceReclaimed": freed})
