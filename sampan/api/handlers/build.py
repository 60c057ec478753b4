"""``POST /build`` (the legacy builder protocol) and ``POST /build/prune``.

The body is the context tar (plain or gzip), or ``remote`` names a context the daemon fetches
(an http(s) tar or Dockerfile, or a git repository: ``build/remote.py``); the query carries what the docker CLI sends:
``t`` (repeatable), ``dockerfile``, ``buildargs``/``labels``/``cachefrom`` (JSON), ``target``,
``nocache``, ``pull``, ``rm``/``forcerm`` (intermediate containers are always removed: RUN
steps never leave one), ``q``, ``networkmode``, ``memory``, ``cpushares``, ``shmsize``,
``extrahosts``, ``platform``; the ``X-Registry-Config`` header carries the credentials used
when a ``FROM`` image is pulled (not local, or ``pull=1``).  The answer is a JSON stream of ``{"stream": text}`` lines,
``{"aux": {"ID": id}}`` once the image exists, and errors in band (``errorDetail``).

A client that hangs up (Ctrl-C of ``docker build`` or ``sampan build``) cancels the build: no
further step starts, and a RUN step that is running is killed within ~0.1 s (its container,
mounts and cgroup removed, nothing committed or cached).

Network modes: ``default`` and ``bridge`` put RUN steps on the default bridge network (NAT to
the outside, the host's resolvers), ``host`` in the host's network namespace, ``none`` on
loopback only; the name or ID of a user-defined network puts them on it (its embedded DNS
resolves its containers' names and aliases).  ``extrahosts`` may repeat (as the docker CLI and
docker-py send it) or hold a comma-separated list; ``squash`` is refused, as by a dockerd
without experimental mode.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from sampan.api import types
from sampan.api.services import services
from sampan.api.streams import JSONStream, body_reader
from sampan.build.backend import Resources
from sampan.build.builder import BuildOptions
from sampan.build.remote import classify
from sampan.distribution.auth import Credentials, credentials_from_json
from sampan.errors import InvalidArgument, NotImplementedFeature, Unavailable
from sampan.image.config import host_platform_pair, parse_platform

_NETWORKS = {"": "bridge", "default": "bridge", "bridge": "bridge", "host": "host", "none": "none"}


def _json(q: Any, name: str, default: Any) -> Any:
    raw = q.get(name, "")
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name} JSON: {raw}") from None


def _int(q: Any, name: str) -> int:
    raw = q.get(name, "") or "0"
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: {raw}") from None


def options(q: Any) -> tuple[BuildOptions, str, bool]:
    """(options, dockerfile name, quiet) from the query of ``POST /build``."""
    if q.get("remote"):  # fetched by the daemon (build/remote.py); a non-URL is a 400 here
        classify(q["remote"])
    build_args = {k: v for k, v in (_json(q, "buildargs", {}) or {}).items() if v is not None}
    labels = _json(q, "labels", {}) or {}
    cache_from = _json(q, "cachefrom", []) or []
    if not isinstance(build_args, dict) or not isinstance(labels, dict) or not isinstance(cache_from, list):
        raise InvalidArgument("buildargs and labels must be JSON objects, cachefrom a JSON list")
    if types.query_bool(q.get("squash")):  # dockerd without --experimental says the same
        raise InvalidArgument("squash is only supported with experimental mode")
    network = q.get("networkmode", "")
    if network.startswith("container:"):
        raise NotImplementedFeature(f"network mode {network!r} is not supported for builds")
    platform = q.get("platform", "")
    if platform and parse_platform(platform)[:2] != host_platform_pair():
        raise InvalidArgument(f"platform {platform} is not this machine's ({'/'.join(host_platform_pair())})")
    opts = BuildOptions(
        dockerfile="", tags=q.getall("t", []), build_args={str(k): str(v) for k, v in build_args.items()},
        labels={str(k): str(v) for k, v in labels.items()}, target=q.get("target", ""),
        no_cache=types.query_bool(q.get("nocache")), pull=types.query_bool(q.get("pull")),
        cache_from=[str(c) for c in cache_from], network=_NETWORKS.get(network, network),
        resources=Resources(memory=_int(q, "memory"), cpu_shares=_int(q, "cpushares"), shm_size=_int(q, "shmsize")),
        extra_hosts=[h for v in q.getall("extrahosts", []) for h in v.split(",") if h], platform=platform,
    )
    return opts, q.get("dockerfile", ""), types.query_bool(q.get("q"))


def registry_config(header: str | None) -> dict[str, Credentials]:
    """``X-Registry-Config``: base64 JSON of registry -> AuthConfig (the docker CLI's whole
    credential store), used when a ``FROM`` image has to be pulled."""
    if not header or not header.strip():
        return {}
    try:
        padded = header.strip() + "=" * (-len(header.strip()) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("X-Registry-Config: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        return {}
    return {str(k): credentials_from_json(v) for k, v in data.items() if isinstance(v, dict)}


async def build(request: web.Request) -> web.StreamResponse:
    builds = services(request).builds
    if builds is None:
        raise Unavailable("builds are not available on this daemon")
    opts, dockerfile, quiet = options(request.query)
    networks = services(request).networks
    if opts.network not in ("bridge", "host", "none") and networks is not None:
        await asyncio.to_thread(networks.get, opts.network)  # a missing network is a 404 before the stream
    auths = registry_config(request.headers.get("X-Registry-Config"))
    stream = JSONStream(request)
    await stream.start()
    body = body_reader(request, asyncio.get_running_loop())
    try:

        def work(on_progress: Any) -> str:
            def log(text: str) -> None:
                if not quiet and text:
                    on_progress({"stream": text})

            def built(image_id: str) -> None:
                on_progress({"aux": {"ID": image_id}})

            def gone() -> bool:  # the client hung up (polled by the build's threads)
                transport = request.transport
                return transport is None or transport.is_closing()

            return builds.build(body, opts, dockerfile=dockerfile, log=log, on_built=built,
                                registry_auths=auths, cancelled=gone,
                                remote=request.query.get("remote", "")).image_id

        image_id = await stream.run(work)
        if quiet:
            await stream.send({"stream": image_id + "\n"})
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        await stream.send_error(exc)
    return await stream.finish()


async def prune(request: web.Request) -> web.Response:
    builds = services(request).builds
    if builds is None:
        raise Unavailable("builds are not available on this daemon")
    everything = types.query_bool(request.query.get("all"))
    removed, freed = await asyncio.to_thread(builds.prune, all=everything)
    return web.json_response({"CachesDeleted": removed or None, "SpaceReclaimed": freed})
