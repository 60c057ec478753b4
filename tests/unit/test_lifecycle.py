"""The container state machine: every (state, action) pair, as a table."""

from __future__ import annotations

import pytest

from sampan import errors
from sampan.engine import lifecycle as lc
from sampan.engine.model import ContainerState

OK = "ok"
CASES = [
    # state, action, result: a status, or the error class
    (lc.CREATED, "start", lc.RUNNING),
    (lc.EXITED, "start", lc.RUNNING),
    (lc.RUNNING, "start", errors.NotModified),
    (lc.RESTARTING, "start", errors.NotModified),
    (lc.PAUSED, "start", errors.Conflict),
    (lc.DEAD, "start", errors.Conflict),
    (lc.REMOVING, "start", errors.Conflict),
    (lc.RUNNING, "stop", lc.EXITED),
    (lc.PAUSED, "stop", lc.EXITED),
    (lc.RESTARTING, "stop", lc.EXITED),
    (lc.EXITED, "stop", errors.NotModified),
    (lc.CREATED, "stop", errors.NotModified),
    (lc.RUNNING, "kill", lc.RUNNING),
    (lc.PAUSED, "kill", lc.PAUSED),
    (lc.EXITED, "kill", errors.ContainerNotRunning),
    (lc.CREATED, "kill", errors.ContainerNotRunning),
    (lc.RUNNING, "pause", lc.PAUSED),
    (lc.PAUSED, "pause", errors.Conflict),
    (lc.RESTARTING, "pause", errors.Conflict),
    (lc.EXITED, "pause", errors.ContainerNotRunning),
    (lc.PAUSED, "unpause", lc.RUNNING),
    (lc.RUNNING, "unpause", errors.Conflict),
    (lc.CREATED, "remove", lc.REMOVING),
    (lc.EXITED, "remove", lc.REMOVING),
    (lc.DEAD, "remove", lc.REMOVING),
    (lc.RUNNING, "remove", errors.ContainerRunning),
    (lc.PAUSED, "remove", errors.ContainerRunning),
    (lc.REMOVING, "remove", errors.Conflict),
    (lc.RUNNING, "exit", lc.EXITED),
    (lc.REMOVING, "exit", lc.EXITED),
    (lc.EXITED, "exit", errors.Conflict),
    (lc.EXITED, "restart", lc.RUNNING),
    (lc.DEAD, "restart", errors.Conflict),
    (lc.RUNNING, "update", lc.RUNNING),
    (lc.DEAD, "update", errors.Conflict),
]


def _state(status: str) -> ContainerState:
    s = ContainerState()
    lc.apply(s, status)
    return s


@pytest.mark.parametrize(("status", "action", "want"), CASES)
def test_transition(status: str, action: str, want: object) -> None:
    state = _state(status)
    if isinstance(want, str):
        assert lc.check(state, action, name="web") == want
    else:
        assert isinstance(want, type)
        with pytest.raises(want):
            lc.check(state, action, name="web")


def test_force_remove_of_running_is_allowed() -> None:
    assert lc.check(_state(lc.RUNNING), "remove", name="web", force=True) == lc.REMOVING


def test_messages_carry_dockers_wording() -> None:
    with pytest.raises(errors.ContainerRunning, match=r'cannot remove container "/web": container is running'):
        lc.check(_state(lc.RUNNING), "remove", name="web")
    with pytest.raises(errors.Conflict, match="is already paused"):
        lc.check(_state(lc.PAUSED), "pause", name="web")
    with pytest.raises(errors.Conflict, match="try unpause instead"):
        lc.check(_state(lc.PAUSED), "start", name="web")


def test_unknown_action() -> None:
    with pytest.raises(errors.InvalidArgument):
        lc.check(_state(lc.RUNNING), "teleport")


@pytest.mark.parametrize("status", lc.STATUSES)
def test_apply_sets_the_derived_flags(status: str) -> None:
    s = ContainerState(pid=42)
    lc.apply(s, status)
    assert s.status == status
    assert s.running == (status in (lc.RUNNING, lc.PAUSED, lc.RESTARTING))
    assert s.paused == (status == lc.PAUSED)
    assert s.restarting == (status == lc.RESTARTING)
    assert s.dead == (status == lc.DEAD)
    assert s.pid == (0 if status in (lc.CREATED, lc.EXITED, lc.DEAD) else 42)
