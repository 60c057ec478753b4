"""A container's state directory and its explicit state machine.

``<root>/<id>/`` holds ``state.json`` (what ``state`` prints plus the runtime's own fields), a
copy of the bundle's ``config.json`` as created (for exec) and, between create and start,
``exec.fifo`` (the init blocks opening it for writing; ``start``
opens it for reading).  Status::

    creating ──▶ created ──▶ running ◀──▶ paused
        │           │           │           │
        └───────────┴───────────┴───────────┴──▶ stopped (the init exited) ──▶ (deleted)

The stored status is corrected against the kernel on every read: a container whose init is
gone (or whose pid now belongs to another process, told apart by its start time) is stopped.
Illegal transitions raise ``Conflict``.
"""

from __future__ import annotations

import os
import time

from sampan.errors import Conflict, InvalidArgument, NoSuchContainer
from sampan.oci import jsoncodec
from sampan.oci.record import as_dict, field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import StrPath

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"

_ALLOWED: dict[str, tuple[str, ...]] = {
    CREATING: (CREATED, STOPPED),
    CREATED: (RUNNING, STOPPED),
    RUNNING: (PAUSED, STOPPED),
    PAUSED: (RUNNING, STOPPED),
    STOPPED: (),
}

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(container_id: str) -> None:
    if not container_id or not _ID_CHARS.issuperset(container_id) or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id format: {container_id!r}")


def pid_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@record
class State:
    id: str
    bundle: str
    pid: int = 0
    pid_start: int = 0
    status: str = CREATING
    created: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    oci_version: str = "1.2.0"
    cgroups_path: str | None = None
    use_cgroups: bool = False
    seccomp_key: str = ""
    hooks: dict[str, Any] = field(default_factory=dict)  # poststop/poststart hooks as raw JSON

    def to_oci(self) -> dict[str, Any]:
        """The runtime-spec state object (what ``state`` prints)."""
        out: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid if self.status != STOPPED else 0,
            "bundle": self.bundle,
            "created": self.created,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    def alive(self) -> bool:
        return self.pid > 0 and pid_start_time(self.pid) == self.pid_start

    def move(self, status: str) -> None:
        if status not in _ALLOWED[self.status]:
            raise Conflict(f"container {self.id} is {self.status}: cannot make it {status}")
        self.status = status


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class StateDir:
    """``<root>/<id>``: made by :meth:`create`, removed by :meth:`remove`.  Paths are plain
    strings (pathlib costs milliseconds to import on every container start)."""

    def __init__(self, root: StrPath, container_id: str) -> None:
        check_id(container_id)
        self.root = os.fspath(root)
        self.id = container_id
        self.path = os.path.join(self.root, container_id)
        self.fifo = os.path.join(self.path, "exec.fifo")
        self.config = os.path.join(self.path, "config.json")  # the bundle's, as created
        self._state = os.path.join(self.path, "state.json")

    def create(self) -> None:
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise Conflict(f"container with id exists: {self.id}") from None

    def exists(self) -> bool:
        return os.path.exists(self._state)

    def load(self) -> State:
        try:
            with open(self._state) as f:
                raw = jsoncodec.loads(f.read())
        except FileNotFoundError:
            raise NoSuchContainer(self.id) from None
        st = State(**raw)
        if st.status != STOPPED and st.status != CREATING and not st.alive():
            st.status = STOPPED
        return st

    def save(self, st: State) -> None:
        tmp = f"{self._state}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(jsoncodec.dumps(as_dict(st)))
        os.rename(tmp, self._state)

    def remove(self) -> None:
        """Remove the directory (flat: state.json, exec.fifo, temporaries); shutil is not
        imported for this, it costs milliseconds."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(self.path, name))
            except IsADirectoryError:
                import shutil

                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


def list_ids(root: StrPath) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, "state.json")))
