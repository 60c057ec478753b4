"""Exec endpoints (swagger v1.51 "Exec"): create, start (hijacked), resize, inspect.

``POST /exec/{id}/start`` with ``Detach`` answers 200 at once; otherwise it takes the
connection over (``101 UPGRADED``, or a 200 stream for a client that did not ask for the
upgrade) and relays: stdin from the client (through the detach-key scanner) to the process,
its output back (8-byte frames without a TTY).  A half-close from the client closes the
process's stdin; output keeps flowing until the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from sampan import errors
from sampan.api import types_io
from sampan.api.hijack import HijackedStream, open_stream
from sampan.api.multiplex import STDERR, STDOUT, SYSTEMERR, frame
from sampan.api.services import api_version, services
from sampan.engine.attach import DetachScanner, parse_detach_keys
from sampan.engine.exec import ExecConfig, ExecService


def _execs(request: web.Request) -> ExecService:
    svc = services(request).execs
    if svc is None:
        raise errors.Unavailable("exec is not available in this daemon")
    return svc


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise errors.InvalidArgument("the request body must be a JSON object")
    # Go decodes JSON field names case-insensitively: docker-py sends "detachKeys"
    canonical = {k.lower(): k for k in _FIELDS}
    return {canonical.get(str(k).lower(), str(k)): v for k, v in body.items()}


_FIELDS = ("AttachStdin", "AttachStdout", "AttachStderr", "DetachKeys", "Tty", "Env", "Cmd",
           "Privileged", "User", "WorkingDir", "ConsoleSize", "Detach")


def _strs(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument(f"{key} must be a list of strings")
    return list(value)


def _size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    if value not in (None, []):
        raise errors.InvalidArgument("ConsoleSize must be [height, width]")
    return None


async def create(request: web.Request) -> web.Response:
    body = await _body(request)
    keys = str(body.get("DetachKeys") or "")
    parse_detach_keys(keys)  # refuse a bad value now, not at start
    config = ExecConfig(
        cmd=_strs(body, "Cmd"),
        env=_strs(body, "Env"),
        user=str(body.get("User") or ""),
        working_dir=str(body.get("WorkingDir") or ""),
        tty=bool(body.get("Tty")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
        privileged=bool(body.get("Privileged")),
        detach_keys=keys,
        console_size=_size(body.get("ConsoleSize")),
    )
    e = _execs(request).create(request.match_info["id"], config)
    return web.json_response({"Id": e.id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    svc = _execs(request)
    body = await _body(request)
    e = svc.get(request.match_info["id"])
    if e.started:
        raise errors.Conflict(f"Error: Exec command {e.id} has already run")
    c = svc.containers.get(e.container_id)
    if not c.state.running or c.state.paused:
        raise errors.ContainerNotRunning(f"container {c.id} is not running")
    # the process's terminal is the create's Tty; the start's Tty says how the stream is framed
    tty = bool(body.get("Tty", e.config.tty))
    size = _size(body.get("ConsoleSize"))
    if body.get("Detach"):
        await svc.start(e.id, detach=True, console_size=size)
        return web.Response(status=200)
    out = await open_stream(request, tty=tty, api_version=api_version(request))
    cfg = e.config
    scanner = DetachScanner(parse_detach_keys(cfg.detach_keys))
    detached = asyncio.Event()

    async def output(stream: str, data: bytes) -> None:
        if (stream == "stdout" and not cfg.attach_stdout) or (stream == "stderr" and not cfg.attach_stderr):
            return
        await out.write(data if tty else frame(STDERR if stream == "stderr" else STDOUT, data))

    async def stdin() -> bytes:
        while True:
            data = await out.read()
            if not data:
                return scanner.flush()
            passed, detach = scanner.feed(data)
            if detach:
                detached.set()
                await asyncio.Event().wait()  # detached: the process keeps its stdin open
            if passed:
                return passed

    run = asyncio.ensure_future(svc.start(e.id, output=output, stdin=stdin, console_size=size))
    watchers: set[asyncio.Future[Any]] = {run, asyncio.ensure_future(detached.wait())}
    if isinstance(out, HijackedStream):
        watchers.add(asyncio.ensure_future(out.wait_gone()))
    try:
        await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        if detached.is_set() and not run.done():
            c = svc.containers.get(e.container_id)
            services(request).events.publish("container", "exec_detach", c.id, {
                **c.spec.labels, "execID": e.id, "image": c.image_name or c.image_id, "name": c.name,
            })
        if run.done():
            with contextlib.suppress(ConnectionError):
                exc = run.exception()
                if isinstance(exc, errors.SampanError):
                    msg = exc.message.encode()
                    await out.write(msg if tty else frame(SYSTEMERR, msg))
                elif exc is not None:
                    raise exc
    except ConnectionError:
        pass
    finally:
        for w in watchers:
            if w is not run and not w.done():
                w.cancel()
        # detached or gone: the process keeps running; its exit is still recorded
        await out.close()
    return out.response()


async def resize(request: web.Request) -> web.Response:
    q = request.query
    try:
        h, w = int(q.get("h", "0")), int(q.get("w", "0"))
    except ValueError:
        raise errors.InvalidArgument("invalid height or width") from None
    _execs(request).resize(request.match_info["id"], h, w)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    svc = _execs(request)
    e = svc.get(request.match_info["id"])
    svc.pid_of(e)
    return web.json_response(types_io.exec_inspect_json(e, container_id=e.container_id))
