"""A pre-imported process that runs RUN steps' containers: a fork per step, no interpreter start.

Measured here: ``sampan-runtime run`` as a fresh ``python -I -S`` process takes ~75 ms for
``echo hi``; ``runtime.container.run`` in a child forked from a process that has already
imported the runtime takes ~35 ms.  The builder's RUN steps go through this server::

    daemon (RunServer.run)                       run server (python -I -S, single-threaded)
      pipes (out_r, out_w), (err_r, err_w), socketpair (a, b)
      send {root, id, bundle} + fds [b, out_w, err_w] ─SEQPACKET─>  recv; fork ──> child:
      read out_r, err_r until EOF (the step's output)            stdout = out_w, stderr = err_w
      read the exit code on a  <──────────────────────────────   code = container.run(...)

The server ignores SIGCHLD (the kernel reaps its children); a child restores it, because
``container.run`` waits for the container's init as a child subreaper.  The server exits when
the daemon's end of the control socket closes.

Cancelling a running step (the build's client went away): the daemon's side of ``run`` polls
``cancelled`` while it relays the output; once it is true, :func:`kill_step` SIGKILLs every
process of the step's container through the runtime's state (again at each poll until the
output ends: the container may still be being created), the child's ``container.run`` sees
its init die and deletes the container (state, cgroup) as after any exit, and ``run``
returns the exit code (137).  Why a separate process and not a fork of the
daemon: the daemon is multi-threaded (asyncio, worker threads), and ``run`` makes its caller a
subreaper; neither mixes well with forking the daemon itself.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from sampan.errors import SampanError

#: How often a running step looks whether its build was cancelled (seconds).
POLL_INTERVAL = 0.1
#: dockerd's legacy builder shows a RUN step's stderr in red (streamformatter's stderr writer)
STDERR_START, STDERR_END = b"\x1b[91m", b"\x1b[0m"

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = ("import sys; sys.path.insert(0, {parent!r}); "
         "from sampan.build.runserver import serve; serve(int(sys.argv[1]))")


def serve(control_fd: int) -> None:
    """The server's loop (runs in the server process)."""
    from sampan.runtime import container  # imported once, before any fork

    _ = container
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(control, 65536, 3)
        except OSError:
            return
        if not msg:
            return
        if len(fds) not in (2, 3):
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            _child(control, msg, fds[0], fds[1], fds[2] if len(fds) == 3 else fds[1])
        for fd in fds:
            os.close(fd)


def _child(control: socket.socket, msg: bytes, reply_fd: int, out_fd: int, err_fd: int) -> None:
    code = 125
    try:
        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in {out_fd, err_fd}:
            os.close(fd)
        request = json.loads(msg)
        from sampan.runtime import container

        code = container.run(request["root"], request["id"], request["bundle"])
    except BaseException as exc:  # reported as the step's output; the step fails
        try:
            os.write(2, f"sampan-runtime: {exc}\n".encode())
        except OSError:
            pass
    finally:
        try:
            os.write(reply_fd, str(code).encode())
        finally:
            os._exit(0)


def relay(fd: int, output: Callable[[bytes], None], *, cancelled: Callable[[], bool] | None,
          stop: Callable[[], None], err_fd: int | None = None) -> bool:
    """Pass what ``fd`` (and ``err_fd``: the step's stderr) yield to ``output`` until their end;
    each stderr chunk comes wrapped in red as dockerd's legacy builder sends it
    (``ESC[91m`` ... ``ESC[0m``).  With ``cancelled``, look every POLL_INTERVAL whether it is
    true; from then on call ``stop`` at each look (until the end comes).  Return whether the
    step was stopped."""
    stopped = False
    next_look = 0.0
    open_fds = [fd] if err_fd is None else [fd, err_fd]
    while open_fds:
        if cancelled is not None:
            now = time.monotonic()
            if now >= next_look:
                next_look = now + POLL_INTERVAL
                if stopped or cancelled():
                    stopped = True
                    stop()
        if cancelled is not None or len(open_fds) > 1:
            ready, _, _ = select.select(open_fds, [], [], POLL_INTERVAL)
        else:
            ready = open_fds
        for ready_fd in ready:
            chunk = os.read(ready_fd, 65536)
            if not chunk:
                open_fds.remove(ready_fd)
            elif ready_fd == err_fd:
                output(STDERR_START + chunk + STDERR_END)
            else:
                output(chunk)
    return stopped


def kill_step(root: str, id: str) -> None:
    """SIGKILL every process of a RUN step's container (through its runtime state); nothing
    when it is not there (not created yet, or gone already)."""
    from sampan.runtime import container

    try:
        container.kill(root, id, signal.SIGKILL, all=True)
    except (SampanError, OSError):
        pass


class RunServer:
    """The daemon's handle on a run server (started lazily, restarted if it died)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    def _server(self) -> socket.socket:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None or self._control is None:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                boot = _BOOT.format(parent=_PKG_PARENT)
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", boot, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
                )
                theirs.close()
                self._control = ours
            return self._control

    def run(self, root: str, id: str, bundle: str, output: Callable[[bytes], None],
            cancelled: Callable[[], bool] | None = None) -> int:
        """Run the bundle's container; ``output(bytes)`` gets its stdout and stderr.  When
        ``cancelled()`` becomes true the container is killed (see the module docstring)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ours, theirs = socket.socketpair()
        try:
            request = json.dumps({"root": root, "id": id, "bundle": bundle}).encode()
            socket.send_fds(self._server(), [request], [theirs.fileno(), out_w, err_w])
        finally:
            theirs.close()
            os.close(out_w)
            os.close(err_w)
        try:
            relay(out_r, output, cancelled=cancelled, stop=lambda: kill_step(root, id), err_fd=err_r)
            reply = ours.recv(64)
        finally:
            os.close(out_r)
            os.close(err_r)
            ours.close()
        try:
            return int(reply or b"125")
        except ValueError:
            return 125

    def close(self) -> None:
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._proc is not None:
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                self._proc = None
