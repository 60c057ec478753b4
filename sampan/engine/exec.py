"""Exec: running another process in a running container (``docker exec``).

An exec is *created* (a record: command, env, user, TTY...), then *started* once.  Starting
runs the container's OCI runtime in the foreground, as runc's ``exec`` does::

    <runtime> --root <runtime-root> exec --process <exec-dir>/process.json
              [--console-socket <exec-dir>/console.sock] [--pid-file <exec-dir>/pid] <container-id>

(``sampan`` is ``python3 -I -S sampan/runtime_main.py``).  The runtime joins the container's
namespaces and cgroup, starts the process and waits for it; its exit status is the process's
(126 cannot execute, 127 not found, 128+n killed by signal n).  Without a TTY the process's
stdin, stdout and stderr are pipes of the runtime process; with one the runtime sends the PTY
master over the console socket and the daemon relays it.  The process JSON starts from the
container's own ``config.json`` process (env, capabilities, rlimits, apparmor...) with the
exec's args, env, cwd and user applied, so an exec has the container's privileges (all the
host allows with ``--privileged``).

The record lives in memory, as in dockerd: a daemon restart forgets execs (not containers).
Events: ``exec_create``, ``exec_start``, ``exec_die`` with the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.engine.events import EventBus

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService
    from sampan.engine.model import Container

log = logging.getLogger("sampan.exec")

TIOCSWINSZ = 0x5414
KEEP_FINISHED = 300.0  # seconds a finished exec can still be inspected
RUNTIME_MAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime_main.py")

Output = Callable[[str, bytes], Awaitable[None]]  # ("stdout" | "stderr", data)


@dataclass
class ExecConfig:
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    privileged: bool = False
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None  # (height, width)


@dataclass
class Exec:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    finished_at: float = 0.0
    master_fd: int = -1
    pid_file: str = ""
    proc: asyncio.subprocess.Process | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ExecService:
    def __init__(self, containers: ContainerService, events: EventBus) -> None:
        self.containers = containers
        self.events = events
        self._execs: dict[str, Exec] = {}
        self.exec_root = os.path.join(str(containers.exec_root), "execs")

    # ------------------------------------------------------------ records

    def create(self, container: str, config: ExecConfig) -> Exec:
        c = self.containers.get(container)
        if c.state.paused:
            raise errors.Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not c.state.running or c.state.restarting:
            raise errors.ContainerNotRunning(f"container {c.id} is not running")
        if not config.cmd:
            raise errors.InvalidArgument("No exec command specified")
        self._expire()
        e = Exec(secrets.token_hex(32), c.id, config)
        self._execs[e.id] = e
        self._event(c, e, "exec_create", execID=e.id)
        return e

    def get(self, exec_id: str) -> Exec:
        e = self._execs.get(exec_id)
        if e is None:
            matches = [x for k, x in self._execs.items() if k.startswith(exec_id)] if len(exec_id) >= 4 else []
            if len(matches) != 1:
                raise errors.NoSuchExec(exec_id)
            e = matches[0]
        return e

    def for_container(self, container_id: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == container_id]

    def _expire(self) -> None:
        now = time.monotonic()
        live = {c.id for c in self.containers.all()}
        for k, e in list(self._execs.items()):
            if e.finished_at and (now - e.finished_at > KEEP_FINISHED or e.container_id not in live):
                del self._execs[k]

    def _event(self, c: Container, e: Exec, action: str, **attrs: str) -> None:
        cmd = " ".join(e.config.cmd)
        self.events.publish(
            "container", f"{action}: {cmd}" if action != "exec_die" else action, c.id,
            {**c.spec.labels, "image": c.image_name or c.image_id, "name": c.name, **attrs},
        )

    # ------------------------------------------------------------ process

    def process_json(self, c: Container, config: ExecConfig) -> dict[str, Any]:
        from sampan.engine.specgen.process import merge_env, resolve_user
        from sampan.engine.specgen.security import host_capabilities

        try:
            with open(os.path.join(c.bundle_dir, "config.json")) as f:
                base = dict(json.load(f).get("process") or {})
        except (OSError, ValueError) as exc:
            raise errors.Internal(f"exec: read the container's config: {exc}") from exc
        base["args"] = list(config.cmd)
        base["terminal"] = config.tty
        base.pop("consoleSize", None)
        # a bare NAME unsets NAME (merge_env) and is not itself passed on: environ entries are
        # NAME=value (runc refuses the exec otherwise: 'invalid environment variable')
        env = [v for v in merge_env(list(base.get("env") or []), config.env) if "=" in v]
        if config.tty and not any(v.startswith("TERM=") for v in env):
            env.append("TERM=xterm")
        base["env"] = env
        if config.working_dir:
            base["cwd"] = config.working_dir
        if config.user:
            rootfs = self.containers.runner.rootfs(c)
            uid, gid, extra = resolve_user(rootfs, config.user)
            base["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
        if config.privileged:
            caps = host_capabilities()
            base["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
        return base

    def runtime_argv(self, c: Container) -> list[str]:
        runner = self.containers.runner
        rt = c.host.runtime
        head = (
            [sys.executable, "-I", "-S", RUNTIME_MAIN]
            if rt == "sampan"
            else [runner.runtime_binary(rt)]
        )
        return [*head, "--root", runner.runtime_root(rt)]

    async def start(
        self,
        exec_id: str,
        *,
        detach: bool = False,
        tty: bool | None = None,
        output: Output | None = None,
        stdin: Callable[[], Awaitable[bytes]] | None = None,
        console_size: tuple[int, int] | None = None,
    ) -> int | None:
        """Run the exec.  Attached: relay ``stdin()`` chunks to it (b"" ends stdin) and its
        output to ``output``; returns the exit code.  Detached: returns None at once."""
        e = self.get(exec_id)
        if e.started:
            raise errors.Conflict(f"Error: Exec command {e.id} has already run")
        c = self.containers.get(e.container_id)
        if not c.state.running or c.state.paused:
            raise errors.ContainerNotRunning(f"container {c.id} is not running")
        if tty is not None:
            e.config.tty = tty
        e.started = True
        e.running = True
        workdir = tempfile.mkdtemp(prefix=e.id[:12] + ".", dir=self._ensure_root())
        # runc and crun take a console socket only with --detach: a small helper runs them and
        # waits for the process as its subreaper (exec_reaper.py)
        reaped = e.config.tty and c.host.runtime != "sampan"
        try:
            process = self.process_json(c, e.config)
            path = os.path.join(workdir, "process.json")
            with open(path, "w") as f:
                json.dump(process, f)
            e.pid_file = os.path.join(workdir, "pid")
            argv = [*self.runtime_argv(c), "exec", *(["--detach"] if reaped else []), "--process", path,
                    "--pid-file", e.pid_file]
            console: socket.socket | None = None
            if e.config.tty:
                console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                console.bind(os.path.join(workdir, "c.sock"))
                console.listen(1)
                argv += ["--console-socket", os.path.join(workdir, "c.sock")]
            argv.append(c.id)
            if reaped:
                root = os.path.dirname(os.path.dirname(RUNTIME_MAIN))
                code = f"import sys; sys.path.insert(0, {root!r}); from sampan.engine.exec_reaper import main; main()"
                argv = [sys.executable, "-I", "-S", "-c", code, e.pid_file, *argv]
            attached = not detach
            want_in = attached and e.config.attach_stdin and stdin is not None
            e.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if want_in and not e.config.tty else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if not e.config.tty else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except BaseException as exc:
            e.running = False
            e.exit_code = 126
            e.finished_at = time.monotonic()
            e.done.set()
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, errors.SampanError):
                raise
            if isinstance(exc, OSError):
                raise errors.from_oserror(exc, "exec: start the runtime") from exc
            raise
        self._event(c, e, "exec_start", execID=e.id)
        runner = self._run(c, e, workdir, console, output if attached else None,
                           stdin if want_in else None, console_size or e.config.console_size)
        if detach:
            task = asyncio.ensure_future(runner)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return None
        return await runner

    def _ensure_root(self) -> str:
        os.makedirs(self.exec_root, mode=0o700, exist_ok=True)
        return self.exec_root

    async def _run(
        self,
        c: Container,
        e: Exec,
        workdir: str,
        console: socket.socket | None,
        output: Output | None,
        stdin: Callable[[], Awaitable[bytes]] | None,
        size: tuple[int, int] | None,
    ) -> int:
        proc = e.proc
        assert proc is not None
        pumps: list[asyncio.Future[Any]] = []
        feeder: asyncio.Future[Any] | None = None
        stderr_text = bytearray()
        try:
            master = e.master_fd
            if console is not None:
                master = await self._receive_master(console, proc)
                console.close()
                console = None
                e.master_fd = master
            if master >= 0:
                size = e.config.console_size or size
                if size and size[0] and size[1]:
                    self.resize(e.id, size[0], size[1])
                pumps.append(asyncio.ensure_future(self._pump_master(master, output)))
                if stdin is not None:
                    feeder = asyncio.ensure_future(self._feed_master(master, stdin))
            elif proc.stdout is not None:
                pumps.append(asyncio.ensure_future(self._pump(proc.stdout, "stdout", output)))
                if stdin is not None and proc.stdin is not None:
                    feeder = asyncio.ensure_future(self._feed(proc.stdin, stdin))
            if proc.stderr is not None:
                pumps.append(asyncio.ensure_future(self._pump(proc.stderr, "stderr", output, keep=stderr_text)))
            code = await proc.wait()
            await asyncio.gather(*pumps, return_exceptions=True)
            started = self.pid_of(e) > 0
            if code != 0 and not started:
                # the runtime failed before the process ran: Docker's 126 / 127
                text = stderr_text.decode(errors="replace").lower()
                code = 127 if ("not found" in text or "no such file" in text) else 126
            e.exit_code = code if code >= 0 else 128 - code
            return e.exit_code
        except asyncio.CancelledError:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            raise
        finally:
            if feeder is not None:
                feeder.cancel()
            for p in pumps:
                p.cancel()
            if console is not None:
                console.close()
            self.pid_of(e)
            if e.master_fd >= 0:
                with contextlib.suppress(OSError):
                    asyncio.get_running_loop().remove_reader(e.master_fd)
                    os.close(e.master_fd)
                e.master_fd = -1
            e.running = False
            if e.exit_code is None:
                e.exit_code = proc.returncode if proc.returncode is not None and proc.returncode >= 0 else 137
            e.finished_at = time.monotonic()
            e.done.set()
            shutil.rmtree(workdir, ignore_errors=True)
            self._event(c, e, "exec_die", execID=e.id, exitCode=str(e.exit_code))

    async def _receive_master(self, console: socket.socket, proc: asyncio.subprocess.Process) -> int:
        def accept() -> int:
            console.settimeout(0.1)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    conn, _ = console.accept()
                except TimeoutError:
                    if proc.returncode is not None:
                        return -1
                    continue
                with conn:
                    conn.settimeout(10)
                    _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
                return fds[0] if fds else -1
            return -1

        task = asyncio.ensure_future(asyncio.to_thread(accept))
        waiter = asyncio.ensure_future(proc.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            waiter.cancel()
            await asyncio.sleep(0.2)  # the accept loop notices the exit
            return await task
        waiter.cancel()
        return task.result()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, stream: str, output: Output | None,
                    keep: bytearray | None = None) -> None:
        while chunk := await reader.read(65536):
            if keep is not None and len(keep) < 4096:
                keep += chunk[: 4096 - len(keep)]
            if output is not None:
                with contextlib.suppress(ConnectionError):
                    await output(stream, chunk)

    @staticmethod
    async def _feed(writer: asyncio.StreamWriter, stdin: Callable[[], Awaitable[bytes]]) -> None:
        try:
            while data := await stdin():
                writer.write(data)
                await writer.drain()
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _pump_master(master: int, output: Output | None) -> None:
        loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        ready = asyncio.Event()
        loop.add_reader(master, ready.set)
        try:
            while True:
                await ready.wait()
                ready.clear()
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the last slave closed
                    return
                if not data:
                    return
                if output is not None:
                    with contextlib.suppress(ConnectionError):
                        await output("stdout", data)
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(master)

    @staticmethod
    async def _feed_master(master: int, stdin: Callable[[], Awaitable[bytes]]) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await stdin():
                view = memoryview(data)
                while view:
                    try:
                        n = os.write(master, view)
                        view = view[n:]
                    except BlockingIOError:
                        await asyncio.sleep(0.005)
                    except OSError:
                        return
        # stdin ended: with a TTY the process's stdin stays open, as in moby

    def pid_of(self, e: Exec) -> int:
        """The exec's process ID in the host's namespace (0 before it started)."""
        if not e.pid and e.pid_file:
            with contextlib.suppress(OSError, ValueError), open(e.pid_file) as f:
                e.pid = int(f.read().strip() or 0)
        return e.pid

    def resize(self, exec_id: str, height: int, width: int) -> None:
        e = self.get(exec_id)
        if not e.config.tty:
            raise errors.Conflict(f"exec {e.id} has no terminal to resize")
        if e.master_fd < 0:
            if e.running or not e.started:
                e.config.console_size = (height, width)  # applied when the PTY arrives
                return
            raise errors.Conflict(f"exec {e.id} is not running")
        with contextlib.suppress(OSError):
            fcntl.ioctl(e.master_fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill_all(self, container_id: str) -> None:
        for e in self._execs.values():
            if e.container_id == container_id and e.proc is not None and e.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    e.proc.send_signal(signal.SIGKILL)
