"""How the engine runs one container on the host: rootfs mount, bundle, shim, runtime calls.

The container service decides *when* (state machine, locks, policies); the runner knows *how*:
it mounts the snapshot at ``<data-root>/containers/<id>/rootfs`` (the daemon mounts it itself,
so runc and crun work too and deep images need no long option string in config.json), writes
``config.json`` there (root.path = that mount), and starts a shim through the fork server
(started once, lazily).  The shim's state directory is ``<exec-root>/containers/<id>``; the
runtime's is ``<exec-root>/runtime/<runtime>``.  Runtime calls the shim does not serve (pause,
resume, update, oom counters) go to the runtime directly: in process for ``sampan``, the CLI
for ``runc``/``crun``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.engine.model import Container
from sampan.engine.specgen import ResolvedMount, SpecContext, generate
from sampan.engine.specgen.resources import resources_for
from sampan.runtime.forkserver import ForkServer, ShimHandle, start_shim
from sampan.runtime.shimproto import ShimClient
from sampan.storage.snapshots import Snapshotter

if TYPE_CHECKING:
    from sampan.engine.volumes import VolumeService

RUNTIMES = ("sampan", "runc", "crun")
DEFAULT_LOG_SIZE = 10 << 20
DEFAULT_LOG_FILES = 3


class Runner:
    def __init__(self, *, data_root: Path, exec_root: Path, use_forkserver: bool = True) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.use_forkserver = use_forkserver
        self._forkserver: ForkServer | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._forkserver is not None:
                self._forkserver.close()
                self._forkserver = None

    def forkserver(self) -> ForkServer | None:
        if not self.use_forkserver:
            return None
        with self._lock:
            if self._forkserver is None or self._forkserver.proc.poll() is not None:
                self._forkserver = ForkServer.start()
            return self._forkserver

    # ------------------------------------------------------------ paths

    def state_dir(self, cid: str) -> str:
        return str(self.exec_root / "containers" / cid)

    def runtime_root(self, runtime: str) -> str:
        return str(self.exec_root / "runtime" / runtime)

    def client(self, cid: str) -> ShimClient:
        return ShimClient(os.path.join(self.state_dir(cid), "shim.sock"))

    def check_runtime(self, name: str) -> None:
        if name not in RUNTIMES:
            raise errors.InvalidArgument(f"unknown or invalid runtime name: {name}")
        if name != "sampan" and shutil.which(name) is None:
            raise errors.InvalidArgument(f"unknown or invalid runtime name: {name} (not installed)")

    def runtime_binary(self, name: str) -> str:
        return "sampan" if name == "sampan" else shutil.which(name) or name

    # ------------------------------------------------------------ rootfs

    def rootfs(self, c: Container) -> str:
        return os.path.join(c.bundle_dir, "rootfs")

    def mount_rootfs(self, c: Container, snapshotter: Snapshotter) -> str:
        from sampan._sys.mount import is_mountpoint, perform

        target = self.rootfs(c)
        os.makedirs(target, exist_ok=True)
        if is_mountpoint(target):
            return target
        mounts = snapshotter.mounts(c.id)
        try:
            for m in mounts:
                perform(m, target)
        except OSError as exc:
            raise errors.from_oserror(exc, f"mount the root filesystem of {c.id[:12]}") from exc
        return target

    def unmount_rootfs(self, c: Container) -> None:
        from sampan._sys.mount import is_mountpoint, umount

        target = self.rootfs(c)
        while is_mountpoint(target):
            try:
                umount(target, 2)  # MNT_DETACH: a reader (cp, export) does not block removal
            except OSError as exc:
                raise errors.from_oserror(exc, f"unmount {target}") from exc

    # ------------------------------------------------------------ start

    def resolved_mounts(self, c: Container, volumes: VolumeService | None, rootfs: str) -> list[ResolvedMount]:
        out = []
        for mp in c.mount_points:
            if mp.type == "volume" and volumes is not None and volumes.exists(mp.name):
                volumes.mount(mp.name)  # a volume made with driver options (tmpfs, bind...)
                if "nocopy" not in mp.mode.split(","):
                    volumes.copy_up(mp.name, rootfs, mp.destination)
            opts = [o for o in mp.mode.split(",") if o and o not in ("ro", "rw", "z", "Z", "nocopy")] if mp.type == "tmpfs" else []
            out.append(ResolvedMount(type=mp.type, target=mp.destination, source=mp.source,
                                     read_only=not mp.rw, propagation=mp.propagation if mp.type == "bind" else "",
                                     options=opts))
        return out

    def write_bundle(self, c: Container, snapshotter: Snapshotter, volumes: VolumeService | None,
                     netns_path: str = "") -> dict[str, Any]:
        rootfs = self.mount_rootfs(c, snapshotter)
        ctx = SpecContext(container=c, rootfs=rootfs, mounts=self.resolved_mounts(c, volumes, rootfs),
                          netns_path=netns_path)
        spec = generate(ctx)
        spec["linux"]["cgroupsPath"] = f"/sampan/{c.id}"
        path = os.path.join(c.bundle_dir, "config.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.replace(tmp, path)
        return spec

    def start(
        self,
        c: Container,
        snapshotter: Snapshotter,
        volumes: VolumeService | None,
        hooks: Sequence[Callable[[Container, ShimClient], None]] = (),
        *,
        netns_path: str = "",
    ) -> ShimHandle:
        """Create and start the container; nothing is left running if it fails."""
        self.write_bundle(c, snapshotter, volumes, netns_path)
        handle = self._spawn(c)
        client = ShimClient(handle.socket_path)
        try:
            for hook in hooks:
                hook(c, client)
            client.start()
        except BaseException:
            self.delete(c.id, force=True)
            raise
        return handle

    def _spawn(self, c: Container) -> ShimHandle:
        """A shim that has the runtime create the container (not started yet)."""
        from sampan.engine.creation import parse_size

        state_dir = self.state_dir(c.id)
        shutil.rmtree(state_dir, ignore_errors=True)
        os.makedirs(state_dir, mode=0o700)
        opts = c.host.log_config.config
        return start_shim(
            container_id=c.id,
            bundle=c.bundle_dir,
            runtime=self.runtime_binary(c.host.runtime),
            runtime_root=self.runtime_root(c.host.runtime),
            state_dir=state_dir,
            log_path=c.log_path,
            log_max_size=parse_size(opts["max-size"]) if opts.get("max-size") else DEFAULT_LOG_SIZE,
            log_max_files=int(opts.get("max-file") or DEFAULT_LOG_FILES),
            tty=c.spec.tty,
            stdin_open=c.spec.open_stdin,
            forkserver=self.forkserver(),
        )

    # ------------------------------------------------------------ while it runs

    def wait_exit(self, cid: str) -> dict[str, Any]:
        """Block until the shim reports the exit; if the shim is gone, what its state file says."""
        try:
            return self.client(cid).wait(timeout=None)
        except errors.SampanError:
            return self.saved_state(cid)

    def saved_state(self, cid: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self.state_dir(cid), "state.json")) as f:
                state: dict[str, Any] = json.load(f)
                return state
        except (OSError, ValueError):
            return {"status": "unknown", "exit_code": None}

    def signal(self, cid: str, sig: int, *, all: bool = False) -> None:
        self.client(cid).signal(int(sig), all=all)

    def _runtime_call(self, c: Container, call: str, *args: Any) -> None:
        rt = c.host.runtime
        root = self.runtime_root(rt)
        if rt == "sampan":
            from sampan.runtime import container as rtc

            getattr(rtc, call)(root, c.id, *args)
            return
        argv = [self.runtime_binary(rt), "--root", root]
        stdin = None
        if call == "update":
            argv += ["update", "--resources", "-", c.id]
            stdin = json.dumps(args[0])
        else:
            argv += [{"resume": "resume"}.get(call, call), c.id]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
        if proc.returncode != 0:
            raise errors.Internal(f"{rt} {call}: {proc.stderr.strip() or proc.stdout.strip()}")

    def pause(self, c: Container) -> None:
        self._runtime_call(c, "pause")

    def resume(self, c: Container) -> None:
        self._runtime_call(c, "resume")

    def update(self, c: Container) -> None:
        res = resources_for(c.host)
        if c.host.memory and "swap" not in res.get("memory", {}):
            res.setdefault("memory", {})["swap"] = c.host.memory * 2
        self._runtime_call(c, "update", res)

    def oom_killed(self, cid: str) -> bool:
        """Whether the kernel OOM-killed a process of the container (its cgroup's counter)."""
        try:
            from sampan.runtime.cgroups import new_manager

            return new_manager(f"/sampan/{cid}", cid).stats().oom_kill > 0
        except Exception:
            return False

    def delete(self, cid: str, *, force: bool = True) -> None:
        """Ask the shim to delete the runtime's container and exit; tolerate a gone shim."""
        client = self.client(cid)
        with contextlib.suppress(errors.Unavailable, errors.NotFound):
            try:
                client.delete(force=force)
            except errors.SampanError:
                if not force:
                    raise


def start_error(exc: errors.SampanError) -> tuple[int, errors.SampanError]:
    """The exit code and error Docker records for a failed start: 127 when the command is not
    found, 126 when it cannot be executed (both a 400, "invalid config" in moby), else 128."""
    text = str(exc)
    low = text.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        code = 127
    elif "permission denied" in low or "exec format error" in low or "is a directory" in low:
        code = 126
    else:
        return 128, exc
    message = f"failed to create task for container: {text}: unknown"
    return code, errors.InvalidArgument(message)
