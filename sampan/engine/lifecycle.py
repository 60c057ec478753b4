"""The container state machine: which action is legal in which state, and where it leads.

States (Docker's ``State.Status``)::

                 start                 pause
     created ──────────> running ─────────────> paused
        │                │   ▲  ▲ <───────────── │
        │         exit/  │   │  │    unpause     │ kill/stop (thaw, then signal)
        │         stop   ▼   │  └─────────────┐  ▼
        │              exited ──> restarting ─┘ (restart policy; back-off)
        │                │
        └──── remove ────┴──> removing ──> (gone)
                                   └─> dead (removal failed half-way)

``check(state, action)`` returns the state the action leads to or raises the error Docker
returns for it (``errors.Conflict`` family, or ``NotModified`` where Docker answers 304).
The service calls it before acting, under the container's lock, so two requests never race
through the same transition.
"""

from __future__ import annotations

import signal as signals

from sampan import errors
from sampan.engine.model import ContainerState

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"

STATUSES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)

ACTIONS = ("start", "stop", "kill", "pause", "unpause", "remove", "exit", "restart", "update")


def check(state: ContainerState, action: str, *, name: str = "", force: bool = False) -> str:
    """The status ``action`` leads to from ``state``; raise Docker's error if it is illegal.

    ``name`` is the container's name or ID for the messages; ``force`` is ``rm -f``.
    """
    s = state.status
    who = name or "container"
    if s == REMOVING and action != "exit":
        raise errors.Conflict(f"removal of container {who} is already in progress")
    if action == "start":
        if s == PAUSED:
            raise errors.Conflict("cannot start a paused container, try unpause instead")
        if s in (RUNNING, RESTARTING):
            raise errors.NotModified("container already started")
        if s == DEAD:
            raise errors.Conflict(f"container {who} is marked for removal and cannot be started")
        return RUNNING
    if action == "stop":
        if s not in (RUNNING, PAUSED, RESTARTING):
            raise errors.NotModified("container already stopped")
        return EXITED
    if action == "kill":
        if s not in (RUNNING, PAUSED, RESTARTING):
            raise errors.ContainerNotRunning(f"cannot kill container: {who}: container {who} is not running")
        return s
    if action == "pause":
        if s == PAUSED:
            raise errors.Conflict(f"cannot pause container {who}: container {who} is already paused")
        if s == RESTARTING:
            raise errors.Conflict(
                f"cannot pause container {who}: container {who} is restarting, wait until the container is running"
            )
        if s != RUNNING:
            raise errors.ContainerNotRunning(f"cannot pause container {who}: container {who} is not running")
        return PAUSED
    if action == "unpause":
        if s != PAUSED:
            raise errors.Conflict(f"cannot unpause container {who}: container {who} is not paused")
        return RUNNING
    if action == "remove":
        if s in (RUNNING, PAUSED, RESTARTING) and not force:
            what = {RUNNING: "running", PAUSED: "paused", RESTARTING: "restarting"}[s]
            hint = (
                "unpause and then stop the container before attempting removal or force remove"
                if s == PAUSED
                else "stop the container before removing or force remove"
            )
            raise errors.ContainerRunning(f'cannot remove container "/{who.lstrip("/")}": container is {what}: {hint}')
        return REMOVING
    if action == "exit":
        if s not in (RUNNING, PAUSED, RESTARTING, REMOVING):
            raise errors.Conflict(f"container {who} is not running")
        return EXITED
    if action == "restart":
        if s == DEAD:
            raise errors.Conflict(f"container {who} is marked for removal and cannot be started")
        return RUNNING
    if action == "update":
        if s == DEAD:
            raise errors.Conflict(f"container {who} is marked for removal")
        return s
    raise errors.InvalidArgument(f"unknown container action {action!r}")


def apply(state: ContainerState, status: str) -> None:
    """Set ``status`` and the boolean flags Docker derives from it."""
    state.status = status
    state.running = status in (RUNNING, PAUSED, RESTARTING)
    state.paused = status == PAUSED
    state.restarting = status == RESTARTING
    state.dead = status == DEAD
    if status in (CREATED, EXITED, DEAD):
        state.pid = 0


def parse_signal(text: str | int) -> signals.Signals:
    """``SIGTERM``, ``TERM``, ``15`` -> the signal; Docker's error otherwise."""
    if isinstance(text, int) or str(text).isdigit():
        try:
            return signals.Signals(int(text))
        except ValueError:
            raise errors.InvalidArgument(f"Invalid signal: {text}") from None
    name = str(text).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return signals.Signals[name]
    except KeyError:
        raise errors.InvalidArgument(f"Invalid signal: {text}") from None
