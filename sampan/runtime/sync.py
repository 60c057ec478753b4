"""The parent/child protocol of ``create``: one SOCK_SEQPACKET socketpair, one JSON object per
packet (``{"type": ..., ...}``), so message boundaries need no framing.

::

    parent (runtime: create / run / exec)          child (container init)
    ─────────────────────────────────────          ──────────────────────
    fork  ────────────────────────────────────────▶ wait for GO
    GO  ──────────────────────────────────────────▶ join/unshare the user namespace
    cgroup: create, set; v1: open its tasks files   (runs meanwhile: namespaces, mounts)
    (v2: add(child pid): the first move of a
    process costs an RCU grace period, ~10 ms)
    CGROUP_DONE + v1 tasks fds ···················▶ awaited before the cgroup namespace, the
                                                    cgroup mount, the pid-ns fork and CREATED
                                                    (received early, it is kept); v1: write
                                                    "0" to each fd: a thread moving itself
                                                    skips the kernel's global lock (and its
                                                    grace period)
                     ◀──────────────────────────── USERNS      (only for a new user ns)
    write uid_map, setgroups, gid_map; idmapped
    mounts: open_tree + MOUNT_ATTR_IDMAP with
    the child's user ns (needs host privilege)
    USERNS_DONE {"idmap"} + mount fds ────────────▶ (kept for step 6: move_mount)
                                                    (new user AND pid namespace: unshare the
                                                    pid ns now, so the user ns owns it; fork;
                     ◀──────────────────────────── CHILD {"pid"}  the grandchild goes on as
    the init is now that pid                        the init, this child exits)
                                                    join/unshare the other namespaces,
                                                    hostname, mounts, /dev
                     ◀──────────────────────────── HOOKS       (only if prestart/createRuntime)
    run prestart + createRuntime hooks
    HOOKS_DONE ───────────────────────────────────▶ createContainer hooks, pivot_root, masked
                                                    and read-only paths, sysctl, console (PTY
                                                    master to the console socket), rlimits,
                                                    executable lookup
                     ◀──────────────────────────── CREATED
    write state.json and the pid file; return       block opening exec.fifo for writing
    start: open exec.fifo for reading ············▶ (unblocks) startContainer hooks, user,
                                                    capabilities, seccomp, execve
                     ◀──────────────────────────── ERROR {"message"}  at any step, then exit 1

The parent treats EOF before CREATED as the child's death and reports its exit status.
"""

from __future__ import annotations

import _socket
import struct

from sampan.errors import Internal
from sampan.oci import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GO = "go"
USERNS = "userns"
USERNS_DONE = "userns_done"
HOOKS = "hooks"
HOOKS_DONE = "hooks_done"
CREATED = "created"
CHILD = "child"
CGROUP_DONE = "cgroup_done"
ERROR = "error"


def pair() -> tuple[_socket.socket, _socket.socket]:
    """(parent end, child end); both close-on-exec.  ``_socket`` rather than :mod:`socket`,
    whose IntEnums cost an ``enum`` import on every container start."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def send(sock: _socket.socket, kind: str, fds: list[int] | None = None, **fields: Any) -> None:
    """Send one message; ``fds`` travel with it (SCM_RIGHTS) and arrive as ``msg["_fds"]``."""
    data = jsoncodec.dumps({"type": kind, **fields}).encode()
    if fds:
        rights = struct.pack(f"{len(fds)}i", *fds)
        sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    else:
        sock.send(data)


def recv(sock: _socket.socket) -> dict[str, Any] | None:
    """The next message, or None at EOF."""
    data, ancillary, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * 64))
    if not data:
        return None
    msg: dict[str, Any] = jsoncodec.loads(data)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            n = len(payload) // 4
            fds.extend(struct.unpack(f"{n}i", payload[: 4 * n]))
    if fds:
        msg["_fds"] = fds
    return msg


#: the child's CGROUP_DONE once received: [] before, then the message
_cgroup_done: list[dict[str, Any]] = []


def expect(sock: _socket.socket, kind: str) -> dict[str, Any]:
    """Receive a message of type ``kind`` (the child's side: anything else is fatal, except a
    CGROUP_DONE that arrives first, which is kept for :func:`await_cgroup`)."""
    while True:
        msg = recv(sock)
        if msg is not None and msg.get("type") == CGROUP_DONE and kind != CGROUP_DONE:
            _cgroup_done.append(msg)
            continue
        if msg is None or msg.get("type") != kind:
            raise Internal(f"sync: expected {kind!r} from the runtime, got {msg!r}")
        return msg


def await_cgroup(sock: _socket.socket) -> list[int]:
    """Wait (once) until the parent has made the cgroup; return the fds CGROUP_DONE carried
    (the cgroup's ``tasks`` files: the child writes ``0`` to move itself in), the first time
    only: ``[]`` afterwards, and when the parent placed the child itself."""
    if not _cgroup_done:
        _cgroup_done.append(expect(sock, CGROUP_DONE))
    msg = _cgroup_done[0]
    fds: list[int] = msg.pop("_fds", [])
    return fds
