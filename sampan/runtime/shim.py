"""The shim: one small monitor per container.

It is the parent (as child subreaper) of the container's pid 1; it holds the container's stdio
(pipes, or the PTY master received on a console socket), writes the json-file log, records the
exit status, signal and time in ``<state_dir>/state.json`` (written atomically), and serves the
protocol of :mod:`sampan.runtime.shimproto` on ``<state_dir>/shim.sock``.  It runs in its own
session, so it outlives the daemon that started it; a restarted daemon re-adopts a container by
reading state.json and connecting to the socket.

Life of a shim::

    fork server ──fork──> shim.run: setsid (the fork server ignores SIGCHLD), subreaper
    shim ──fork──> creator (shimtasks.create): config, shim.sock, runtime create, state.json;
          hands the shim its fds (listener, shim.log, container stdio) and a short record,
          answers the launcher {"ok": true, "pid": shim pid, "container_pid": N}, exits;
          pid 1 (orphaned by the runtime) is re-parented to the shim, the subreaper
    loop: poll(listener, clients, container stdout/stderr or PTY master, stdin, pidfds)
          a request line -> fork a handler (shimtasks.handle): it answers, or its exit code
          says what changed (start, wait, attach, close stdin, delete) and the loop applies it
          output -> log + attached clients; a pidfd (pid 1, a child) -> reap
    pid 1 exits -> drain output, fork an answerer: state.json {status: stopped, exit_code,
          signal, exited_at}, answers to the waiters; end attach streams; serve until "delete"
    "delete" -> stop pid 1, runtime delete (in a child, which answers), remove the socket, exit

Memory is the budget (PSS per shim, measured with smem).  The shim is forked from a fork server
that pre-imported everything (``forkserver.py``), so it shares those pages, and every page it
writes afterwards is its own: CPython writes one for each object it touches.  So the shim
process runs nothing but this loop (the C ``_signal``/``_socket``, os, select, the log writer)
and forks a throwaway child (``shimtasks``) for everything else, JSON included; and the fork
server rehearses this loop once (``shimrehearsal``) so that first-run writes are shared.
With 10 running containers: PSS ~1.4 MB per shim (Private_Dirty ~0.86 MB, of which ~0.15 MB
is what any fork of CPython 3.11 writes).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: signal.py's enum wrapping costs memory
import _socket
import errno
import os
import select
import time

from sampan._sys.reaper import set_child_subreaper
from sampan.runtime import shimproto as proto
from sampan.runtime import shimtasks as tasks
from sampan.runtime.forkserver import ForkServer, ShimHandle, start_shim
from sampan.runtime.jsonlog import JsonLogWriter
from sampan.runtime.shimproto import ShimClient, read_state

__all__ = ["ForkServer", "Shim", "ShimClient", "ShimHandle", "read_state", "run", "start_shim"]

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_CLIENT_BUFFER = 4 << 20
# answers the loop sends itself (no JSON encoder in the shim's process)
_OK = b'{"ok":true}\n'
_ATTACHED = (b'{"ok":true,"tty":false}\n', b'{"ok":true,"tty":true}\n')
_WAIT = proto.encode({"op": "wait"}).rstrip(b"\n")  # made once, in the fork server
_CHILD_FAILED = b'{"ok":false,"error":"shim: the request handler failed","kind":"Internal"}\n'


class _Client:
    """One connection: a request, a waiter, or an attach stream."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False  # close once outbuf is flushed
        self.read_closed = False
        self.busy = False  # a handler child has the connection
        self.attach = False
        self.waiting = False
        self.takes_stdin = False
        self.close_stdin = False
        self.streams: tuple[str, ...] = ()


class Shim:
    def __init__(self, raw_config: bytes) -> None:
        self.raw_config = raw_config  # parsed only in the children (shimtasks)
        self.shim_pid = os.getpid()
        self.status = "creating"
        self.pid = 0
        self.tty = False
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.created_at = ""
        self.started_ns = 0
        self.exited_ns = 0
        self.socket_path = ""
        self.out_fds: dict[int, str] = {}  # fd -> "stdout" | "stderr"
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.clients: dict[int, _Client] = {}
        self.children: dict[int, Any] = {}  # pid -> what to do when it exits
        self.pidfds: dict[int, int] = {}  # a pidfd (readable once its process exits) -> pid
        self.saver = 0  # the child writing state.json, if any
        # plain _socket objects: socket.socket's Python wrappers cost memory in every shim
        self.listener: _socket.socket | None = None
        self.log: JsonLogWriter | None = None
        self.log_errors = 0
        self.done = False

    # ------------------------------------------------------------ setup

    def setup(self, reply_fd: int) -> bool:
        """Create the container in the creator child, which answers the launcher on
        ``reply_fd``; False if it failed (the creator answered with the error and left
        nothing behind)."""
        set_child_subreaper()  # before the creator forks: pid 1 must end up our child
        ours, theirs = _socket.socketpair(
            _socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC
        )
        creator = os.fork()
        if creator == 0:  # pragma: no cover - child
            ours.close()
            tasks.run_child(tasks.create, self, theirs, reply_fd)
        theirs.close()
        os.close(reply_fd)
        try:
            msg, ancillary, _flags, _addr = ours.recvmsg(
                4096, _socket.CMSG_SPACE(8 * 4), _socket.MSG_CMSG_CLOEXEC
            )
        finally:
            ours.close()
        os.waitpid(creator, 0)
        fds: list[int] = []
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += memoryview(data[: len(data) - len(data) % 4]).cast("i").tolist()
        if not msg or len(fds) < 3:
            for fd in fds:
                os.close(fd)
            return False
        pid, tty, stdin, streams, max_size, max_files, log_path, self.socket_path, created = (
            msg.decode().split("\0")
        )
        self.pid, self.tty, self.created_at = int(pid), tty == "1", created
        listener_fd, devnull, shim_log = fds[:3]
        os.dup2(devnull, 0)
        os.dup2(shim_log, 1)
        os.dup2(shim_log, 2)
        os.close(devnull)
        os.close(shim_log)
        outs = fds[3:]
        self.out_fds = dict(zip(outs, streams.split(","), strict=False)) if streams else {}
        self.stdin_fd = outs[int(stdin)] if int(stdin) >= 0 else -1
        for fd in outs:
            os.set_blocking(fd, False)
        self.listener = _socket.socket(fileno=listener_fd)
        self.listener.setblocking(False)
        self.log = JsonLogWriter(log_path, max_size=int(max_size), max_files=int(max_files))
        self.watch(self.pid)
        self.status = "created"
        return True

    # ------------------------------------------------------------ the loop

    def serve(self) -> None:
        assert self.listener is not None
        lfd = self.listener.fileno()
        self.reap()
        while not self.done:
            poller = select.poll()
            poller.register(lfd, select.POLLIN)
            for fd in self.pidfds:
                poller.register(fd, select.POLLIN)
            for fd in self.out_fds:
                poller.register(fd, select.POLLIN)
            if self.stdin_fd >= 0 and self.stdin_buf and self.stdin_fd not in self.out_fds:
                poller.register(self.stdin_fd, select.POLLOUT)
            for fd, c in self.clients.items():
                if c.busy:
                    continue
                mask = (0 if c.read_closed else select.POLLIN) | (select.POLLOUT if c.outbuf else 0)
                poller.register(fd, mask or select.POLLHUP)
            tty_out = self.tty and self.stdin_fd in self.out_fds and self.stdin_buf
            for fd, ev in poller.poll(50 if tty_out else -1):
                if fd == lfd:
                    self.accept()
                elif fd in self.pidfds:
                    self.reap()
                    if self.pidfds.get(fd) == self.pid:  # exited, but not as our child
                        self.forget(self.pid)
                        self.exited(255)
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
            if self.tty
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
        if self.tty:
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
            if c.waiting:
                return  # a waiter has nothing more to ask
            c.inbuf += data
            if b"\n" in c.inbuf:
                line = bytes(c.inbuf[: c.inbuf.index(b"\n")])
                c.inbuf.clear()
                if line == _WAIT:  # ShimClient.wait()'s exact bytes: no child needed
                    self.handler_done(c, tasks.WAIT)
                else:
                    c.busy = True
                    self.fork(tasks.handle, c, line, then=c)
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

    def send(self, c: _Client, line: bytes, *, close: bool = True) -> None:
        c.outbuf += line
        c.closing = close
        self.flush_client(c)

    # ------------------------------------------------------------ children

    def fork(self, work: Any, *args: Any, then: Any = None) -> int:
        """Run ``work(self, *args)`` in a throwaway child; ``then`` (a client) gets the
        child's exit code applied (``handler_done``) when it has been reaped.

        A child writing state.json is waited for first: state.json is written by one child
        at a time, in order, and no answer is sent before the state it reports is saved."""
        if self.saver:
            try:
                os.waitpid(self.saver, 0)
            except ChildProcessError:
                pass
            self.forget(self.saver)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            tasks.run_child(work, self, *args)
        self.children[pid] = then
        self.watch(pid)
        return pid

    def watch(self, pid: int) -> None:
        """Wake the loop when ``pid`` exits: no SIGCHLD handler (a signal handler's Python
        frame costs memory in every shim), a pidfd polled with the rest."""
        try:
            self.pidfds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:  # already reaped
            pass

    def forget(self, pid: int) -> Any:
        """``pid`` was reaped: close its pidfd; returns what was to be done (or None)."""
        for fd, watched in list(self.pidfds.items()):
            if watched == pid:
                del self.pidfds[fd]
                os.close(fd)
        if pid == self.saver:
            self.saver = 0
        return self.children.pop(pid, None)

    def answer(self, clients: list[_Client], *, save: bool) -> None:
        """state.json (with ``save``) and the state to ``clients``, from a child."""
        pid = self.fork(tasks.answer, clients, save)
        if save:
            self.saver = pid
        for c in clients:
            self.drop(c)  # the child has its copy and answers

    def handler_done(self, c: _Client, code: int) -> None:
        """Apply what a request handler's exit code says (see ``shimtasks``)."""
        c.busy = False
        if c.sock.fileno() < 0:
            return
        if code == tasks.DONE:
            self.drop(c)
        elif code == tasks.WAIT:
            c.waiting = True
            if self.status == "stopped":  # it exited while the handler looked
                self.answer([c], save=False)
        elif code == tasks.STARTED:
            if self.status == "created":  # it may already have exited
                self.status = "running"
            self.started_ns = time.time_ns()
            self.answer([c], save=True)
        elif code == tasks.CLOSE_STDIN:
            self.stdin_close_pending = True
            self.flush_stdin()
            self.send(c, _OK)
        elif code & ~15 == tasks.ATTACH:
            c.attach = True
            c.takes_stdin = bool(code & tasks.A_STDIN) and self.stdin_fd >= 0
            c.close_stdin = bool(code & tasks.A_CLOSE_STDIN)
            c.streams = ("stdout",) * bool(code & tasks.A_STDOUT) + ("stderr",) * bool(
                code & tasks.A_STDERR
            )
            self.send(c, _ATTACHED[self.tty], close=self.status == "stopped")
        elif code & ~tasks.FORCE == tasks.DELETE:
            self.delete(c, force=bool(code & tasks.FORCE))
        else:  # the handler died: it did not answer
            self.send(c, _CHILD_FAILED)

    def delete(self, c: _Client, *, force: bool) -> None:
        if self.status != "stopped":
            try:
                os.kill(self.pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            while self.status != "stopped":
                self.reap(block=True)
        while self.children:  # the answerers finish (state.json) before the runtime's delete
            self.reap(block=True)
        c.busy = True
        pid = self.fork(tasks.finish_delete, c, force)
        _, status = os.waitpid(pid, 0)
        self.forget(pid)
        c.busy = False
        code = os.waitstatus_to_exitcode(status)
        if code != tasks.DONE:  # the runtime refused (answered), or the child died
            if code == tasks.FAILED:
                self.drop(c)
            else:
                self.send(c, _CHILD_FAILED)
            return
        # deleted: close everything, then answer from here (this process ends right after,
        # its memory no longer matters), so that the answer means nothing is left running
        del self.clients[c.sock.fileno()]
        self.close()
        tasks.answer(self, [c], save=False)
        c.sock.close()
        self.done = True

    # ------------------------------------------------------------ exit

    def reap(self, *, block: bool = False) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                if block and self.status != "stopped":  # pid 1 is gone but was not our child
                    self.exited(255)
                for pid in list(self.children):
                    self.forget(pid)  # ECHILD: no child is left to wait for
                return
            if pid == 0:
                return
            if pid == self.pid and self.status != "stopped":
                self.forget(pid)
                self.exited(status)
            elif pid in self.children:
                then = self.forget(pid)
                if then is not None:
                    self.handler_done(then, os.waitstatus_to_exitcode(status))
            else:
                continue  # an orphan of the runtime's (we are a subreaper)
            if block:
                return

    def exited(self, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        self.signal = -code if code < 0 else None
        self.exit_code = 128 - code if code < 0 else code
        self.exited_ns = time.time_ns()
        for fd in list(self.out_fds):
            while fd in self.out_fds and self.read_output(fd):
                pass
        self.logged(None, b"")
        if not self.tty and self.stdin_fd >= 0:
            os.close(self.stdin_fd)  # nobody will read it any more
            self.stdin_fd = -1
            self.stdin_buf.clear()
        self.status = "stopped"
        waiters = []
        for c in list(self.clients.values()):
            if c.waiting and not c.busy:
                waiters.append(c)
            elif c.attach:
                c.closing = True
                if not c.outbuf:
                    self.drop(c)
        self.answer(waiters, save=True)

    def close(self) -> None:
        for c in list(self.clients.values()):
            self.drop(c)
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        if self.log is not None:
            self.log.close()
            self.log = None


# ---------------------------------------------------------------- process plumbing


def _name_process() -> None:
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY)
        os.write(fd, b"sampan-shim")
        os.close(fd)
    except OSError:
        pass


def run(raw_config: bytes, reply_fd: int, *, detach: bool = True) -> NoReturn:
    """Become the shim: a new session (and with ``detach``, a double fork so that the caller
    need not reap us), create the container (the creator child answers on ``reply_fd``),
    serve until deleted.  Never returns; exits the process."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # the fork server ignores it
    # SIGINT, SIGHUP and SIGPIPE come ignored from the fork server (or ``_run_one``)
    os.setsid()
    if detach and os.fork() != 0:
        os._exit(0)
    code = 1
    shim = None
    try:
        os.chdir("/")
        _name_process()
        shim = Shim(raw_config)
        if shim.setup(reply_fd):
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
