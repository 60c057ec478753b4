"""Start ``sampand`` in the background when nothing answers on the default socket (root only).

The daemon runs as ``sys.executable -m sampan.daemon`` in its own session (``setsid``), its
stdin from /dev/null and its output appended to ``/var/log/sampand.log`` (or
``<data-root>/sampand.log`` when /var/log is not writable).  We wait for ``/_ping`` to answer,
up to ``timeout`` seconds, and say on stderr what we did.  If another CLI started a daemon at the
same moment, ours exits (the data root is locked) and the other one answers: that is success too.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from sampan import errors
from sampan.client.address import Address

DEFAULT_DATA_ROOT = "/var/lib/sampan"


def log_path(data_root: str = DEFAULT_DATA_ROOT) -> str:
    if os.access("/var/log", os.W_OK):
        return "/var/log/sampand.log"
    return os.path.join(data_root, "sampand.log")


def _answers(address: Address) -> bool:
    from sampan.client.client import Client
    from sampan.client.transport import SocketTransport

    try:
        Client(SocketTransport(address, timeout=2.0)).ping()
    except errors.SampanError:
        return False
    return True


def autostart(
    address: Address,
    *,
    stderr: TextIO,
    daemon_args: list[str] | None = None,
    log: str = "",
    timeout: float = 10.0,
) -> int:
    """Start a daemon for ``address``; return its pid once ``/_ping`` answers."""
    import subprocess

    log = log or log_path()
    os.makedirs(os.path.dirname(log), exist_ok=True)
    args = daemon_args if daemon_args is not None else []
    if not address.is_default and "-H" not in args:
        args = [*args, "-H", str(address)]
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sampan.daemon", *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, env=env, cwd="/",
            )
    except OSError as exc:
        raise errors.from_oserror(exc, "start sampand") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(address):
            stderr.write(f"sampan: started sampand (pid {proc.pid}), log in {log}\n")
            stderr.flush()
            return proc.pid
        status = proc.poll()
        if status is not None:
            if _answers(address):  # another sampan started one first
                return 0
            raise errors.Unavailable(f"sampand exited with status {status} at start; see {log}")
        time.sleep(0.05)
    raise errors.Unavailable(f"sampand (pid {proc.pid}) did not answer on {address} within {timeout:g} s; see {log}")
