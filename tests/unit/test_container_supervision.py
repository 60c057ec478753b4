"""The container service's supervision without a kernel: a fake runner stands in for the
shim, so exits, waiters, stop escalation, --rm and restart back-off are checked as logic."""

from __future__ import annotations

import itertools
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sampan import errors
from sampan.engine import restart
from sampan.engine.containers import ContainerService
from sampan.engine.events import EventBus
from sampan.engine.model import Container, ContainerSpec, HostSpec, RestartPolicy
from sampan.storage.db import Database


class FakeRunner:
    """Each start "runs" until ``exit(cid, code)`` or a SIGKILL; SIGTERM is ignored unless
    ``obeys_term``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.exits: dict[str, queue.Queue[int]] = {}
        self.starts: list[tuple[str, float]] = []
        self.signals: list[tuple[str, int]] = []
        self.obeys_term = False
        self.fail_start: errors.SampanError | None = None

    def check_runtime(self, name: str) -> None: ...
    def close(self) -> None: ...
    def state_dir(self, cid: str) -> str:
        return str(self.root / "state" / cid)

    def start(self, c: Container, *args: Any, **kwargs: Any) -> Any:
        if self.fail_start is not None:
            raise self.fail_start
        self.exits[c.id] = queue.Queue()
        self.starts.append((c.id, time.monotonic()))
        return type("Handle", (), {"container_pid": 4242})()

    def wait_exit(self, cid: str) -> dict[str, Any]:
        return {"exit_code": self.exits[cid].get()}

    def exit(self, cid: str, code: int) -> None:
        self.exits[cid].put(code)

    def signal(self, cid: str, sig: int, *, all: bool = False) -> None:
        self.signals.append((cid, int(sig)))
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and self.obeys_term):
            self.exit(cid, 128 + int(sig))

    def oom_killed(self, cid: str) -> bool:
        return False

    def delete(self, cid: str, *, force: bool = True) -> None: ...
    def unmount_rootfs(self, c: Container) -> None: ...
    def pause(self, c: Container) -> None: ...
    def resume(self, c: Container) -> None: ...


class FakeSnapshotter:
    name = "fake"

    def prepare(self, key: str, parent: str | None = None) -> list[Any]:
        return []

    def remove(self, key: str) -> None: ...


class FakeStore:
    def __init__(self) -> None:
        self.snapshotter = FakeSnapshotter()
        self.in_use: Any = None

    def get(self, name: str) -> Any:
        if name != "busybox":
            raise errors.NoSuchImage(name)
        return type("Image", (), {"id": "sha256:" + "a" * 64, "chain_ids": ["c"], "config": {"config": {"Cmd": ["sh"]}}})()


@pytest.fixture
def svc(tmp_path: Path) -> Any:
    from sampan.engine.volumes import VolumeService

    db = Database.memory()
    images = type("Images", (), {"store": FakeStore()})()
    runner = FakeRunner(tmp_path)
    s = ContainerService(data_root=tmp_path, exec_root=tmp_path / "run", db=db, images=images,  # type: ignore[arg-type]
                         volumes=VolumeService(tmp_path, db), events=EventBus(), runner=runner)  # type: ignore[arg-type]
    yield s
    s.close()


def make(svc: Any, **host: Any) -> Container:
    c, _ = svc.create(ContainerSpec(image="busybox", cmd=["sleep", "1"]), HostSpec(**host))
    return c  # type: ignore[no-any-return]


def test_exit_answers_waiters_and_records_state(svc: Any) -> None:
    c = make(svc)
    before = svc.wait_future(c.id, "next-exit")
    svc.start(c.id)
    assert svc.get(c.id).state.status == "running" and svc.get(c.id).state.pid == 4242
    not_running = svc.wait_future(c.id)
    svc.runner.exit(c.id, 3)
    assert before.result(5).exit_code == 3 and not_running.result(5).exit_code == 3
    state = svc.get(c.id).state
    assert (state.status, state.exit_code, state.pid, state.running) == ("exited", 3, 0, False)
    assert svc.wait(c.id).exit_code == 3  # not-running answers at once now
    with pytest.raises(errors.InvalidArgument):
        svc.wait_future(c.id, "sometime")


def test_stop_escalates_to_sigkill_after_the_timeout(svc: Any) -> None:
    c = make(svc)
    svc.start(c.id)
    t = time.monotonic()
    svc.stop(c.id, timeout=1)
    assert 0.9 < time.monotonic() - t < 3
    assert [s for _, s in svc.runner.signals] == [signal.SIGTERM, signal.SIGKILL]
    assert svc.get(c.id).state.exit_code == 137 and svc.get(c.id).has_been_manually_stopped
    svc.runner.obeys_term = True
    svc.start(c.id)
    t = time.monotonic()
    svc.stop(c.id, timeout=10)
    assert time.monotonic() - t < 1 and svc.get(c.id).state.exit_code == 143
    with pytest.raises(errors.NotModified):
        svc.stop(c.id)


def test_auto_remove_answers_removed_waiters(svc: Any) -> None:
    c = make(svc, auto_remove=True)
    removed = svc.wait_future(c.id, "removed")
    svc.start(c.id)
    svc.runner.exit(c.id, 5)
    assert removed.result(5).exit_code == 5
    with pytest.raises(errors.NoSuchContainer):
        svc.get(c.id)


def test_on_failure_restarts_with_back_off_then_gives_up(svc: Any) -> None:
    c = make(svc, restart_policy=RestartPolicy("on-failure", 2))
    svc.start(c.id)
    for started in (1, 2, 3):
        deadline = time.monotonic() + 5
        while len(svc.runner.starts) < started:
            time.sleep(0.01)
            assert time.monotonic() < deadline
        svc.runner.exit(c.id, 1)
    deadline = time.monotonic() + 5
    while svc.get(c.id).state.status != "exited" or svc.get(c.id).restart_count < 2:
        time.sleep(0.02)
        assert time.monotonic() < deadline, svc.get(c.id).state
    starts = [t for _, t in svc.runner.starts]
    assert len(starts) == 3
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= restart.INITIAL_DELAY * 0.9 and gaps[1] >= 2 * restart.INITIAL_DELAY * 0.9


def test_stop_cancels_a_pending_restart(svc: Any) -> None:
    c = make(svc, restart_policy=RestartPolicy("always"))
    svc.start(c.id)
    svc._backoff[c.id] = restart.Backoff(delay=30.0)  # the next restart would wait a minute
    svc.runner.exit(c.id, 0)
    deadline = time.monotonic() + 5
    while svc.get(c.id).state.status != "restarting":
        time.sleep(0.01)
        assert time.monotonic() < deadline
    assert svc.get(c.id).state.running  # Docker shows a restarting container as running
    svc.stop(c.id)
    assert svc.get(c.id).state.status == "exited"
    assert not svc._timers


def test_failed_start_records_exit_code_127(svc: Any) -> None:
    c = make(svc)
    svc.runner.fail_start = errors.Internal('exec: "nope": executable file not found in $PATH')
    with pytest.raises(errors.InvalidArgument, match="failed to create task"):
        svc.start(c.id)
    assert (svc.get(c.id).state.exit_code, svc.get(c.id).state.status) == (127, "created")


def test_names_and_removal_rules(svc: Any) -> None:
    c = make(svc)
    with pytest.raises(errors.NameInUse, match="is already in use by container"):
        svc.create(ContainerSpec(image="busybox"), HostSpec(), name=c.name)
    with pytest.raises(errors.NoSuchImage):
        svc.create(ContainerSpec(image="nope"), HostSpec())
    svc.start(c.id)
    with pytest.raises(errors.ContainerRunning):
        svc.remove(c.id)
    done = threading.Event()
    fut = svc.wait_future(c.id, "removed")
    fut.add_done_callback(lambda f: done.set())
    svc.remove(c.id, force=True)
    assert done.wait(5) and fut.result().exit_code == 137
    with pytest.raises(errors.NoSuchContainer):
        svc.get(c.id[:8])
