"""The shim: one small monitor per container.

It is the parent (as child subreaper) of the container's pid 1; it holds the container's stdio
(pipes, or the PTY master received on a console socket), writes the json-file log, records the
exit status, signal and time in ``<state_dir>/state.json`` (written atomically), and serves the
protocol of :mod:`sampan.runtime.shimproto` on ``<state_dir>/shim.sock``.  It runs in its own
session, so it outlives the daemon that started it; a restarted daemon re-adopts a container by
reading state.json and connecting to the socket.

Life of a shim::

    fork server ──fork──> shim.run: setsid (the fork server ignores SIGCHLD)
    shim: subreaper, stdio to /dev/null + shim.log, bind shim.sock, open the log
          runtime create (CLI: `<rt> --root R --log F create --bundle B --pid-file P ID`;
                          "sampan": sampan.runtime.container.create() in a forked helper)
          reply {"ok": true, "pid": shim pid, "container_pid": N} on the launcher's socket
    loop: poll(listener, clients, container stdout/stderr or PTY master, stdin, SIGCHLD pipe)
          "start" -> runtime start; output -> log + attached clients; SIGCHLD -> reap
    pid 1 exits -> drain output, state.json {status: stopped, exit_code, signal, exited_at},
          answer waiters, end attach streams; keep serving until "delete"
    "delete" -> runtime delete, answer, remove the socket, exit

Memory is the budget (PSS per shim, measured with smem): the shim is forked from a fork
server that pre-imported everything (``forkserver.py``), imports only os, select, json, the C
``_signal``/``_socket`` and sampan's small modules, and keeps Python work in its own process
small (setup runs in a throwaway helper): every object it touches costs a private page.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: signal.py's enum wrapping costs memory
import _socket
import errno
import json
import os
import select
import signal
import time

from sampan import errors
from sampan._sys.reaper import set_child_subreaper
from sampan.runtime import shimproto as proto
from sampan.runtime.forkserver import ForkServer, ShimHandle, start_shim
from sampan.runtime.jsonlog import JsonLogWriter, rfc3339nano
from sampan.runtime.shimdriver import RuntimeDriver, ShimConfig, detach_process
from sampan.runtime.shimproto import ShimClient, read_state

__all__ = ["ForkServer", "Shim", "ShimClient", "ShimHandle", "read_state", "run", "start_shim"]

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    import socket
    from typing import Any, NoReturn

MAX_CLIENT_BUFFER = 4 << 20
TIOCSWINSZ = 0x5414


def _now() -> str:
    return rfc3339nano(time.time_ns())


class _Client:
    """One connection: a request, a waiter, or an attach stream."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False  # close once outbuf is flushed
        self.read_closed = False
        self.attach = False
        self.waiting = False
        self.takes_stdin = False
        self.close_stdin = False
        self.streams: tuple[str, ...] = ()


class Shim:
    def __init__(self, config: ShimConfig) -> None:
        self.cfg = config
        self.driver = RuntimeDriver(config)
        self.shim_pid = os.getpid()
        self.status = "creating"
        self.pid = 0
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.created_at = _now()
        self.started_at = ""
        self.exited_at = ""
        self.out_fds: dict[int, str] = {}  # fd -> "stdout" | "stderr"
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.clients: dict[int, _Client] = {}
        # plain _socket objects: socket.socket's Python wrappers cost memory in every shim
        self.listener: _socket.socket | None = None
        self.log: JsonLogWriter | None = None
        self.log_errors = 0
        self.wake_r = -1
        self.done = False

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Everything up to a created container; raises a sampan error on failure.  The
        work runs in a throwaway helper (``RuntimeDriver.create_in_helper``)."""
        set_child_subreaper()  # before the helper forks: pid 1 must end up our child

        def created(pid: int) -> None:  # in the helper, once the runtime answered
            self.pid, self.status = pid, "created"
            self.save_state()

        listener_fd, self.pid, self.out_fds, self.stdin_fd = self.driver.create_in_helper(created)
        self.listener = _socket.socket(fileno=listener_fd)
        self.listener.setblocking(False)
        cfg = self.cfg
        self.log = JsonLogWriter(
            cfg.log_path, max_size=cfg.log_max_size, max_files=cfg.log_max_files
        )
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r = wake_r
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, _on_sigchld)
        for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE):
            _signal.signal(sig, _signal.SIG_IGN)
        self.status = "created"

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        cfg, status = self.cfg, self.status
        ids = {"id": cfg.container_id, "status": status, "pid": self.pid, "shim_pid": self.shim_pid}
        exit = {"exit_code": self.exit_code, "signal": self.signal, "exited_at": self.exited_at}
        more = {"created_at": self.created_at, "started_at": self.started_at, "tty": cfg.tty}
        return {**ids, **exit, **more, "log_path": cfg.log_path, "socket": cfg.socket_path}

    def save_state(self) -> None:
        """Write state.json atomically (write a temporary file, rename it over)."""
        tmp = f"{self.cfg.state_path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(self.state()).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.cfg.state_path)

    # ------------------------------------------------------------ the loop

    def serve(self) -> None:
        assert self.listener is not None
        lfd = self.listener.fileno()
        self.reap()
        while not self.done:
            poller = select.poll()
            poller.register(lfd, select.POLLIN)
            poller.register(self.wake_r, select.POLLIN)
            for fd in self.out_fds:
                poller.register(fd, select.POLLIN)
            if self.stdin_fd >= 0 and self.stdin_buf and self.stdin_fd not in self.out_fds:
                poller.register(self.stdin_fd, select.POLLOUT)
            for fd, c in self.clients.items():
                mask = (0 if c.read_closed else select.POLLIN) | (select.POLLOUT if c.outbuf else 0)
                poller.register(fd, mask or select.POLLHUP)
            tty_out = self.cfg.tty and self.stdin_fd in self.out_fds and self.stdin_buf
            for fd, ev in poller.poll(50 if tty_out else -1):
                if fd == lfd:
                    self.accept()
                elif fd == self.wake_r:
                    _drain(self.wake_r)
                    self.reap()
                elif fd in self.out_fds:
                    self.read_output(fd)
                elif fd in self.clients:
                    self.client_event(self.clients[fd], ev)
                elif fd == self.stdin_fd:
                    self.flush_stdin()
            if tty_out:
                self.flush_stdin()

    def accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                fd, _ = self.listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            self.clients[fd] = _Client(sock)

    def read_output(self, fd: int) -> bool:
        """Read once from a container stream; True if something was read (False at its end
        or when nothing is waiting)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the PTY's last slave is closed
                raise
            data = b""
        stream = self.out_fds[fd]
        if not data:
            del self.out_fds[fd]
            self.logged(stream, b"")
            if fd != self.stdin_fd:
                os.close(fd)
            return False
        self.logged(stream, data)
        chunk = (
            data
            if self.cfg.tty
            else proto.frame(proto.STDOUT if stream == "stdout" else proto.STDERR, data)
        )
        for c in list(self.clients.values()):
            if c.attach and stream in c.streams and not c.closing:
                c.outbuf += chunk
                if len(c.outbuf) > MAX_CLIENT_BUFFER:
                    self.drop(c)  # a client that does not read does not stall the container
                else:
                    self.flush_client(c)
        return True

    def logged(self, stream: str | None, data: bytes) -> None:
        """Write to the json log (``data`` empty: flush ``stream``, or all streams if None).
        A full disk loses log lines, never the shim: the container keeps running."""
        if self.log is None:
            return
        try:
            if data and stream:
                self.log.write(stream, data)
            else:
                self.log.flush(stream)
        except OSError as exc:
            self.log_errors += 1
            if self.log_errors == 1:
                try:
                    os.write(2, f"sampan-shim: log write failed, dropping output: {exc}\n".encode())
                except OSError:
                    pass

    def flush_stdin(self) -> None:
        if self.stdin_fd < 0:
            self.stdin_buf.clear()
            return
        try:
            while self.stdin_buf:
                n = os.write(self.stdin_fd, self.stdin_buf)
                del self.stdin_buf[:n]
        except BlockingIOError:
            return
        except OSError:  # EPIPE: nobody reads stdin any more
            self.stdin_buf.clear()
        if self.stdin_close_pending and not self.stdin_buf:
            self.close_stdin()

    def close_stdin(self) -> None:
        self.stdin_close_pending = False
        if self.stdin_fd < 0:
            return
        if self.cfg.tty:
            self.stdin_buf += b"\x04"  # EOF for the line discipline; the master stays open
            return
        os.close(self.stdin_fd)
        self.stdin_fd = -1

    def client_event(self, c: _Client, ev: int) -> None:
        if ev & select.POLLOUT:
            self.flush_client(c)
            if c.sock.fileno() < 0:  # flushed and closed
                return
        if c.read_closed:
            if ev & (select.POLLHUP | select.POLLERR):
                self.drop(c)  # the peer is gone altogether: nothing more to send it
            return
        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self.drop(c)
                return
            if not data:
                c.read_closed = True
                if c.attach and c.takes_stdin and c.close_stdin:
                    self.stdin_close_pending = True
                    self.flush_stdin()
                elif not c.attach and not c.waiting:
                    self.drop(c)
                return
            if c.attach:
                if c.takes_stdin and self.stdin_fd >= 0:
                    self.stdin_buf += data
                    self.flush_stdin()
                return
            c.inbuf += data
            if b"\n" in c.inbuf:
                line = bytes(c.inbuf[: c.inbuf.index(b"\n")])
                c.inbuf.clear()
                self.request(c, line)
            elif len(c.inbuf) > 65536:
                self.drop(c)

    def flush_client(self, c: _Client) -> None:
        try:
            while c.outbuf:
                n = c.sock.send(c.outbuf)
                del c.outbuf[:n]
        except BlockingIOError:
            return
        except OSError:
            self.drop(c)
            return
        if c.closing:
            self.drop(c)

    def drop(self, c: _Client) -> None:
        self.clients.pop(c.sock.fileno(), None)
        c.sock.close()

    def reply(self, c: _Client, message: dict[str, Any], *, close: bool = True) -> None:
        c.outbuf += proto.encode(message)
        c.closing = close
        self.flush_client(c)

    # ------------------------------------------------------------ requests

    def request(self, c: _Client, line: bytes) -> None:
        try:
            req = json.loads(line)
            op = req.get("op") if isinstance(req, dict) else None
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise errors.InvalidArgument(f"unknown shim request {op!r}")
            handler(c, req)
        except errors.SampanError as exc:
            self.reply(c, proto.error_reply(exc))
        except Exception as exc:  # a malformed request must not take the shim down
            self.reply(c, proto.error_reply(errors.Internal(f"shim: {type(exc).__name__}: {exc}")))

    def op_status(self, c: _Client, req: dict[str, Any]) -> None:
        self.reply(c, {"ok": True, **self.state()})

    def op_wait(self, c: _Client, req: dict[str, Any]) -> None:
        if self.status == "stopped":
            self.reply(c, {"ok": True, **self.state()})
        else:
            c.waiting = True

    def op_start(self, c: _Client, req: dict[str, Any]) -> None:
        if self.status == "running":
            raise errors.NotModified("container already started")
        if self.status != "created":
            raise errors.ContainerNotRunning(f"cannot start a container that is {self.status}")
        self.driver.call("start", [self.cfg.container_id])
        if self.status == "created":  # it may already have exited
            self.status = "running"
        self.started_at = _now()
        self.save_state()
        self.reply(c, {"ok": True, **self.state()})

    def op_signal(self, c: _Client, req: dict[str, Any]) -> None:
        sig = int(req.get("signal", signal.SIGTERM))
        if self.status == "stopped":
            raise errors.ContainerNotRunning(f"container {self.cfg.container_id} is not running")
        if req.get("all"):
            self.driver.call("kill", ["--all", self.cfg.container_id, str(sig)], sig=sig, all=True)
        else:
            os.kill(self.pid, sig)
        self.reply(c, {"ok": True})

    def op_resize(self, c: _Client, req: dict[str, Any]) -> None:
        if not self.cfg.tty or not self.out_fds:
            raise errors.Conflict("container has no terminal to resize")
        import fcntl
        import struct

        size = struct.pack("HHHH", int(req["height"]), int(req["width"]), 0, 0)
        fcntl.ioctl(next(iter(self.out_fds)), TIOCSWINSZ, size)
        self.reply(c, {"ok": True})

    def op_close_stdin(self, c: _Client, req: dict[str, Any]) -> None:
        self.stdin_close_pending = True
        self.flush_stdin()
        self.reply(c, {"ok": True})

    def op_attach(self, c: _Client, req: dict[str, Any]) -> None:
        c.attach = True
        c.takes_stdin = bool(req.get("stdin")) and self.stdin_fd >= 0
        c.close_stdin = bool(req.get("close_stdin"))
        c.streams = tuple(s for s in ("stdout", "stderr") if req.get(s, True))
        self.reply(c, {"ok": True, "tty": self.cfg.tty}, close=self.status == "stopped")

    def op_delete(self, c: _Client, req: dict[str, Any]) -> None:
        force = bool(req.get("force"))
        if self.status in ("running", "created") and not force:
            raise errors.ContainerRunning(
                f"cannot delete container {self.cfg.container_id}: it is {self.status}"
            )
        if self.status != "stopped":
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while self.status != "stopped":
                self.reap(block=True)
        try:
            cli = ["--force"] if force else []
            self.driver.call("delete", [*cli, self.cfg.container_id], force=force)
        except errors.NotFound:
            pass
        c.sock.setblocking(True)
        c.sock.sendall(proto.encode({"ok": True, **self.state()}))
        self.drop(c)
        self.done = True

    # ------------------------------------------------------------ exit

    def reap(self, *, block: bool = False) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                if block and self.status != "stopped":  # pid 1 is gone but was not our child
                    self.exited(255)
                return
            if pid == 0:
                return
            if pid == self.pid and self.status != "stopped":
                self.exited(status)
                if block:
                    return

    def exited(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        self.signal = -code if code < 0 else None
        self.exit_code = 128 - code if code < 0 else code
        self.exited_at = _now()
        for fd in list(self.out_fds):
            while fd in self.out_fds and self.read_output(fd):
                pass
        self.logged(None, b"")
        if not self.cfg.tty and self.stdin_fd >= 0:
            os.close(self.stdin_fd)  # nobody will read it any more
            self.stdin_fd = -1
            self.stdin_buf.clear()
        self.status = "stopped"
        self.save_state()
        for c in list(self.clients.values()):
            if c.waiting:
                self.reply(c, {"ok": True, **self.state()})
            elif c.attach:
                c.closing = True
                if not c.outbuf:
                    self.drop(c)

    def close(self) -> None:
        for c in list(self.clients.values()):
            self.drop(c)
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.cfg.socket_path)
            except OSError:
                pass
        if self.log is not None:
            self.log.close()
            self.log = None


# ---------------------------------------------------------------- process plumbing


def _on_sigchld(signum: int, frame: object) -> None:
    """Nothing: the wakeup fd tells the loop to reap."""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def run(raw_config: dict[str, Any], reply: socket.socket, *, detach: bool = True) -> NoReturn:
    """Become the shim: a new session (and with ``detach``, a double fork so that the caller
    need not reap us), create the container, answer on ``reply``, serve until deleted.
    Never returns; exits the process."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # the fork server ignores it
    os.setsid()
    if detach and os.fork() != 0:
        os._exit(0)
    code = 1
    shim = None
    try:
        config = ShimConfig(raw_config)
        detach_process(config.state_dir)
        shim = Shim(config)
        try:
            shim.setup()
        except BaseException as exc:
            shim.close()  # before answering: the caller finds nothing left behind
            reply.sendall(proto.encode(proto.error_reply(exc)))
            raise
        ready = {"ok": True, "pid": os.getpid(), "socket": config.socket_path}
        reply.sendall(proto.encode({**ready, "container_pid": shim.pid}))
        reply.close()
        shim.serve()
        code = 0
    except BaseException as exc:
        try:
            os.write(2, f"sampan-shim: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    finally:
        if shim is not None:
            shim.close()
        os._exit(code)
