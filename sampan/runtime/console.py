"""runc's console-socket protocol, and a local terminal for ``run -t`` without one.

The init opens a PTY in the container's devpts and sends the master over the unix socket
given as ``--console-socket`` (SCM_RIGHTS, one fd, the slave's path as the message).  A caller
that wants the terminal itself listens on a socket, or uses :func:`local_pair` and
:func:`proxy` to copy between its own stdin/stdout and the master until the process exits.
"""

from __future__ import annotations

import os
import select
import socket

from sampan._sys import term


def local_pair() -> tuple[socket.socket, socket.socket]:
    """(our end, the end handed to the init as its console socket)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def receive_master(sock: socket.socket) -> int:
    fd, _name = term.recv_fd(sock)
    return fd


def proxy(master: int, pid: int, stdin: int = 0, stdout: int = 1) -> int:
    """Copy stdin -> master and master -> stdout until ``pid`` exits; return its wait status."""
    import termios
    import tty

    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        try:
            rows, cols = os.get_terminal_size(stdin)
            term.set_size(master, rows, cols)
        except OSError:
            pass
    fds = [master, stdin]
    try:
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                _drain(master, stdout)
                return status
            ready, _, _ = select.select(fds, [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if fd == master:
                    if data:
                        os.write(stdout, data)
                elif data:
                    os.write(master, data)
                else:
                    fds.remove(stdin)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def _drain(master: int, stdout: int) -> None:
    while select.select([master], [], [], 0)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        os.write(stdout, data)
