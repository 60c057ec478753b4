"""Container I/O endpoints (swagger v1.51 "Container"): attach, resize, logs, stats, top.

Attach answers ``101 UPGRADED`` (``api/hijack.py``) and relays the shim's stream, which is
already in Docker's format (8-byte frames without a TTY, raw with one), in both directions:
stdin through the detach-key scanner to the shim, output to the client.  A half-close from
the client ends the container's stdin (for ``StdinOnce`` containers) while output keeps
flowing; the session ends when the container exits, the client leaves, or it types the
detach keys.  Attaching to a container that is not running waits for its next start (that is
how ``docker run`` attaches before starting).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from sampan import errors
from sampan.api import types, types_io, versions
from sampan.api.hijack import HijackedStream, Stream, content_type, open_stream
from sampan.api.multiplex import STDERR, STDOUT, Demuxer, frame
from sampan.api.services import api_version, services
from sampan.engine import logs as logmod
from sampan.engine.attach import AttachService, DetachScanner, parse_detach_keys
from sampan.engine.containers import ContainerService
from sampan.engine.stats import StatsService

log = logging.getLogger("sampan.api")


def _containers(request: web.Request) -> ContainerService:
    svc = services(request).containers
    if svc is None:
        raise errors.Unavailable("containers are not available in this daemon")
    return svc


def _attach_service(request: web.Request) -> AttachService:
    svc = services(request).attach
    if svc is None:
        raise errors.Unavailable("attach is not available in this daemon")
    return svc


def _flag(request: web.Request, key: str, default: bool = False) -> bool:
    value = request.query.get(key)
    return default if value is None else types.query_bool(value)


def _int(request: web.Request, key: str, default: int = 0) -> int:
    value = request.query.get(key, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {key}: {value!r}") from None


# ---------------------------------------------------------------- attach


async def relay(
    client: Stream, sock: socket.socket, *, keys: bytes, stdin: bool,
    on_stdin_eof: Callable[[], Awaitable[None]] | None = None,
) -> str:
    """Pump the shim socket and the client both ways; returns why it ended
    (``exit``, ``detach``, ``gone``).  ``on_stdin_eof`` runs when the client's stdin ends
    (half-close or disconnection), not when it detaches."""
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def output() -> str:
        while data := await reader.read(65536):
            try:
                await client.write(data)
            except ConnectionError:
                return "gone"
        return "exit"

    async def input_() -> str:
        scanner = DetachScanner(keys if stdin else b"")
        while data := await client.read():
            if not stdin:
                continue
            passed, detach = scanner.feed(data)
            if passed:
                writer.write(passed)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            if detach:
                return "detach"
        held = scanner.flush()
        if held:
            writer.write(held)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        if stdin and on_stdin_eof is not None:
            eof_done.set()
            await on_stdin_eof()
        if client.gone:
            return "gone"
        return "eof"

    eof_done = asyncio.Event()
    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input_())
    waiters: set[asyncio.Future[Any]] = {out_task, in_task}
    gone_task: asyncio.Future[Any] | None = None
    if isinstance(client, HijackedStream):
        gone_task = asyncio.ensure_future(client.wait_gone())
        waiters.add(gone_task)
    why = "exit"
    try:
        while True:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                why = out_task.result()
                break
            if gone_task is not None and gone_task in done:
                why = "gone"
                break
            if in_task in done:
                waiters.discard(in_task)
                result = in_task.result()
                if result in ("detach", "gone"):
                    why = result
                    break
    finally:
        for t in (out_task, in_task, gone_task):
            if t is not None and not t.done():
                t.cancel()
        with contextlib.suppress(Exception):
            writer.close()
    if why == "gone" and stdin and on_stdin_eof is not None and not eof_done.is_set():
        await on_stdin_eof()  # a client that went away has no more stdin either
    return why


async def _send_log_history(out: Stream, path: str, *, tty: bool, stdout: bool, stderr: bool) -> None:
    opts = logmod.LogOptions(stdout=stdout, stderr=stderr)
    entries, _ = await asyncio.to_thread(logmod.read_history, path, opts)
    for e in entries:
        await out.write(e.data if tty else frame(STDERR if e.stream == "stderr" else STDOUT, e.data))


async def attach(request: web.Request) -> web.StreamResponse:
    containers = _containers(request)
    attacher = _attach_service(request)
    name = request.match_info["id"]
    c = await asyncio.to_thread(containers.get, name)
    keys = parse_detach_keys(request.query.get("detachKeys", ""))
    want_logs = _flag(request, "logs")
    want_stream = _flag(request, "stream")
    stdin = _flag(request, "stdin")
    stdout = _flag(request, "stdout")
    stderr = _flag(request, "stderr")
    out = await open_stream(request, tty=c.spec.tty, api_version=api_version(request))
    try:
        if want_logs and (stdout or stderr):
            await _send_log_history(out, c.log_path, tty=c.spec.tty, stdout=stdout, stderr=stderr)
        if want_stream:
            opening = asyncio.ensure_future(
                attacher.open(c.id, stdin=stdin, stdout=stdout, stderr=stderr)
            )
            watchers: set[asyncio.Future[Any]] = {opening}
            gone = None
            if isinstance(out, HijackedStream):
                gone = asyncio.ensure_future(out.wait_gone())
                watchers.add(gone)
            done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            if gone is not None and gone not in done:
                gone.cancel()
            if opening in done:
                _, sock = opening.result()
                if sock is not None:
                    services(request).events.publish(
                        "container", "attach", c.id,
                        {**c.spec.labels, "image": c.image_name or c.image_id, "name": c.name},
                    )
                    cid = c.id

                    async def stdin_eof() -> None:
                        await attacher.close_stdin(cid)

                    with sock:
                        why = await relay(out, sock, keys=keys, stdin=stdin and c.spec.open_stdin,
                                          on_stdin_eof=stdin_eof)
                    if why == "detach":
                        services(request).events.publish(
                            "container", "detach", c.id,
                            {**c.spec.labels, "image": c.image_name or c.image_id, "name": c.name},
                        )
            else:
                opening.cancel()
    except errors.SampanError as exc:
        with contextlib.suppress(ConnectionError):
            await out.write(exc.message.encode() if c.spec.tty else frame(3, exc.message.encode()))
    except ConnectionError:
        pass
    finally:
        await out.close()
    return out.response()


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """``GET /containers/{id}/attach/ws``: the same session over a WebSocket; output is raw
    (frames' payloads, no 8-byte headers), binary messages from API 1.28 on (text before)."""
    containers = _containers(request)
    attacher = _attach_service(request)
    c = await asyncio.to_thread(containers.get, request.match_info["id"])
    stdin, stdout, stderr = _flag(request, "stdin"), _flag(request, "stdout"), _flag(request, "stderr")
    binary = not versions.before(api_version(request), "1.28")
    ws = web.WebSocketResponse()
    await ws.prepare(request)

    async def send(data: bytes) -> None:
        if binary:
            await ws.send_bytes(data)
        else:
            await ws.send_str(data.decode("utf-8", "replace"))

    try:
        if _flag(request, "logs"):
            entries, _ = await asyncio.to_thread(
                logmod.read_history, c.log_path, logmod.LogOptions(stdout=stdout, stderr=stderr)
            )
            for e in entries:
                await send(e.data)
        if _flag(request, "stream"):
            _, sock = await attacher.open(c.id, stdin=stdin, stdout=stdout, stderr=stderr)
            if sock is not None:
                with sock:
                    await _relay_ws(ws, sock, send, tty=c.spec.tty, stdin=stdin and c.spec.open_stdin)
    except ConnectionError:
        pass
    finally:
        await ws.close()
    return ws


async def _relay_ws(ws: web.WebSocketResponse, sock: socket.socket, send: Any, *, tty: bool, stdin: bool) -> None:
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def output() -> None:
        demux = Demuxer()
        while data := await reader.read(65536):
            for payload in [data] if tty else [p for _, p in demux.feed(data)]:
                await send(payload)

    async def input_() -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and stdin:
                writer.write(msg.data if isinstance(msg.data, bytes) else str(msg.data).encode())
                await writer.drain()

    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input_())
    try:
        await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (out_task, in_task):
            t.cancel()
        writer.close()


async def resize(request: web.Request) -> web.Response:
    containers = _containers(request)
    h, w = _int(request, "h"), _int(request, "w")
    c = await asyncio.to_thread(containers.get, request.match_info["id"])
    if not c.state.running:
        raise errors.ContainerNotRunning(f"Container {c.id} is not running")
    client = containers.runner.client(c.id)
    await asyncio.to_thread(client.resize, h, w)
    services(request).events.publish("container", "resize", c.id, {
        **c.spec.labels, "height": str(h), "width": str(w), "image": c.image_name or c.image_id, "name": c.name,
    })
    return web.Response(status=200)


# ---------------------------------------------------------------- logs


async def container_logs(request: web.Request) -> web.StreamResponse:
    containers = _containers(request)
    c = await asyncio.to_thread(containers.get, request.match_info["id"])
    stdout, stderr = _flag(request, "stdout"), _flag(request, "stderr")
    if not (stdout or stderr):
        raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
    if c.host.log_config.type not in ("json-file", "local", ""):
        raise errors.InvalidArgument(
            f'configured logging driver does not support reading: "{c.host.log_config.type}"'
        )
    tail_text = request.query.get("tail", "all")
    try:
        tail = -1 if tail_text in ("", "all") else int(tail_text)
    except ValueError:
        tail = -1
    opts = logmod.LogOptions(
        stdout=stdout, stderr=stderr, tail=tail, follow=_flag(request, "follow"),
        since_ns=logmod.parse_timestamp_arg(request.query.get("since", "")),
        until_ns=logmod.parse_timestamp_arg(request.query.get("until", "")),
    )
    timestamps, details = _flag(request, "timestamps"), _flag(request, "details")
    tty = c.spec.tty
    response = web.StreamResponse(
        status=200, headers={"Content-Type": content_type(api_version(request), tty=tty)}
    )
    await response.prepare(request)

    async def send(e: logmod.LogEntry) -> None:
        data = logmod.format_entry(e, timestamps=timestamps, details=details)
        await response.write(data if tty else frame(STDERR if e.stream == "stderr" else STDOUT, data))

    try:
        entries, mark = await asyncio.to_thread(logmod.read_history, c.log_path, opts)
        for e in entries:
            await send(e)
        if opts.follow and c.state.running:
            cid = c.id

            def stopped() -> bool:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return True  # the client went away while nothing was written
                try:
                    return not containers.get(cid).state.running
                except errors.NotFound:
                    return True

            async for e in logmod.follow(c.log_path, opts, mark, stopped):
                await send(e)
        await response.write_eof()
    except ConnectionError:
        log.debug("logs of %s: the client went away", c.id[:12])
    return response


# ---------------------------------------------------------------- stats, top


async def stats(request: web.Request) -> web.StreamResponse:
    containers = _containers(request)
    svc: StatsService | None = services(request).stats
    if svc is None:
        raise errors.Unavailable("stats are not available in this daemon")
    c = await asyncio.to_thread(containers.get, request.match_info["id"])
    stream = _flag(request, "stream", True)
    one_shot = _flag(request, "one-shot")
    if one_shot and stream:
        raise errors.InvalidArgument("cannot have stream=true and one-shot=true")
    if not stream and (one_shot or not c.state.running):
        once = await asyncio.to_thread(svc.read_once, c.id)
        return web.json_response(types_io.stats_json(once, name=c.name, container_id=c.id))
    cid, queue = await svc.subscribe(c.id)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        while True:
            sample = await queue.get()
            if sample is None:
                break
            if not stream and not sample.pre_system_cpu_ns:
                continue  # one answer, with precpu filled: wait for the second sample
            body = json.dumps(types_io.stats_json(sample, name=c.name, container_id=c.id)) + "\n"
            await response.write(body.encode())
            if not stream or not sample.running:
                break
        await response.write_eof()
    except ConnectionError:
        pass
    finally:
        svc.unsubscribe(cid, queue)
    return response


async def top(request: web.Request) -> web.Response:
    containers = _containers(request)
    c = await asyncio.to_thread(containers.get, request.match_info["id"])
    if not c.state.running:
        raise errors.Conflict(f"Container {c.id} is not running")
    if c.state.restarting:
        raise errors.Conflict(f"Container {c.id} is restarting, wait until the container is running")
    args = request.query.get("ps_args", "") or "-ef"
    from sampan.runtime.cgroups import new_manager

    try:
        pids = set(await asyncio.to_thread(lambda: new_manager(f"/sampan/{c.id}", c.id).pids()))
    except (OSError, errors.SampanError) as exc:
        raise errors.Internal(f"top: read the container's processes: {exc}") from exc
    proc = await asyncio.create_subprocess_exec(
        "ps", *args.split(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise errors.Internal(f"Error running ps: exit status {proc.returncode}: {err.decode().strip()}")
    titles, processes = parse_ps(out.decode(errors="replace"), pids)
    return web.json_response({"Titles": titles, "Processes": processes})


def parse_ps(output: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    """Docker's top: the header's titles and the rows whose PID is one of ``pids``."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        raise errors.Internal("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise errors.InvalidArgument("Couldn't find PID field in ps output")
    col = titles.index("PID")
    rows = []
    for ln in lines[1:]:
        fields = ln.split(None, len(titles) - 1)
        try:
            pid = int(fields[col])
        except (ValueError, IndexError):
            continue
        if pid in pids:
            rows.append(fields)
    return titles, rows
