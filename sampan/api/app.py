"""The Engine API application: middlewares, common headers and the services it serves.

Request flow: ``log`` (one debug line per request) -> ``errors`` (a :class:`SampanError` or
an unexpected exception becomes Docker's ``{"message": ...}`` with the status from
``api/errors.py``) -> ``version`` (negotiates the ``/v1.NN/`` prefix into
``request["api_version"]``) -> the handler from ``routes.py``.  Every response, streamed or
not, gets ``Api-Version``, ``Server`` and ``Ostype`` just before its headers are sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from sampan import API_VERSION, __version__
from sampan.api import versions
from sampan.api.errors import status_for
from sampan.api.handlers.system import EVENT_STREAMS
from sampan.api.routes import add_routes
from sampan.api.services import API_VERSION_KEY, SERVICES, Services
from sampan.errors import SampanError

log = logging.getLogger("sampan.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


SERVER = f"sampan/{__version__} (linux)"


def json_error(status: int, message: str) -> web.Response:
    # Exactly "application/json" (no charset): the docker CLI compares the header verbatim and
    # otherwise prints the raw body instead of the message.
    body = json.dumps({"message": message}).encode()
    return web.Response(body=body, status=status, content_type="application/json")


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.monotonic()
    status: int | str = "aborted"
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s (%.1f ms)",
                request.method,
                request.path_qs,
                status,
                (time.monotonic() - start) * 1000,
            )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SampanError as exc:
        return json_error(status_for(exc), exc.message)
    except web.HTTPNotFound:
        return json_error(404, "page not found")
    except web.HTTPMethodNotAllowed:
        return json_error(405, "method not allowed")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return json_error(exc.status, exc.text or exc.reason)
        raise
    except (ConnectionResetError, web.HTTPClientError):
        raise
    except Exception as exc:
        log.error("%s %s failed", request.method, request.path, exc_info=exc)
        return json_error(500, f"internal error: {type(exc).__name__}: {exc}")


@web.middleware
async def negotiate_version(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[API_VERSION_KEY] = versions.negotiate(request.match_info.get("version"))
    return await handler(request)


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = API_VERSION
    response.headers["Server"] = SERVER
    response.headers["Ostype"] = "linux"


async def _close_event_streams(app: web.Application) -> None:
    streams = app[EVENT_STREAMS]
    for task in tuple(streams):
        task.cancel()


async def _start_health(app: web.Application) -> None:
    health = app[SERVICES].health
    if health is not None:
        health.start()  # health checks run on the server's loop


async def _stop_health(app: web.Application) -> None:
    health = app[SERVICES].health
    if health is not None:
        await health.close()


def make_app(svc: Services) -> web.Application:
    app = web.Application(middlewares=[log_requests, json_errors, negotiate_version])
    app[SERVICES] = svc
    app[EVENT_STREAMS] = set()
    app.on_shutdown.append(_close_event_streams)
    app.on_startup.append(_start_health)
    app.on_cleanup.append(_stop_health)
    app.on_response_prepare.append(_common_headers)
    add_routes(app)
    return app
