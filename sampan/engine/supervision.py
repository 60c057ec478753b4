"""What happens to a container between user actions: exits, restarts, waiters.

The shim reports an exit on its socket; a *monitor* thread per running container waits for it
(``watch``) and calls ``handle_exit``, which records the exit, answers the waiters, asks the
shim to delete the runtime's container, and then removes the container (``--rm``) or
schedules its restart (``restart.py`` decides; Docker's back-off sets the delay).  A
*generation* number per start makes a late report of an older run harmless.

Waiters (``wait_future``) are futures answered by condition: ``not-running`` (at once if the
container is not running), ``next-exit``, ``removed``.

This is the base of :class:`~sampan.engine.containers.ContainerService`; the attributes it
uses are created there.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.engine import lifecycle, restart
from sampan.engine.model import Container

if TYPE_CHECKING:
    from sampan.engine.events import EventBus
    from sampan.engine.runner import Runner

log = logging.getLogger("sampan.containers")
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


@dataclass
class WaitResult:
    exit_code: int
    error: str = ""


@dataclass
class _Waiter:
    id: str
    condition: str
    future: concurrent.futures.Future[WaitResult]


class Supervision:
    _lock: threading.RLock
    _changed: threading.Condition
    _containers: dict[str, Container]
    _waiters: builtins.list[_Waiter]
    _exits: dict[str, int]
    _generation: dict[str, int]
    _timers: dict[str, threading.Timer]
    _backoff: dict[str, restart.Backoff]
    _started_mono: dict[str, float]
    _cleaned: dict[str, threading.Event]
    runner: Runner
    events: EventBus

    def get(self, name: str) -> Container:
        raise NotImplementedError

    def remove(self, name: str, *, force: bool = False, volumes: bool = False) -> None:
        raise NotImplementedError

    def _op(self, cid: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _save(self, c: Container) -> None:
        raise NotImplementedError

    def _event(self, c: Container, action: str, **extra: str) -> None:
        raise NotImplementedError

    def _start_locked(self, c: Container) -> None:
        raise NotImplementedError

    def _network_down(self, c: Container) -> None:
        raise NotImplementedError

    def _volume_events(self, c: Container, action: str) -> None:
        """Docker's volume ``mount``/``unmount`` events for a container's volumes."""
        for m in c.mount_points:
            if m.type == "volume":
                attrs = {"container": c.id, "driver": m.driver or "local"}
                if action == "mount":
                    attrs |= {"destination": m.destination, "read/write": str(m.rw).lower(), "propagation": ""}
                self.events.publish("volume", action, m.name, attrs)

    def _wait_exit(self, c: Container, before: int, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._exits.get(c.id, 0) == before and c.state.status in (lifecycle.RUNNING, lifecycle.PAUSED):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def next_generation(self, cid: str) -> int:
        with self._lock:
            gen = self._generation[cid] = self._generation.get(cid, 0) + 1
            return gen

    def adopt(self, cid: str, gen: int, pid: int) -> None:
        """Watch a container a previous daemon started (live restore)."""
        with self._lock:
            c = self._containers[cid]
            c.state.pid = pid
            self._started_mono[cid] = time.monotonic()
            self._save(c)
        self.watch(cid, gen)

    def mark_dead(self, cid: str) -> None:
        with self._lock:
            c = self._containers[cid]
            lifecycle.apply(c.state, lifecycle.DEAD)
            self._save(c)

    def start_restored(self, cid: str) -> None:
        """Start a container at daemon start (restart policy); not a user action."""
        c = self.get(cid)
        with self._op(cid):
            if c.state.status not in (lifecycle.EXITED, lifecycle.RESTARTING, lifecycle.CREATED):
                return
            if c.state.status == lifecycle.RESTARTING:
                c.restart_count += 1
            self._start_locked(c)

    def watch(self, cid: str, gen: int) -> None:
        """Wait, in a thread, for the container's exit as its shim reports it."""
        threading.Thread(target=self._monitor, args=(cid, gen), name=f"monitor-{cid[:12]}", daemon=True).start()

    def _monitor(self, cid: str, gen: int) -> None:
        status = self.runner.wait_exit(cid)
        try:
            self.handle_exit(cid, gen, status)
        except Exception:  # pragma: no cover - logged, never silently lost
            log.exception("container %s: handling its exit failed", cid[:12])

    def handle_exit(self, cid: str, gen: int, status: dict[str, Any], *, daemon_start: bool = False) -> None:
        """Record an exit the shim reported (or restore found); then --rm or restart.

        Waiters are answered first; the shim's delete (runtime state, cgroup: tens of ms)
        follows, and a start of the same container waits for it (``_cleaned``)."""
        oom = self.runner.oom_killed(cid)  # before the delete removes the cgroup
        with self._lock:
            c = self._containers.get(cid)
            if c is None or self._generation.get(cid, 0) != gen:
                return
            done = self._cleaned[cid] = threading.Event()
            code = status.get("exit_code")
            c.state.exit_code = int(code) if code is not None else 255
            c.state.oom_killed = oom
            c.state.finished_at = now_rfc3339()
            ran = time.monotonic() - self._started_mono.get(cid, time.monotonic())
            again = not c.host.auto_remove and restart.should_restart(
                c.host.restart_policy, exit_code=c.state.exit_code, restart_count=c.restart_count,
                manually_stopped=c.has_been_manually_stopped, daemon_start=daemon_start,
            ) and c.state.status != lifecycle.REMOVING
            if c.state.status != lifecycle.REMOVING:
                lifecycle.apply(c.state, lifecycle.RESTARTING if again else lifecycle.EXITED)
            c.state.pid = 0
            self._exits[cid] = self._exits.get(cid, 0) + 1
            self._save(c)
            # as dockerd (SetRestarting notifies too): a restarting container answers its waiters
            self._resolve(cid, ("next-exit", "not-running"), WaitResult(c.state.exit_code))
        self._event(c, "die", exitCode=str(c.state.exit_code))
        self._volume_events(c, "unmount")
        try:
            self.runner.delete(cid)
            self._network_down(c)
        finally:
            done.set()
        if c.host.auto_remove:
            threading.Thread(target=self._auto_remove, args=(cid,), daemon=True).start()
        elif again:
            delay = self._backoff.setdefault(cid, restart.Backoff()).next(ran)
            timer = threading.Timer(delay, self._restart_now, args=(cid,))
            timer.daemon = True
            with self._lock:
                self._timers[cid] = timer
            timer.start()

    def _wait_cleaned(self, cid: str) -> None:
        with self._lock:
            done = self._cleaned.get(cid)
        if done is not None:
            done.wait(60.0)

    def _auto_remove(self, cid: str) -> None:
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.remove(cid, force=True, volumes=True)

    def _restart_now(self, cid: str) -> None:
        with self._lock:
            self._timers.pop(cid, None)
            c = self._containers.get(cid)
        if c is None:
            return
        with self._op(cid):
            if c.state.status != lifecycle.RESTARTING or cid not in self._containers:
                return
            c.restart_count += 1
            try:
                self._start_locked(c)
            except errors.SampanError as exc:
                log.warning("container %s: restart failed: %s", cid[:12], exc)
                with self._lock:
                    lifecycle.apply(c.state, lifecycle.EXITED)
                    self._save(c)
                    self._resolve(cid, ("not-running",), WaitResult(c.state.exit_code, str(exc)))
                return
        self._event(c, "restart")

    def _cancel_restart(self, c: Container) -> bool:
        with self._lock:
            timer = self._timers.pop(c.id, None)
            if timer is not None:
                timer.cancel()
            if c.state.status == lifecycle.RESTARTING:
                lifecycle.apply(c.state, lifecycle.EXITED)
                self._save(c)
                self._resolve(c.id, ("not-running",), WaitResult(c.state.exit_code))
                return True
        return False

    # ------------------------------------------------------------------ waiting

    def wait_future(self, name: str, condition: str = "not-running") -> concurrent.futures.Future[WaitResult]:
        """A future answered when ``condition`` holds (not-running answers at once for a
        container that is not running)."""
        condition = condition or "not-running"
        if condition not in WAIT_CONDITIONS:
            raise errors.InvalidArgument(f"invalid condition: \"{condition}\"")
        c = self.get(name)
        fut: concurrent.futures.Future[WaitResult] = concurrent.futures.Future()
        with self._lock:
            if condition == "not-running" and not c.state.running:
                fut.set_result(WaitResult(c.state.exit_code, c.state.error))
            else:
                self._waiters.append(_Waiter(c.id, condition, fut))
        return fut

    def wait(self, name: str, condition: str = "not-running", timeout: float | None = None) -> WaitResult:
        return self.wait_future(name, condition).result(timeout)

    def cancel_wait(self, fut: concurrent.futures.Future[WaitResult]) -> None:
        with self._lock:
            self._waiters = [w for w in self._waiters if w.future is not fut]

    def _resolve(self, cid: str, conditions: tuple[str, ...], result: WaitResult) -> None:
        keep = []
        for w in self._waiters:
            if w.id == cid and w.condition in conditions:
                if not w.future.done():
                    w.future.set_result(result)
            else:
                keep.append(w)
        self._waiters = keep
