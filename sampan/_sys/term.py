"""Terminals: open a PTY pair inside a devpts instance, make it the controlling terminal,
and pass file descriptors over unix sockets (SCM_RIGHTS, as runc's console socket does)."""

from __future__ import annotations

import array
import fcntl
import os
import socket
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


def send_fd(sock: socket.socket, fd: int, name: str) -> None:
    socket.send_fds(sock, [name.encode()], [fd])


def recv_fd(sock: socket.socket) -> tuple[int, str]:
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError(0, "no file descriptor received")
    return fds[0], msg.decode(errors="replace")
