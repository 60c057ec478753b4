"""The client end of a hijacked attach/exec stream, and ``sampan attach``.

:func:`session` pumps bytes between the terminal (or pipes) and a
:class:`~sampan.client.hijack.Hijacked` connection, as the docker CLI's ``hijack.go``:

* with a TTY the stream is raw and the local terminal is put in raw mode (termios), restored on
  every way out; without one the daemon's output is demultiplexed from 8-byte frames
  (``[stream, 0, 0, 0, size]``, stream 1 = stdout, 2 = stderr);
* stdin EOF is a half-close (``shutdown(SHUT_WR)``) and output keeps flowing until the daemon
  closes; the detach keys (default ctrl-p ctrl-q, ``--detach-keys``) end the session early
  (they are also sent to the daemon, which enforces them too);
* SIGWINCH resizes the remote TTY (``POST .../resize?h=&w=``) and, with ``--sig-proxy``, the
  signals the CLI receives are sent to the container (``POST .../kill?signal=``).
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.hijack import Hijacked

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
STDOUT, STDERR = 1, 2
#: signals forwarded with --sig-proxy (docker forwards all but SIGCHLD, SIGPIPE, SIGURG, SIGWINCH)
PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCONT", "SIGTSTP")

ATTACH = Spec(
    "attach", "[OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a running container",
    Flag("detach-keys", kind="string", help="Override the key sequence for detaching a container"),
    Flag("no-stdin", help="Do not attach STDIN"),
    Flag("sig-proxy", default=True, help="Proxy all received signals to the process"),
    aliases=("container attach", "attach"), min_args=1, max_args=1,
)


def detach_sequence(keys: str) -> bytes:
    """docker's ``term.ToBytes``: ``ctrl-p,ctrl-q`` -> b"\\x10\\x11"; single characters as is."""
    out = bytearray()
    for key in keys.split(","):
        key = key.strip()
        if key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in special:
                out.append(special[c])
                continue
        elif len(key) == 1:
            out.append(ord(key))
            continue
        raise errors.InvalidArgument(f"invalid detach keys ({keys}) provided: Unknown character: '{key}'")
    return bytes(out)


class EscapeProxy:
    """Watches input for the detach sequence; bytes that may start it are held back."""

    def __init__(self, sequence: bytes) -> None:
        self.sequence = sequence
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send now, whether the sequence was typed)."""
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes((byte,))
            if self.sequence.startswith(candidate):
                if candidate == self.sequence:
                    self.held = b""
                    return bytes(out), True
                self.held = candidate
            else:
                out += candidate
                self.held = b""
        return bytes(out), False


class Demux:
    """Splits docker's multiplexed stream into (stream type, payload) pieces, across reads."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self.buf += data
        while len(self.buf) >= 8:
            size = int.from_bytes(self.buf[4:8], "big")
            if len(self.buf) < 8 + size:
                break
            kind, payload, self.buf = self.buf[0], self.buf[8 : 8 + size], self.buf[8 + size :]
            yield kind, payload


def binary_writer(stream: TextIO | BinaryIO) -> Callable[[bytes], None]:
    """Write bytes to a text stream's buffer (or decoded, for streams without one), flushed."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        try:
            stream.flush()
        except (OSError, ValueError):
            pass

        def write(data: bytes) -> None:
            buffer.write(data)
            buffer.flush()

        return write

    def write_text(data: bytes) -> None:
        stream.write(data.decode("utf-8", "replace"))  # type: ignore[call-overload]
        stream.flush()

    return write_text


def fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def isatty(stream: Any) -> bool:
    fd = fileno(stream)
    return fd is not None and os.isatty(fd)


def terminal_size(stream: Any) -> tuple[int, int] | None:
    """(rows, columns) of the terminal behind ``stream``, or None."""
    fd = fileno(stream)
    if fd is None:
        return None
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


@contextmanager
def raw_terminal(fd: int | None) -> Iterator[None]:
    """Put the terminal ``fd`` in raw mode for the block (a no-op for non-terminals)."""
    if fd is None or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _handler(callback: Callable[[int], None]) -> Callable[[int, Any], None]:
    def handle(signum: int, _frame: Any) -> None:
        callback(signum)

    return handle


@contextmanager
def signal_handlers(handlers: dict[str, Callable[[int], None]]) -> Iterator[None]:
    """Install ``{signal name: callback(signum)}`` for the block; restore the old handlers."""
    saved: dict[int, Any] = {}
    try:
        for name, callback in handlers.items():
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            saved[signum] = signal.signal(signum, _handler(callback))
        yield
    finally:
        for signum, old in saved.items():
            signal.signal(signum, old)


def session(
    stream: Hijacked,
    *,
    tty: bool,
    stdin: Any = None,
    stdout: Any,
    stderr: Any,
    detach_keys: str = "",
) -> bool:
    """Pump until the daemon closes the stream (False) or the user detaches (True)."""
    out = binary_writer(stdout)
    err = binary_writer(stderr)
    stdin_fd = fileno(stdin) if stdin is not None else None
    proxy = EscapeProxy(detach_sequence(detach_keys or DEFAULT_DETACH_KEYS)) if tty and stdin_fd is not None else None
    demux = None if tty else Demux()
    readers: list[Any] = [stream] if stdin_fd is None else [stream, stdin_fd]
    while True:
        if stream.pending():
            ready: list[Any] = [stream]
        else:
            ready = select.select(readers, [], [])[0]
        if stream in ready:
            data = stream.recv(65536)
            if not data:
                return False
            if demux is None:
                out(data)
            else:
                for kind, payload in demux.feed(data):
                    (err if kind == STDERR else out)(payload)
        if stdin_fd is not None and stdin_fd in ready:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            if not data:
                stream.close_write()
                readers.remove(stdin_fd)
                stdin_fd = None
                continue
            detached = False
            if proxy is not None:
                data, detached = proxy.feed(data)
            try:
                if data:
                    stream.sendall(data)
            except OSError:
                readers.remove(stdin_fd)
                stdin_fd = None
            if detached and proxy is not None:
                _detach(stream, proxy.sequence, out)
                return True


def _detach(stream: Hijacked, sequence: bytes, out: Callable[[bytes], None]) -> None:
    """Send the detach keys on so that the daemon ends the attach itself (a plain close would read
    as stdin EOF and end a ``StdinOnce`` container); show what comes until it closes (<= 2 s)."""
    import time

    try:
        stream.sendall(sequence)
    except OSError:
        return
    deadline = time.monotonic() + 2.0
    while (left := deadline - time.monotonic()) > 0:
        if not stream.pending() and not select.select([stream], [], [], left)[0]:
            return
        data = stream.recv(65536)
        if not data:
            return
        out(data)


def run_session(
    ctx: Context,
    stream: Hijacked,
    *,
    tty: bool,
    with_stdin: bool,
    detach_keys: str,
    resize: Callable[[int, int], None] | None,
    kill: Callable[[str], None] | None,
) -> bool:
    """:func:`session` with the terminal in raw mode, resize on SIGWINCH and the signal proxy."""
    handlers: dict[str, Callable[[int], None]] = {}
    if tty and resize is not None and isatty(ctx.stdout):

        def on_winch(_signum: int) -> None:
            size = terminal_size(ctx.stdout)
            if size:
                try:
                    resize(*size)
                except errors.SampanError:
                    pass

        handlers["SIGWINCH"] = on_winch
    if kill is not None:

        def on_signal(signum: int) -> None:
            try:
                kill(signal.Signals(signum).name)
            except errors.SampanError:
                pass

        handlers.update(dict.fromkeys(PROXIED, on_signal))
    stdin = ctx.stdin if with_stdin else None
    raw_fd = fileno(ctx.stdin) if tty and with_stdin else None
    with signal_handlers(handlers), raw_terminal(raw_fd):
        try:
            return session(stream, tty=tty, stdin=stdin, stdout=ctx.stdout, stderr=ctx.stderr, detach_keys=detach_keys)
        finally:
            stream.close()


def initial_resize(resize: Callable[[int, int], None], size: tuple[int, int] | None) -> None:
    """docker's ``initTtySize``: the first resize, retried while the process is not up yet."""
    if size is None:
        return
    import time

    for attempt in range(10):
        try:
            resize(*size)
            return
        except errors.SampanError:
            time.sleep(0.01 * (attempt + 1))


def resizer(ctx: Context, path: str) -> Callable[[int, int], None]:
    """``resize(rows, cols)`` for ``/containers/{id}`` or ``/exec/{id}``."""
    client = ctx.client()

    def resize(rows: int, cols: int) -> None:
        client.request("POST", f"{path}/resize", query={"h": rows, "w": cols}).read()

    return resize


def attach(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.client.hijack import hijack, send_early

    client = ctx.client()
    info = client.json("GET", f"/containers/{args[0]}/json")
    state = info.get("State") or {}
    cid = str(info.get("Id", args[0]))
    if not state.get("Running"):
        raise errors.Conflict("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise errors.Conflict("You cannot attach to a paused container, unpause it first")
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    with_stdin = bool(config.get("OpenStdin")) and not opts["no_stdin"]
    if tty and with_stdin and not isatty(ctx.stdin):
        raise errors.InvalidArgument("the input device is not a TTY")
    detach_keys = str(opts["detach_keys"])
    if detach_keys:
        detach_sequence(detach_keys)
    query = {"stream": True, "stdin": with_stdin, "stdout": True, "stderr": True, "detachKeys": detach_keys or None}
    # the exit status comes from a wait registered before the stream (as the docker CLI does): the
    # stream can end before the daemon has recorded the exit, so inspecting afterwards may race
    waiter = send_early(client, "POST", f"/containers/{cid}/wait", query={"condition": "not-running"})
    try:
        stream = hijack(client, "POST", f"/containers/{cid}/attach", query=query)
    except BaseException:
        waiter.close()
        raise
    resize = resizer(ctx, f"/containers/{cid}")
    if tty and isatty(ctx.stdout):
        initial_resize(resize, terminal_size(ctx.stdout))
    kill = None
    if opts["sig_proxy"] and not tty:

        def kill(name: str) -> None:
            client.request("POST", f"/containers/{cid}/kill", query={"signal": name}).read()

    detached = run_session(ctx, stream, tty=tty, with_stdin=with_stdin, detach_keys=detach_keys, resize=resize, kill=kill)
    if detached:
        waiter.close()
        return 0
    result = waiter.json() or {}
    return int(result.get("StatusCode") or 0)
