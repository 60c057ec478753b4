"""A rehearsal of the shim's life, run once in the fork server before it forks any shim.

Every shim is forked from the fork server and shares its pages until it writes them.  The
first run of any Python code writes pages that later runs do not: 3.11 quickens a function's
bytecode in place after a few calls, fills the type attribute cache, builds the shared keys of
an instance dictionary, grows freelists.  Done once in the fork server, before ``gc.freeze()``,
those writes are shared by every shim instead of repeated in each (measured: ~150 KiB less
private memory per shim, PSS 1.57 -> 1.41 MB with 10 running containers).

The rehearsal is a real shim with a stand-in runtime (a shell script shaped like runc): setup
with its creator child, then a client drives the loop: status, wait, attach, start, output on
both streams, a bad request, signal, kill --all, the exit, delete.  Its files live in a
temporary directory that is removed; its processes are reaped.  If anything fails the fork
server goes on without it (the shims are merely larger).
"""

from __future__ import annotations

import os
import signal

from sampan.runtime.shim import Shim

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType

# runc's argument shape: --log L --log-format json <command> ...; the stand-in pid 1 waits on
# a fifo for "start", writes a line on each stream, then sleeps until "kill" signals it
_RUNTIME = """#!/bin/sh
state=$(dirname "$2")
case "$5" in
create) mkfifo "$state/go"
        (read x < "$state/go"; echo rehearsal; echo rehearsal >&2; exec sleep 30) &
        echo $! > "$9" ;;
start) echo start > "$state/go" ;;
kill) kill -TERM "$(cat "$state/init.pid")" ;;
esac
"""
_BASE = "/tmp/.shim-rehearsal-"
_TIMEOUT = 5  # seconds for the whole rehearsal (it takes ~0.1 s)


def rehearse() -> bool:
    """Run the rehearsal in this process; True if it went through.  Leaves this process as
    it found it: stdio, SIGCHLD, not a subreaper, no children, no files."""
    import time

    from sampan._sys.reaper import set_child_subreaper

    _remove_stale(time.time() - 60)  # left by a fork server killed while it rehearsed
    work = f"{_BASE}{os.getpid()}-{time.monotonic_ns()}"
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    old_chld = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    old_alrm = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(_TIMEOUT)
    done = False
    try:
        os.mkdir(work, 0o700)
        runtime = f"{work}/runtime"
        fd = os.open(runtime, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        os.write(fd, _RUNTIME.encode())
        os.close(fd)
        done = _rehearse(work, runtime)
    except Exception:
        done = False
    finally:
        signal.alarm(0)
        if not done:
            _end_children()
        for target, fd in enumerate(saved):
            os.dup2(fd, target)
            os.close(fd)
        set_child_subreaper(False)
        signal.signal(signal.SIGALRM, old_alrm)
        signal.signal(signal.SIGCHLD, old_chld)
        _remove(work)
    return done


def _rehearse(work: str, runtime: str) -> bool:
    import _socket
    import json

    raw = {"container_id": "rehearsal", "bundle": work, "runtime": runtime, "state_dir": work}
    shim = Shim(json.dumps({**raw, "log_path": f"{work}/log"}).encode())
    launcher, reply = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    ok = shim.setup(reply.detach())
    launcher.close()
    if not ok:
        return False
    client = os.fork()
    if client == 0:  # pragma: no cover - child
        code = 1
        try:
            signal.alarm(0)
            _client(f"{work}/shim.sock")
            code = 0
        finally:
            os._exit(code)
    try:
        shim.serve()  # until the client's delete
    finally:
        shim.close()
    try:  # the shim's loop reaps every child of ours, the client too
        _, status = os.waitpid(client, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return False
    except ChildProcessError:
        pass
    return shim.status == "stopped"


def _client(path: str) -> None:
    """Drive the shim through its requests (in a child of the rehearsal)."""
    from sampan import errors
    from sampan.runtime.shimproto import ShimClient, connect_unix, encode, read_frames

    client = ShimClient(path, timeout=_TIMEOUT)
    try:
        client.status()
        waiter = connect_unix(path, _TIMEOUT)
        waiter.sendall(encode({"op": "wait"}))
        stream = client.attach(stdin=False)
        stream.settimeout(_TIMEOUT)
        client.start()
        try:
            client.call("rehearse")  # an unknown request: its error answer
        except errors.InvalidArgument:
            pass
        client.signal(0)
        buf, seen = bytearray(), set[int]()
        while seen != {1, 2}:  # a line on each stream, in frames
            chunk = stream.recv(4096)
            if not chunk:
                break
            buf += chunk
            seen.update(kind for kind, _ in read_frames(buf))
        client.signal(signal.SIGTERM, all=True)
        waiter.recv(4096)
        while stream.recv(4096):  # the shim ends the stream at the exit
            pass
        client.status()
    finally:
        client.delete(force=True)  # whatever happened: the rehearsal's loop ends


def _end_children() -> None:
    """After a failed rehearsal: kill and reap what is left of it (our children; as a
    subreaper, their orphans become ours too, hence the rounds)."""
    me = str(os.getpid())
    for _ in range(5):
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] == me:
                            children.append(int(entry))
                except (OSError, IndexError):
                    continue
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("shim rehearsal timed out")


def _remove_stale(before: float) -> None:
    base, prefix = os.path.split(_BASE)
    try:
        names = [n for n in os.listdir(base) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        try:
            if os.lstat(f"{base}/{name}").st_mtime < before:
                _remove(f"{base}/{name}")
        except OSError:
            pass


def _remove(work: str) -> None:
    try:
        names = os.listdir(work)
    except OSError:
        return
    for name in names:
        try:
            os.unlink(f"{work}/{name}")
        except OSError:
            pass
    try:
        os.rmdir(work)
    except OSError:
        pass
