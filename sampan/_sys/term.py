"""Terminals: open a PTY pair inside a devpts instance, make it the controlling terminal,
and pass file descriptors over unix sockets (SCM_RIGHTS, as runc's console socket does)."""

from __future__ import annotations

import _socket
import array
import fcntl
import os
import struct
import termios

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, str]:
    """Open a new PTY master from ``ptmx``; return (master fd, slave path)."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    buf = array.array("i", [0])
    fcntl.ioctl(master, TIOCGPTN, buf, True)
    return master, f"/dev/pts/{buf[0]}"


def set_controlling(fd: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_fd(sock: _socket.socket, fd: int, name: str) -> None:
    """Send ``fd`` with ``name`` as the message (SCM_RIGHTS), as runc's utils.SendFd does."""
    sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [fd]))])


def recv_fd(sock: _socket.socket) -> tuple[int, str]:
    """Receive one fd and its message; OSError when the peer sent none."""
    msg, ancdata, _flags, _addr = sock.recvmsg(4096, _socket.CMSG_SPACE(4))
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int(array.array("i", data[:4])[0]), msg.decode(errors="replace")
    raise OSError(0, "no file descriptor received")
