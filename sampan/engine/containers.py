"""The container service: create, start, stop, kill, restart, pause, unpause, remove, rename,
update, wait, list, prune — Docker's container lifecycle on sampan's store and runtime.

How a container runs (DESIGN.md "paths data take")::

    create: image resolved, snapshot prepared (key = container ID), /etc files written,
            volumes created, row stored                                      -> "created"
    start:  snapshot mounted at containers/<id>/rootfs, config.json generated (specgen),
            a shim started through the fork server (it runs the runtime's create), start
            hooks run (attach-before-start), shim "start"; a monitor thread waits on the
            shim's socket for the exit                                       -> "running"
    exit:   OOM read from the cgroup, shim "delete" (runtime state and cgroup go), state
            recorded, waiters answered, then --rm or the restart policy     -> "exited"
    remove: rootfs unmounted, snapshot removed, files and row deleted

Locks: each container has an *operation lock* that serialises user actions on it (start,
stop, remove...); the service lock guards the in-memory table and state changes and is never
held across a blocking call.  The monitor never takes operation locks, so a ``stop`` holding
one can wait for the exit it caused.  Every state change is written to ``sampan.db`` at once.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal as signals
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sampan import errors
from sampan.engine import container_network, creation, lifecycle, links, restart, shared_namespaces
from sampan.engine.container_query import ListOptions, matches, prune_candidates
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from sampan.engine.lifecycle import parse_signal
from sampan.engine.model import ZERO_TIME, Container, ContainerSpec, HostSpec
from sampan.engine.runner import Runner, start_error
from sampan.engine.specgen.resources import discard_unsupported, resources_for
from sampan.engine.supervision import WAIT_CONDITIONS, Supervision, WaitResult, _Waiter, now_rfc3339
from sampan.engine.volumes import VolumeService
from sampan.runtime.shimproto import ShimClient
from sampan.storage.db import Database

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sampan.engine.networks import NetworkService

log = logging.getLogger("sampan.containers")

COMPONENT = "containers"
MIGRATIONS = [
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        record TEXT NOT NULL
    );
    """
]
StartHook = Callable[[Container, ShimClient], None]



class ContainerService(Supervision):
    def __init__(
        self,
        *,
        data_root: Path,
        exec_root: Path,
        db: Database,
        images: ImageService,
        volumes: VolumeService,
        events: EventBus,
        runner: Runner | None = None,
    ) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.db = db
        self.images = images
        self.store = images.store
        self.volumes = volumes
        self.events = events
        self.runner = runner or Runner(data_root=data_root, exec_root=exec_root)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ops: dict[str, threading.RLock] = {}
        self._containers: dict[str, Container] = {}
        self._waiters: builtins.list[_Waiter] = []
        self._exits: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._backoff: dict[str, restart.Backoff] = {}
        self._started_mono: dict[str, float] = {}
        self._cleaned: dict[str, threading.Event] = {}
        self.start_hooks: builtins.list[StartHook] = []
        self.networks: NetworkService | None = None  # set by the daemon's wiring (bridge networking)
        db.migrate(COMPONENT, MIGRATIONS)
        for row in db.query("SELECT id, record FROM containers"):
            try:
                c = Container.from_dict(json.loads(row["record"]))
            except (ValueError, TypeError, KeyError) as exc:  # logged, kept in the table
                log.error("container %s: unreadable record skipped: %s", str(row["id"])[:12], exc)
                continue
            self._containers[c.id] = c
        self.store.in_use = self.image_in_use
        volumes.users = self.volume_users

    # ------------------------------------------------------------------ accessors

    def close(self) -> None:
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
        for t in timers:
            t.cancel()
        self.runner.close()

    def image_in_use(self, image_id: str) -> bool:
        with self._lock:
            return any(c.image_id == image_id for c in self._containers.values())

    def volume_users(self, name: str) -> builtins.list[str]:
        with self._lock:
            return [c.id for c in self._containers.values()
                    if any(m.type == "volume" and m.name == name for m in c.mount_points)]

    def get(self, name: str) -> Container:
        """By full ID, by name (with or without "/"), then by unique ID prefix (Docker's order)."""
        with self._lock:
            if name in self._containers:
                return self._containers[name]
            bare = name.lstrip("/")
            for c in self._containers.values():
                if c.name == bare:
                    return c
            if name and all(ch in "0123456789abcdef" for ch in name):
                found = [c for cid, c in self._containers.items() if cid.startswith(name)]
                if len(found) == 1:
                    return found[0]
                if len(found) > 1:
                    raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {name}")
        raise errors.NoSuchContainer(name)

    def shim_client(self, name: str) -> ShimClient:
        c = self.get(name)
        if not c.state.running:
            raise errors.ContainerNotRunning(f"container {c.id} is not running")
        return self.runner.client(c.id)

    def log_path(self, name: str) -> str:
        return self.get(name).log_path

    def rootfs_path(self, name: str) -> str:
        """The container's root filesystem, mounted (mounted now if it was not)."""
        c = self.get(name)
        return self.runner.mount_rootfs(c, self.store.snapshotter)

    def list(self, opts: ListOptions | None = None) -> builtins.list[Container]:
        opts = opts or ListOptions()
        with self._lock:
            every = sorted(self._containers.values(), key=lambda c: c.created, reverse=True)
        out = [c for c in every if matches(c, opts, every, self.store)]
        if opts.limit > 0:
            out = out[: opts.limit]
        if opts.size:  # sizes go on copies: the live records keep none
            out = [dataclasses.replace(c) for c in out]
            for c in out:
                self.fill_size(c)
        return out

    def fill_size(self, c: Container) -> None:
        try:
            c.size_rw = self.store.snapshotter.usage(c.id).size
        except errors.SampanError:
            c.size_rw = 0
        try:
            c.size_root_fs = self.store.get(c.image_id).size + (c.size_rw or 0)
        except errors.SampanError:
            c.size_root_fs = c.size_rw

    @contextlib.contextmanager
    def _op(self, cid: str) -> Iterator[None]:
        with self._lock:
            lock = self._ops.setdefault(cid, threading.RLock())
        with lock:
            yield

    def operation(self, cid: str) -> contextlib.AbstractContextManager[None]:
        """Hold ``cid``'s operation lock (no start, stop or remove meanwhile)."""
        return self._op(cid)

    def save(self, c: Container) -> None:
        """Persist ``c`` after a change made outside this service (health status)."""
        self._save(c)

    def _save(self, c: Container) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO containers (id, name, image_id, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name, record = excluded.record",
                (c.id, c.name, c.image_id, json.dumps(c.to_dict())),
            )
            self._changed.notify_all()

    def _event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {**c.spec.labels, "image": c.image_name or c.image_id, "name": c.name, **extra}
        self.events.publish("container", action, c.id, attrs)

    # ------------------------------------------------------------------ create

    def create(self, spec: ContainerSpec, host: HostSpec, *, name: str = "") -> tuple[Container, builtins.list[str]]:
        warnings: builtins.list[str] = []
        image = self.store.get(spec.image)
        host.restart_policy = restart.validate(host.restart_policy)
        shared_namespaces.validate(spec, host, self.get)
        if host.auto_remove and host.restart_policy.name != "no":
            raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
        if self.networks is not None:
            warnings += container_network.check_mode(self.networks, host)
        elif host.network_mode in ("", "default", "bridge"):
            if host.network_mode in ("default", "bridge"):
                warnings.append("sampan: bridge networking is not available yet; the container runs with --network none")
            host.network_mode = "bridge" if host.network_mode else "none"
        elif host.network_mode not in creation.NETWORK_MODES_NOW and not shared_namespaces.target(host.network_mode):
            raise errors.NotImplementedFeature(f"network mode {host.network_mode!r} is not supported yet (use none or host)")
        links.validate(host, self.get)
        warnings += discard_unsupported(host)
        resources_for(host)  # Docker refuses bad limits at create, not at start
        if host.network_mode == "host" and not spec.hostname:
            spec.hostname = os.uname().nodename
        self.runner.check_runtime(host.runtime)
        image_name = spec.image
        creation.merge_image_config(spec, image.config.get("config") or {})
        path, args = creation.command(spec)
        mounts = creation.user_mounts(host, spec.volumes)
        cid = secrets.token_hex(32)
        with self._lock:
            if name:
                name = creation.check_name(name)
                for other in self._containers.values():
                    if other.name == name:
                        raise errors.NameInUse(
                            f'Conflict. The container name "/{name}" is already in use by container '
                            f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.'
                        )
            else:
                name = creation.generate_name({c.name for c in self._containers.values()})
            bundle = self.data_root / "containers" / cid
            c = Container(
                id=cid, name=name, created=now_rfc3339(), spec=spec, host=host, image_id=image.id,
                image_name=image_name, path=path, args=args, bundle_dir=str(bundle),
                log_path=str(bundle / f"{cid}-json.log"), driver=self.store.snapshotter.name,
            )
            # reserve the name in the table before the slow part
            self._containers[cid] = c
        made_volumes: builtins.list[str] = []
        try:
            bundle.mkdir(parents=True)
            creation.write_etc_files(c, str(bundle))
            for m in mounts:
                c.mount_points.append(creation.mount_point(m, self.volumes, made_volumes))
            c.mount_points += creation.volumes_from(self.get, host.volumes_from, {m.destination for m in c.mount_points})
            self.store.snapshotter.prepare(cid, image.chain_ids[-1] if image.chain_ids else None)
            self._save(c)
        except BaseException:
            with self._lock:
                self._containers.pop(cid, None)
            with contextlib.suppress(errors.SampanError):
                self.store.snapshotter.remove(cid)
            for v in made_volumes:
                with contextlib.suppress(errors.SampanError):
                    self.volumes.remove(v)
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        self._event(c, "create")
        return c, warnings

    def _network_down(self, c: Container) -> None:
        if self.networks is not None:
            try:
                container_network.network_down(self.networks, c)
            except errors.SampanError:
                log.exception("container %s: network teardown failed", c.id[:12])

    def start(self, name: str) -> None:
        c = self.get(name)
        with self._op(c.id):
            lifecycle.check(c.state, "start", name=c.id)
            c.has_been_manually_stopped = False
            self._start_locked(c)

    def _start_locked(self, c: Container) -> None:
        """Start ``c`` (its operation lock held); on failure record the error and raise."""
        self._wait_cleaned(c.id)
        gen = self.next_generation(c.id)
        try:
            try:
                c.joined = shared_namespaces.resolve(c, self.get)
                shared_namespaces.share_etc_files(c, self.get)
                linked = links.resolve(c, self.get)
                c.link_env = linked.env
                netns = container_network.network_up(self.networks, c, linked.hosts) if self.networks is not None else ""
                handle = self.runner.start(c, self.store.snapshotter, self.volumes, self.start_hooks, netns_path=netns)
            except BaseException:
                self._network_down(c)
                raise
        except errors.SampanError as exc:
            code, err = start_error(exc)
            with self._lock:
                c.state.error = str(err)
                c.state.exit_code = code
                lifecycle.apply(c.state, lifecycle.EXITED if c.has_been_started else lifecycle.CREATED)
                self._save(c)
            if c.host.auto_remove:  # as dockerd: a --rm container whose start failed goes (the CLI waits for it)
                threading.Thread(target=self._auto_remove, args=(c.id,), daemon=True).start()
            raise err from exc
        with self._lock:
            lifecycle.apply(c.state, lifecycle.RUNNING)
            c.state.pid = handle.container_pid
            c.state.started_at = now_rfc3339()
            c.state.finished_at = ZERO_TIME if not c.has_been_started else c.state.finished_at
            c.state.exit_code = 0
            c.state.error = ""
            c.state.oom_killed = False
            c.has_been_started = True
            self._started_mono[c.id] = time.monotonic()
            self._save(c)
        self._volume_events(c, "mount")
        self._event(c, "start")
        self.watch(c.id, gen)

    def stop(self, name: str, *, timeout: int | None = None, signal: str = "") -> None:
        c = self.get(name)
        with self._op(c.id):
            lifecycle.check(c.state, "stop", name=c.id)
            c.has_been_manually_stopped = True
            self._save(c)
            if self._cancel_restart(c):
                self._event(c, "stop")
                return
            self._stop_locked(c, timeout, signal)
        self._event(c, "stop")

    def _stop_locked(self, c: Container, timeout: int | None, signal: str = "") -> None:
        sig = parse_signal(signal or c.spec.stop_signal or "SIGTERM")
        t = timeout if timeout is not None else (c.spec.stop_timeout if c.spec.stop_timeout is not None else 10)
        before = self._exits.get(c.id, 0)
        with contextlib.suppress(errors.SampanError):
            self.runner.signal(c.id, sig)
            if c.state.status == lifecycle.PAUSED:
                self.runner.resume(c)
        if t < 0:
            self._wait_exit(c, before, None)
            return
        if not self._wait_exit(c, before, float(t)):
            with contextlib.suppress(errors.SampanError):
                self.runner.signal(c.id, signals.SIGKILL, all=True)
            if not self._wait_exit(c, before, 30.0):
                raise errors.Internal(f"container {c.id[:12]} did not exit after SIGKILL")

    def kill(self, name: str, *, signal: str = "") -> None:
        c = self.get(name)
        sig = parse_signal(signal or "SIGKILL")
        with self._op(c.id):
            lifecycle.check(c.state, "kill", name=c.id)
            if c.state.status == lifecycle.RESTARTING:
                raise errors.ContainerNotRunning(f"cannot kill container: {c.id}: container {c.id} is not running")
            if sig in (signals.SIGKILL, parse_signal(c.spec.stop_signal or "SIGTERM")):
                c.has_been_manually_stopped = True
                self._save(c)
            before = self._exits.get(c.id, 0)
            self.runner.signal(c.id, sig, all=sig == signals.SIGKILL)
            if sig == signals.SIGKILL and c.state.status == lifecycle.PAUSED:
                with contextlib.suppress(errors.SampanError):
                    self.runner.resume(c)  # a frozen process takes its SIGKILL when thawed
            self._event(c, "kill", signal=str(int(sig)))
            if sig == signals.SIGKILL:
                self._wait_exit(c, before, 10.0)

    def restart(self, name: str, *, timeout: int | None = None, signal: str = "") -> None:
        c = self.get(name)
        with self._op(c.id):
            if c.state.status in (lifecycle.RUNNING, lifecycle.PAUSED):
                c.has_been_manually_stopped = True
                self._stop_locked(c, timeout, signal)
                self._event(c, "stop")
            else:
                self._cancel_restart(c)
            lifecycle.check(c.state, "restart", name=c.id)
            c.has_been_manually_stopped = False
            self._start_locked(c)
        self._event(c, "restart")

    def pause(self, name: str) -> None:
        c = self.get(name)
        with self._op(c.id):
            lifecycle.check(c.state, "pause", name=c.id)
            self.runner.pause(c)
            with self._lock:
                lifecycle.apply(c.state, lifecycle.PAUSED)
                self._save(c)
        self._event(c, "pause")

    def unpause(self, name: str) -> None:
        c = self.get(name)
        with self._op(c.id):
            lifecycle.check(c.state, "unpause", name=c.id)
            self.runner.resume(c)
            with self._lock:
                lifecycle.apply(c.state, lifecycle.RUNNING)
                self._save(c)
        self._event(c, "unpause")

    # ------------------------------------------------------------------ remove, rename, update

    def remove(self, name: str, *, force: bool = False, volumes: bool = False) -> None:
        c = self.get(name)
        with self._op(c.id):
            if c.id not in self._containers:
                raise errors.NoSuchContainer(name)
            lifecycle.check(c.state, "remove", name=c.name, force=force)
            self._cancel_restart(c)
            if c.state.status in (lifecycle.RUNNING, lifecycle.PAUSED):
                before = self._exits.get(c.id, 0)
                with contextlib.suppress(errors.SampanError):
                    self.runner.signal(c.id, signals.SIGKILL, all=True)
                    if c.state.status == lifecycle.PAUSED:
                        self.runner.resume(c)
                self._wait_exit(c, before, 30.0)
            self._wait_cleaned(c.id)
            with self._lock:
                lifecycle.apply(c.state, lifecycle.REMOVING)
                self._save(c)
            try:
                self.runner.delete(c.id)
                self.runner.unmount_rootfs(c)
                with contextlib.suppress(errors.NotFound):
                    self.store.snapshotter.remove(c.id)
                shutil.rmtree(c.bundle_dir, ignore_errors=True)
                shutil.rmtree(self.runner.state_dir(c.id), ignore_errors=True)
            except errors.SampanError as exc:
                with self._lock:
                    lifecycle.apply(c.state, lifecycle.DEAD)
                    c.state.error = str(exc)
                    self._save(c)
                raise
            with self._lock:
                self.db.execute("DELETE FROM containers WHERE id = ?", (c.id,))
                self._containers.pop(c.id, None)
                self._ops.pop(c.id, None)
                self._generation.pop(c.id, None)
                self._backoff.pop(c.id, None)
                self._cleaned.pop(c.id, None)
                self._resolve(c.id, WAIT_CONDITIONS, WaitResult(c.state.exit_code))
                self._changed.notify_all()
        if volumes:
            for m in c.mount_points:
                if m.type == "volume" and m.anonymous:
                    with contextlib.suppress(errors.NotFound, errors.Conflict):
                        self.volumes.remove(m.name)
        self._event(c, "destroy")

    def rename(self, name: str, new_name: str) -> None:
        c = self.get(name)
        if not new_name:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        new = creation.check_name(new_name)
        with self._lock:
            if new == c.name:
                raise errors.Conflict("Renaming a container with the same name as its current name")
            for other in self._containers.values():
                if other.name == new:
                    raise errors.NameInUse(
                        f'Conflict. The container name "/{new}" is already in use by container '
                        f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.'
                    )
            old = c.name
            c.name = new
            self._save(c)
        self._event(c, "rename", oldName="/" + old)

    def update(self, name: str, changes: dict[str, Any]) -> builtins.list[str]:
        """Change resources and the restart policy; live through the runtime when running.
        ``changes`` maps HostSpec field names to new values."""
        c = self.get(name)
        with self._op(c.id):
            lifecycle.check(c.state, "update", name=c.id)
            policy = changes.get("restart_policy")
            if policy is not None:
                changes["restart_policy"] = restart.validate(policy)
                if c.host.auto_remove and policy.name != "no":
                    raise errors.InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
            old = {k: getattr(c.host, k) for k in changes}
            for k, v in changes.items():
                if not hasattr(c.host, k):
                    raise errors.InvalidArgument(f"unknown update field {k!r}")
                setattr(c.host, k, v)
            try:
                if c.state.status in (lifecycle.RUNNING, lifecycle.PAUSED) and set(changes) - {"restart_policy"}:
                    self.runner.update(c)
            except BaseException:
                for k, v in old.items():
                    setattr(c.host, k, v)
                raise
            self._save(c)
        self._event(c, "update")
        return []

    # ------------------------------------------------------------------ wait, prune

    def prune(self, *, filters: dict[str, builtins.list[str]] | None = None) -> tuple[builtins.list[str], int]:
        with self._lock:
            candidates = prune_candidates(list(self._containers.values()), filters or {})
        removed: builtins.list[str] = []
        freed = 0
        for c in candidates:
            self.fill_size(c)
            try:
                self.remove(c.id)
            except (errors.Conflict, errors.NotFound):
                continue
            removed.append(c.id)
            freed += c.size_rw or 0
        self.events.publish("container", "prune", "", {"reclaimed": str(freed)})
        return removed, freed

    def all(self) -> builtins.list[Container]:
        with self._lock:
            return list(self._containers.values())

