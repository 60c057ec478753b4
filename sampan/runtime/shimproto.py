"""The shim's socket protocol, and the blocking client the daemon uses.

One unix stream socket per shim (``<state_dir>/shim.sock``).  Each connection carries one
request, a JSON object on one line, and one JSON line back::

    -> {"op": "status"}
    <- {"ok": true, "status": "running", "pid": 4242, "exit_code": null, ...}
    <- {"ok": false, "error": "container is not running", "kind": "ContainerNotRunning"}

Requests: ``status``; ``start``; ``wait`` (the answer comes when the container has exited);
``signal`` {signal, all}; ``resize`` {height, width}; ``close_stdin``; ``delete`` {force}
(runs the runtime's delete, answers, then the shim exits); ``attach`` {stdin, stdout, stderr,
close_stdin}: after ``{"ok": true, "tty": bool}`` the connection becomes a stream.  Shim to
client: raw bytes with a TTY, else frames with Docker's 8-byte header (stream 1 stdout,
2 stderr; 3 bytes zero; big-endian length).  Client to shim: raw stdin bytes; a half-close ends
stdin when ``close_stdin`` was asked.  The shim closes the stream when the container exits.

``kind`` names a class of ``sampan.errors``, so errors cross the socket unchanged.
"""

from __future__ import annotations

import json
import os
import socket
import struct

from sampan import errors

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    from typing import Any

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxI")
MAX_SUN_PATH = 107


def frame(stream: int, data: bytes) -> bytes:
    return _HEADER.pack(stream, len(data)) + data


def read_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete frames off the front of ``buf``."""
    out = []
    while len(buf) >= 8:
        stream, size = _HEADER.unpack_from(buf)
        if len(buf) < 8 + size:
            break
        out.append((stream, bytes(buf[8 : 8 + size])))
        del buf[: 8 + size]
    return out


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def error_reply(exc: BaseException) -> dict[str, Any]:
    kind = type(exc).__name__ if isinstance(exc, errors.SampanError) else "Internal"
    return {"ok": False, "error": str(exc) or kind, "kind": kind}


def raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    """Return an ok reply; raise the sampan error an error reply names."""
    if reply.get("ok"):
        return reply
    cls = getattr(errors, str(reply.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.SampanError)):
        cls = errors.Internal
    message = str(reply.get("error", "shim error"))
    # the message is already final: bypass subclass constructors that would reword it
    exc = cls.__new__(cls)
    errors.SampanError.__init__(exc, message)
    raise exc


def connect_unix(path: str, timeout: float | None = None) -> socket.socket:
    """Connect to a unix socket, even one whose path is longer than sun_path allows."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        if len(path.encode()) <= MAX_SUN_PATH:
            sock.connect(path)
        else:
            dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
            finally:
                os.close(dfd)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix(sock: socket.socket, path: str) -> None:
    if len(path.encode()) <= MAX_SUN_PATH:
        sock.bind(path)
        return
    dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
    try:
        sock.bind(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
    finally:
        os.close(dfd)


def read_line(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            raise errors.Internal("shim reply too long")
    return bytes(buf)


class ShimClient:
    """Blocking client of one shim.  A connection per call; safe to use from threads."""

    def __init__(self, socket_path: str, *, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _connect(self, timeout: float | None) -> socket.socket:
        try:
            return connect_unix(self.socket_path, timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise errors.Unavailable(f"shim at {self.socket_path} is not running") from exc
        except OSError as exc:
            raise errors.from_oserror(exc, f"connect to shim {self.socket_path}") from exc

    def call(self, op: str, timeout: float | None = -1.0, **args: Any) -> dict[str, Any]:
        sock = self._connect(self.timeout if timeout == -1.0 else timeout)
        try:
            sock.sendall(encode({"op": op, **args}))
            line = read_line(sock)
        except TimeoutError as exc:
            raise errors.Unavailable(f"shim at {self.socket_path}: {op} timed out") from exc
        except OSError as exc:
            raise errors.from_oserror(exc, f"shim {op}") from exc
        finally:
            sock.close()
        if not line:
            raise errors.Unavailable(f"shim at {self.socket_path} closed the connection ({op})")
        reply: dict[str, Any] = json.loads(line)
        return raise_for(reply)

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def start(self) -> dict[str, Any]:
        return self.call("start", timeout=60.0)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the container has exited; returns its status (exit_code, signal...)."""
        return self.call("wait", timeout=timeout)

    def signal(self, sig: int, *, all: bool = False) -> None:
        self.call("signal", signal=int(sig), all=all)

    def resize(self, height: int, width: int) -> None:
        self.call("resize", height=height, width=width)

    def close_stdin(self) -> None:
        self.call("close_stdin")

    def delete(self, *, force: bool = False) -> dict[str, Any]:
        return self.call("delete", timeout=60.0, force=force)

    def attach(
        self,
        stdin: bool = False,
        *,
        stdout: bool = True,
        stderr: bool = True,
        close_stdin: bool = False,
    ) -> socket.socket:
        """A stream of the container's output that takes stdin: frames with Docker's 8-byte
        header, or raw bytes when the container has a TTY (``status()["tty"]``).

        Returns the connected socket (blocking, no timeout); the shim closes it when the
        container exits.  With ``close_stdin``, half-closing it closes the container's stdin.
        """
        sock = self._connect(self.timeout)
        try:
            request = {
                "op": "attach",
                "stdin": stdin,
                "stdout": stdout,
                "stderr": stderr,
                "close_stdin": close_stdin,
            }
            sock.sendall(encode(request))
            line = bytearray()
            while not line.endswith(b"\n"):  # byte by byte: the stream follows the reply
                b = sock.recv(1)
                if not b:
                    raise errors.Unavailable(f"shim at {self.socket_path} closed the attach")
                line += b
            raise_for(json.loads(line))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock


def read_state(state_dir: str) -> dict[str, Any] | None:
    """The shim's last recorded state (``state.json``), or None if there is none: what a
    restarted daemon reads before it reconnects to ``socket`` (or finds the exit recorded)."""
    try:
        with open(os.path.join(state_dir, "state.json")) as f:
            state: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise errors.Internal(f"read shim state in {state_dir}: {exc}") from exc
    return state
