"""Health checks: the daemon runs a container's ``--health-cmd`` through exec, as dockerd does.

For each running container with a healthcheck (its own or its image's; ``NONE`` disables) a
probe task loops: wait the interval (``start-interval`` while still ``starting`` inside the
start period, when set), exec the test (``CMD`` args, or ``CMD-SHELL`` under ``/bin/sh -c``)
with the timeout, record ``{Start, End, ExitCode, Output}`` (the last 5 kept, output cut at 4
KiB), and update ``State.Health``:

* exit 0 -> ``healthy``, failing streak 0;
* a failure inside the start period does not count (the status stays ``starting``);
* otherwise the failing streak grows and reaching ``retries`` makes it ``unhealthy``;
* a probe that outlives its timeout is killed and counts as a failure (exit -1).

Each status change publishes ``health_status: <status>``.  Defaults as Docker: interval 30 s,
timeout 30 s, start period 0, start interval 5 s, retries 3.  The monitor follows the event
bus: ``start`` starts a container's probe task, ``die``/``destroy`` ends it; at daemon start
it picks up containers already running (live restore).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from sampan import errors
from sampan.engine.events import EventBus
from sampan.engine.exec import ExecConfig, ExecService
from sampan.engine.model import Health, HealthConfig, HealthLogEntry

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService
    from sampan.engine.model import Container

log = logging.getLogger("sampan.health")

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
PROBE_KILL_GRACE = 2.0  # s for the runtime's exec to reap a killed probe before it is killed too


def probe_command(test: list[str]) -> list[str] | None:
    """The argv to exec for a healthcheck test; None when there is none (``NONE``, empty)."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])] if len(test) > 1 else None
    return list(test)  # a bare command (older clients)


def apply_result(health: Health, hc: HealthConfig, entry: HealthLogEntry, *, in_start_period: bool) -> bool:
    """Fold one probe result into ``health``; True if the status changed."""
    before = health.status
    health.log = [*health.log, entry][-MAX_LOG:]
    if entry.exit_code == 0:
        health.status = "healthy"
        health.failing_streak = 0
    elif in_start_period and health.status == "starting":
        pass
    else:
        health.failing_streak += 1
        retries = hc.retries or DEFAULT_RETRIES
        if health.failing_streak >= retries:
            health.status = "unhealthy"
    return health.status != before


def _rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


class HealthMonitor:
    def __init__(self, containers: ContainerService, execs: ExecService, events: EventBus) -> None:
        self.containers = containers
        self.execs = execs
        self.events = events
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the event loop: follow container events; adopt running containers."""
        self._watcher = asyncio.ensure_future(self._watch())
        for c in self.containers.all():
            if c.state.running:
                self._begin(c.id)

    async def close(self) -> None:
        tasks = [t for t in (self._watcher, *self._tasks.values()) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _watch(self) -> None:
        _, sub = self.events.subscribe()
        try:
            while True:
                ev = await sub.get()
                if ev.type != "container":
                    continue
                if ev.action in ("start", "restart", "unpause"):
                    self._begin(ev.actor_id)
                elif ev.action in ("die", "destroy"):
                    self._end(ev.actor_id)
        finally:
            sub.close()

    def _begin(self, cid: str) -> None:
        try:
            c = self.containers.get(cid)
        except errors.NotFound:
            return
        hc = c.spec.healthcheck
        if hc is None or probe_command(hc.test) is None:
            return
        t = self._tasks.get(cid)
        if t is not None and not t.done():
            return
        c.state.health = Health(status="starting")
        self._tasks[cid] = asyncio.ensure_future(self._loop(cid, hc))

    def _end(self, cid: str) -> None:
        t = self._tasks.pop(cid, None)
        if t is not None:
            t.cancel()

    def _save(self, c: Container) -> None:
        save = getattr(self.containers, "save", None) or self.containers._save
        save(c)

    async def _loop(self, cid: str, hc: HealthConfig) -> None:
        started = time.monotonic()
        interval = hc.interval_ns / 1e9 or DEFAULT_INTERVAL
        start_interval = hc.start_interval_ns / 1e9 or DEFAULT_START_INTERVAL
        start_period = hc.start_period_ns / 1e9
        timeout = hc.timeout_ns / 1e9 or DEFAULT_TIMEOUT
        argv = probe_command(hc.test) or []
        with contextlib.suppress(errors.NotFound):
            await asyncio.to_thread(self._save, self.containers.get(cid))  # never a DB write on the loop
        while True:
            try:
                c = self.containers.get(cid)
            except errors.NotFound:
                return
            health = c.state.health or Health()
            in_period = time.monotonic() - started < start_period
            wait = start_interval if (in_period and health.status == "starting" and hc.start_interval_ns) else interval
            await asyncio.sleep(wait)
            if not c.state.running:
                return
            if c.state.paused:
                continue
            entry = await self.probe(c, argv, timeout)
            in_period = time.monotonic() - started < start_period
            health = c.state.health or Health()
            changed = apply_result(health, hc, entry, in_start_period=in_period)
            c.state.health = health
            await asyncio.to_thread(self._save, c)
            if changed:
                self.events.publish("container", f"health_status: {health.status}", c.id, {
                    **c.spec.labels, "image": c.image_name or c.image_id, "name": c.name,
                })

    async def probe(self, c: Container, argv: list[str], timeout: float) -> HealthLogEntry:
        start = _rfc3339()
        out = bytearray()

        async def collect(stream: str, data: bytes) -> None:
            if len(out) < MAX_OUTPUT:
                out.extend(data[: MAX_OUTPUT - len(out)])

        async def no_stdin() -> bytes:
            return b""

        try:
            e = self.execs.create(c.id, ExecConfig(cmd=argv, attach_stdin=False))
        except errors.SampanError as exc:
            return HealthLogEntry(start, _rfc3339(), -1, str(exc))
        task = asyncio.ensure_future(self.execs.start(e.id, output=collect, stdin=no_stdin))
        try:
            code = await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            pid = self.execs.pid_of(e)
            if pid > 0:  # the probe itself, inside the container
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            # the runtime's exec reaps the probe and exits; killing it first would orphan the
            # probe's zombie to whatever init the daemon has, and the container's pid 1 cannot
            # finish exiting until every process of its pid namespace is reaped
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), PROBE_KILL_GRACE)
            if e.proc is not None and e.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    e.proc.kill()
            with contextlib.suppress(Exception):
                await task
            secs = f"{timeout:g}s"
            return HealthLogEntry(start, _rfc3339(), -1, f"Health check exceeded timeout ({secs})")
        except errors.SampanError as exc:
            return HealthLogEntry(start, _rfc3339(), -1, str(exc))
        return HealthLogEntry(start, _rfc3339(), int(code or 0), out.decode("utf-8", "replace"))
