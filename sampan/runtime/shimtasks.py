"""The shim's throwaway children: everything that is not its monitor loop.

The long-lived shim (``shim.py``) keeps only its loop: poll, copy output, reap.  Every other
piece of work runs in a child forked for it, which exits when done::

    creator   (once)         parse the config, bind shim.sock, open shim.log, runtime create
                             (pid 1 is re-parented to the shim: it is a child subreaper),
                             state.json "created", hand the fds to the shim, answer the launcher
    handler   (per request)  parse the request line, check it against the shim's state (the
                             fork's copy), answer it or run the runtime call; its exit code
                             tells the shim what changed (``WAIT``, ``STARTED``, ...)
    answerer  (on changes)   state.json and the answers that carry the shim's state

Why: every page a Python process writes after a fork is its own, and CPython writes a page
for every object it touches (reference counts, 3.11's inline caches).  JSON, the runtime and
the error machinery touch a great deal; done in a child, those pages go away with it and each
shim keeps only what its loop touches (PSS per shim, with smem, is the budget).
"""

from __future__ import annotations

import _socket
import json
import os
import signal

from sampan import errors
from sampan.runtime import shimproto as proto
from sampan.runtime.jsonlog import rfc3339nano
from sampan.runtime.shimdriver import RuntimeDriver, ShimConfig, child_defaults, make_dir

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from sampan.runtime.shim import Shim, _Client

# what a handler's exit code tells the shim
DONE = 0  # answered (or failed and answered): close the connection
WAIT = 1  # the client waits for the exit
STARTED = 2  # the runtime started the container: record it and answer
CLOSE_STDIN = 3
DELETE = 4  # | FORCE: stop the container, then run the runtime's delete (``finish_delete``)
FORCE = 1
ATTACH = 16  # | the stream bits below: the connection becomes an attach stream
A_STDIN, A_STDOUT, A_STDERR, A_CLOSE_STDIN = 1, 2, 4, 8
FAILED = 9  # finish_delete: the runtime's delete failed (answered); the shim lives on

# the shim's own stdio fds and the listener come first in the creator's hand-over
_FIXED_FDS = 3  # listener, /dev/null, shim.log


def state_of(shim: Shim, cfg: ShimConfig) -> dict[str, Any]:
    """The shim's state as the protocol and state.json carry it."""

    def stamp(ns: int) -> str:
        return rfc3339nano(ns) if ns else ""

    return {
        "id": cfg.container_id,
        "status": shim.status,
        "pid": shim.pid,
        "shim_pid": shim.shim_pid,
        "exit_code": shim.exit_code,
        "signal": shim.signal,
        "exited_at": stamp(shim.exited_ns),
        "created_at": shim.created_at,
        "started_at": stamp(shim.started_ns),
        "tty": cfg.tty,
        "log_path": cfg.log_path,
        "socket": cfg.socket_path,
    }


def save_state(cfg: ShimConfig, state: dict[str, Any]) -> None:
    """Write state.json atomically (write a temporary file, rename it over)."""
    tmp = f"{cfg.state_path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(state).encode())
    finally:
        os.close(fd)
    os.replace(tmp, cfg.state_path)


def _send(sock: _socket.socket, message: dict[str, Any]) -> None:
    """Answer on a client connection (made blocking: the shim closes its copy after us)."""
    try:
        sock.setblocking(True)
        sock.sendall(proto.encode(message))
    except OSError:
        pass  # the client went away: nothing to tell it


def run_child(work: Any, *args: Any) -> NoReturn:
    """The body of every forked child: default signals, run ``work``, exit with its code."""
    code = DONE
    try:
        child_defaults()
        code = work(*args)
    except BaseException as exc:
        try:
            os.write(2, f"sampan-shim child: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
        code = 127
    finally:
        os._exit(code)


# ---------------------------------------------------------------- creator


def create(shim: Shim, chan: _socket.socket, reply_fd: int) -> int:
    """Create the container for ``shim`` (the creator child); hand the shim what it needs on
    ``chan``, then answer the launcher on ``reply_fd`` (an error is answered there too, and
    nothing is left behind then)."""
    reply = _socket.socket(fileno=reply_fd)
    try:
        cfg = ShimConfig(json.loads(shim.raw_config))
    except (ValueError, errors.SampanError) as exc:
        error = (
            exc
            if isinstance(exc, errors.SampanError)
            else errors.InvalidArgument(f"shim config: {exc}")
        )
        reply.sendall(proto.encode(proto.error_reply(error)))
        return DONE
    driver = RuntimeDriver(cfg)
    created = None
    try:
        make_dir(cfg.state_dir)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        shim_log = os.open(
            f"{cfg.state_dir}/shim.log",
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o600,
        )
        os.dup2(shim_log, 1)  # our own errors go there too
        os.dup2(shim_log, 2)
        try:
            os.unlink(cfg.socket_path)
        except FileNotFoundError:
            pass
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        proto.bind_unix(listener, cfg.socket_path)  # type: ignore[arg-type]  # bind only
        os.chmod(cfg.socket_path, 0o600)
        listener.listen(64)
        created = driver.create()
        shim.pid, shim.status = created.pid, "created"
        shim.created_at = rfc3339nano(_now_ns())
        save_state(cfg, state_of(shim, cfg))
        outs = list(created.out_fds)
        stdin = -1
        if created.stdin_fd >= 0:
            if created.stdin_fd in created.out_fds:  # the PTY master: one fd for both
                stdin = outs.index(created.stdin_fd)
            else:
                outs.append(created.stdin_fd)
                stdin = len(outs) - 1
        streams = ",".join(created.out_fds[fd] for fd in outs if fd in created.out_fds)
        record = "\0".join(
            str(x)
            for x in (
                created.pid,
                int(cfg.tty),
                stdin,
                streams,
                cfg.log_max_size,
                cfg.log_max_files,
                cfg.log_path,
                cfg.socket_path,
                shim.created_at,
            )
        )
        fds = [listener.fileno(), devnull, shim_log, *outs]
        chan.sendmsg([record.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _pack_fds(fds))])
    except BaseException as exc:
        if driver.created_pid:  # created, but cannot be served: remove it again
            try:
                os.kill(driver.created_pid, signal.SIGKILL)
                driver.call("delete", ["--force", cfg.container_id], force=True)
            except (OSError, errors.SampanError):
                pass
        for path in (cfg.socket_path, cfg.state_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        reply.sendall(proto.encode(proto.error_reply(exc)))
        return DONE
    ready = {"ok": True, "pid": shim.shim_pid, "socket": cfg.socket_path}
    reply.sendall(proto.encode({**ready, "container_pid": created.pid}))
    return DONE


def _now_ns() -> int:
    import time

    return time.time_ns()


def _pack_fds(fds: list[int]) -> bytes:
    import array

    return array.array("i", fds).tobytes()


# ---------------------------------------------------------------- requests


def handle(shim: Shim, c: _Client, line: bytes) -> int:
    """Answer one request line (the handler child); returns the code for the shim."""
    cfg = ShimConfig(json.loads(shim.raw_config))
    try:
        req = json.loads(line)
        op = req.get("op") if isinstance(req, dict) else None
        work = _OPS.get(op) if isinstance(op, str) else None
        if work is None:
            raise errors.InvalidArgument(f"unknown shim request {op!r}")
        return work(shim, cfg, c, req)
    except errors.SampanError as exc:
        _send(c.sock, proto.error_reply(exc))
    except Exception as exc:  # a malformed request must not take the shim down
        _send(c.sock, proto.error_reply(errors.Internal(f"shim: {type(exc).__name__}: {exc}")))
    return DONE


def _status(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    _send(c.sock, {"ok": True, **state_of(shim, cfg)})
    return DONE


def _wait(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    return _status(shim, cfg, c, req) if shim.status == "stopped" else WAIT


def _start(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    if shim.status == "running":
        raise errors.NotModified("container already started")
    if shim.status != "created":
        raise errors.ContainerNotRunning(f"cannot start a container that is {shim.status}")
    RuntimeDriver(cfg, throwaway=True).call("start", [cfg.container_id])
    return STARTED


def _signal(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    sig = int(req.get("signal", signal.SIGTERM))
    if shim.status == "stopped":
        raise errors.ContainerNotRunning(f"container {cfg.container_id} is not running")
    if req.get("all"):
        driver = RuntimeDriver(cfg, throwaway=True)
        driver.call("kill", ["--all", cfg.container_id, str(sig)], sig=sig, all=True)
    else:
        os.kill(shim.pid, sig)
    _send(c.sock, {"ok": True})
    return DONE


def _resize(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    if not cfg.tty or not shim.out_fds:
        raise errors.Conflict("container has no terminal to resize")
    import fcntl
    import struct
    import termios

    size = struct.pack("HHHH", int(req["height"]), int(req["width"]), 0, 0)
    fcntl.ioctl(next(iter(shim.out_fds)), termios.TIOCSWINSZ, size)
    _send(c.sock, {"ok": True})
    return DONE


def _close_stdin(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    return CLOSE_STDIN


def _attach(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    bits = A_STDIN if req.get("stdin") and shim.stdin_fd >= 0 else 0
    bits |= A_STDOUT if req.get("stdout", True) else 0
    bits |= A_STDERR if req.get("stderr", True) else 0
    bits |= A_CLOSE_STDIN if req.get("close_stdin") else 0
    return ATTACH | bits


def _delete(shim: Shim, cfg: ShimConfig, c: _Client, req: dict[str, Any]) -> int:
    force = bool(req.get("force"))
    if shim.status in ("running", "created") and not force:
        raise errors.ContainerRunning(
            f"cannot delete container {cfg.container_id}: it is {shim.status}"
        )
    return DELETE | (FORCE if force else 0)


_OPS = {
    "status": _status,
    "wait": _wait,
    "start": _start,
    "signal": _signal,
    "resize": _resize,
    "close_stdin": _close_stdin,
    "attach": _attach,
    "delete": _delete,
}


# ---------------------------------------------------------------- after a change


def answer(shim: Shim, clients: list[_Client], save: bool) -> int:
    """Save state.json (with ``save``), then send the state to ``clients`` (the answerer)."""
    cfg = ShimConfig(json.loads(shim.raw_config))
    state = state_of(shim, cfg)
    if save:
        try:
            save_state(cfg, state)
        except OSError as exc:  # the waiters get their answer all the same
            os.write(2, f"sampan-shim: state.json: {exc}\n".encode())
    for c in clients:
        _send(c.sock, {"ok": True, **state})
    return DONE


def finish_delete(shim: Shim, c: _Client, force: bool) -> int:
    """The runtime's delete of a stopped container: DONE (the shim answers, then exits), or
    FAILED (the error answered here) when the runtime refused."""
    cfg = ShimConfig(json.loads(shim.raw_config))
    try:
        cli = ["--force"] if force else []
        RuntimeDriver(cfg, throwaway=True).call("delete", [*cli, cfg.container_id], force=force)
    except errors.NotFound:
        pass
    except errors.SampanError as exc:
        _send(c.sock, proto.error_reply(exc))
        return FAILED
    return DONE
