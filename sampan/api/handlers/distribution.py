"""Registry endpoints (swagger v1.51 "Image" and "Distribution"): pull (``POST /images/create``
with ``fromImage``), push, ``POST /auth`` and ``GET /distribution/{name}/json``.

Credentials arrive per request in ``X-Registry-Auth`` (base64url JSON; ``POST /auth`` has them
as its JSON body) and are handed to the engine for that request only.  Pull and push answer
with Docker's JSON progress stream; a failure after the 200 is reported in band.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sampan.api.services import services
from sampan.api.streams import JSONStream
from sampan.distribution.auth import credentials_from_json, decode_registry_auth
from sampan.engine.distribution import DistributionService
from sampan.errors import InvalidArgument, NotImplementedFeature
from sampan.image.config import parse_platform


def registry_config(svc: DistributionService) -> dict[str, Any]:
    """``/info``'s RegistryConfig from the daemon's registry settings."""
    from sampan.distribution.mirrors import parse_mirror

    opts = svc.options
    cidrs = ["::1/128", "127.0.0.0/8", *(i for i in opts.insecure if "/" in i)]
    mirrors = [url for host, url in map(parse_mirror, opts.mirrors) if host in (None, "docker.io")]
    configs: dict[str, Any] = {
        "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True},
    }
    for host in opts.insecure:
        if "/" not in host:
            configs[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
    return {
        "AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
        "InsecureRegistryCIDRs": list(dict.fromkeys(cidrs)), "IndexConfigs": configs,
        "Mirrors": [parse_mirror(m)[1] for m in opts.mirrors],
    }


def _service(request: web.Request) -> DistributionService:
    svc = getattr(services(request), "distribution", None)
    if svc is None:
        raise NotImplementedFeature("registry operations are not implemented by this daemon (no registry client configured)")
    return svc  # type: ignore[no-any-return]


async def _progress_stream(request: web.Request, work: Any) -> web.StreamResponse:
    stream = JSONStream(request)
    # the 200 goes out with the first message: a failure before any (unknown image, refused
    # credentials, unreachable registry) is an HTTP error with its status, as dockerd answers
    try:
        await stream.run(work)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if not stream.response.prepared:
            raise
        await stream.send_error(exc)
    return await stream.finish()


async def pull(request: web.Request) -> web.StreamResponse:
    """``POST /images/create?fromImage=&tag=&platform=``."""
    q = request.query
    svc = _service(request)
    credentials = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    name, tag = q.get("fromImage", ""), q.get("tag", "")
    if not name:
        raise InvalidArgument("fromImage is required")
    if q.get("platform"):  # as dockerd: a bad platform is a 400 before the stream starts
        parse_platform(q["platform"])
    # as dockerd: no tag in ``tag`` nor in the name means every tag (the CLI sends "latest")
    all_tags = not tag and ":" not in name.rsplit("/", 1)[-1] and "@" not in name

    def work(on_progress: Any) -> None:
        svc.pull(name, tag=tag, platform=q.get("platform", ""), all_tags=all_tags,
                 credentials=credentials, on_progress=on_progress)

    return await _progress_stream(request, work)


async def push(request: web.Request) -> web.StreamResponse:
    """``POST /images/{name}/push?tag=``."""
    svc = _service(request)
    credentials = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    name, tag = request.match_info["name"], request.query.get("tag", "")

    def work(on_progress: Any) -> None:
        svc.push(name, tag=tag, credentials=credentials, on_progress=on_progress)

    return await _progress_stream(request, work)


async def auth(request: web.Request) -> web.Response:
    """``POST /auth``: ``{"Status": "Login Succeeded", "IdentityToken": ...}``."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidArgument("POST /auth: the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("POST /auth: the body is not a JSON object")
    credentials = credentials_from_json(body)
    svc = _service(request)
    token = await asyncio.to_thread(svc.login, credentials.server_address, credentials)
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": token})


async def inspect(request: web.Request) -> web.Response:
    """``GET /distribution/{name}/json``."""
    svc = _service(request)
    credentials = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    doc = await asyncio.to_thread(svc.inspect, request.match_info["name"], credentials=credentials)
    desc = doc["descriptor"]
    return web.json_response({
        "Descriptor": {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]},
        "Platforms": doc["platforms"],
    })
