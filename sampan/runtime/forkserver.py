"""Starting shims: a pre-imported fork server, and the launcher the daemon calls.

A fresh interpreter per container costs ~10 ms and ~9 MB; a shim forked from a process that
already imported what the shim needs costs a fraction of a millisecond and shares those pages
(PSS ~1 MB).  The daemon starts one fork server (``ForkServer.start()``) and launches every
shim through it::

    daemon                                   fork server (python -I -S, single-threaded)
      socketpair(a, b)
      send {config} + fd b  ──SEQPACKET──>   recv; fork ──> the shim: shim.run(config, b)
      read the reply on a                        (SIGCHLD ignored: the kernel reaps shims;
                                                 if the fork server exits they live on)
                          <── {"ok", "pid", "container_pid"} ── the shim's creator child

The fork server exits when the daemon's end of the control socket closes (the daemon died or
closed it); shims it started live on.  Without a fork server, ``start_shim`` runs the same
``shim.run`` in a fresh interpreter (slower, same result).
"""

from __future__ import annotations

import json
import os
import socket
import sys

from sampan import errors
from sampan.runtime import shimproto as proto

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    import subprocess
    from typing import Any

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = (
    "import sys; sys.path.insert(0, {parent!r}); "
    "from sampan.runtime.forkserver import {entry}; {entry}(int(sys.argv[1]))"
)


class ShimHandle:
    """A started shim: its pid, its socket, and the container's pid 1."""

    __slots__ = ("container_pid", "pid", "socket_path")

    def __init__(self, pid: int, socket_path: str, container_pid: int) -> None:
        self.pid = pid
        self.socket_path = socket_path
        self.container_pid = container_pid

    def __repr__(self) -> str:
        return f"ShimHandle(pid={self.pid}, socket_path={self.socket_path!r}, container_pid={self.container_pid})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShimHandle) and (
            self.pid,
            self.socket_path,
            self.container_pid,
        ) == (other.pid, other.socket_path, other.container_pid)

    def __hash__(self) -> int:
        return hash((self.pid, self.socket_path))


def serve(control_fd: int) -> None:
    """The fork server's loop (runs in its own process)."""
    import gc
    import signal

    _grow_interned_strings()  # first: the imports below then reuse what it frees
    import sampan._sys.reaper
    import sampan.runtime.shim

    sampan._sys.reaper.is_child_subreaper()  # a first ctypes call here, not in every shim

    control = socket.socket(fileno=control_fd)
    _ignore_signals()  # inherited by every shim (it sets no handler of its own)
    from sampan.runtime.shimrehearsal import rehearse

    rehearse()  # the first run of the shim's code, here: its writes are then shared
    gc.collect()
    gc.freeze()  # objects stay in shared pages: the shims' garbage collector never touches them
    # Every page this loop writes after a fork is left behind, unshared, in the shim just
    # forked (copy-on-write keeps the original for it): so the loop does as little as it can
    # and the child parses the request.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # shims are reaped by the kernel
    space = socket.CMSG_SPACE(4)
    while True:
        try:
            msg, ancillary, _flags, _addr = control.recvmsg(1 << 16, space)
        except InterruptedError:
            continue
        if not msg:
            return
        if not ancillary:
            continue
        fd = int.from_bytes(ancillary[0][2][:4], sys.byteorder)
        pid = os.fork()
        if pid == 0:
            _child(control, msg, fd)
        os.close(fd)


def _ignore_signals() -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)


def _rss_kib() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _grow_interned_strings(limit: int = 20000) -> None:
    """Make the interpreter's table of interned strings grow now, in the fork server.

    A shim interns a few strings of its own (names the C code looks up on first use).  If
    the table is nearly full when the fork server forks, that tips it over in every shim: each
    copies the whole table (~200 KiB here, a quarter of a shim's private memory).  So we intern
    throwaway strings until the table has grown (seen as a jump in RSS: the new table is
    written at once), which leaves thousands of free slots, then drop them again.
    """
    import sys

    keep = []
    base = _rss_kib()
    for i in range(limit):
        keep.append(sys.intern(f"sampan-forkserver-{i}"))
        if i % 16 == 15:
            now = _rss_kib()
            if now - base > 64:
                break
            base = now
    del keep


def _child(control: socket.socket, msg: bytes, fd: int) -> None:
    try:
        control.close()
        from sampan.runtime.shim import run

        run(msg, fd, detach=False)  # the shim's creator child parses the config
    finally:
        os._exit(1)


def _run_one(reply_fd: int) -> None:
    """Entry of a fresh-interpreter shim: the config arrives on the reply socket first."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(reply_fd, 65536)
        if not chunk:
            os._exit(1)
        line += chunk
    from sampan.runtime.shim import run

    _ignore_signals()
    run(line, reply_fd)


class ForkServer:
    """The daemon's handle on its fork server.  Thread-safe; one per daemon."""

    def __init__(self, proc: subprocess.Popen[bytes], control: socket.socket) -> None:
        import threading

        self.proc = proc
        self.control = control
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, *, python: str = sys.executable) -> ForkServer:
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            boot = _BOOT.format(parent=_PKG_PARENT, entry="serve")
            proc = subprocess.Popen(
                [python, "-I", "-S", "-c", boot, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
        finally:
            theirs.close()
        return cls(proc, ours)

    def spawn(self, config: dict[str, Any], *, timeout: float = 60.0) -> ShimHandle:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                try:
                    socket.send_fds(self.control, [json.dumps(config).encode()], [b.fileno()])
                except OSError as exc:
                    raise errors.Unavailable(f"shim fork server is gone: {exc}") from exc
            b.close()
            return _read_handle(a, timeout)
        finally:
            a.close()
            b.close()

    def close(self) -> None:
        import subprocess

        self.control.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _read_handle(sock: socket.socket, timeout: float) -> ShimHandle:
    sock.settimeout(timeout)
    try:
        line = proto.read_line(sock)
    except TimeoutError as exc:
        raise errors.Unavailable(f"shim did not answer within {timeout:.0f}s") from exc
    if not line:
        raise errors.Internal("the shim exited before creating the container (see its shim.log)")
    reply = proto.raise_for(json.loads(line))
    return ShimHandle(int(reply["pid"]), str(reply["socket"]), int(reply["container_pid"]))


def start_shim(
    *,
    container_id: str,
    bundle: str,
    runtime: str,
    state_dir: str,
    log_path: str,
    log_max_size: int = 10 << 20,
    log_max_files: int = 3,
    tty: bool = False,
    stdin_open: bool = False,
    runtime_root: str = "",
    forkserver: ForkServer | None = None,
    timeout: float = 60.0,
) -> ShimHandle:
    """Start a shim that creates the container (not started: call ``ShimClient.start()``).

    ``runtime`` is "sampan" (sampan's runtime, called in-process) or the path of a
    runc-compatible binary (runc, crun, sampan-runtime).  Errors from the runtime's create
    come back as sampan errors; nothing is left running then.
    """
    config = {
        "container_id": container_id,
        "bundle": str(bundle),
        "runtime": runtime,
        "runtime_root": runtime_root,
        "state_dir": str(state_dir),
        "log_path": str(log_path),
        "log_max_size": log_max_size,
        "log_max_files": log_max_files,
        "tty": tty,
        "stdin_open": stdin_open,
    }
    if forkserver is not None:
        return forkserver.spawn(config, timeout=timeout)
    import subprocess

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        boot = _BOOT.format(parent=_PKG_PARENT, entry="_run_one")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", boot, str(b.fileno())],
            pass_fds=[b.fileno()],
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
        b.close()
        a.sendall(proto.encode(config))
        proc.wait()  # the first process exits once the shim is forked
        return _read_handle(a, timeout)
    finally:
        a.close()
        b.close()
