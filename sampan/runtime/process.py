"""The parent side of starting a container's init (or an exec'd process): fork, put the child
in its cgroup, answer its requests (id maps, hooks) and wait for CREATED or ERROR.

The pid namespace is the one thing the parent sets: unshare(CLONE_NEWPID) (or setns to a
given one) changes only where the *next* child goes, so the parent forks and then returns its
own ``pid_for_children`` to where it was.  Every other namespace is made by the child: if the
parent unshared the mount namespace, the child's pivot_root would pivot the parent too.
"""

from __future__ import annotations

import _socket
import os
import time

from sampan._sys import ns, signals
from sampan.errors import InvalidConfig, SampanError
from sampan.oci import runtime as oci
from sampan.oci.record import field, record
from sampan.runtime import sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any


@record
class InitConfig:
    """What the parent hands the init it forks (see ``init.run_init``)."""

    spec: oci.Spec
    sync_sock: _socket.socket
    fifo_fd: int = -1  # O_PATH fd of exec.fifo; -1: start at once after CREATED (exec)
    console_sock: _socket.socket | None = None
    stdio: tuple[int, int, int] | None = None
    seccomp_bpf: bytes | None = None
    seccomp_flags: int = 0
    no_pivot: bool = False
    exec_mode: bool = False  # joining a running container: no rootfs steps
    join: dict[str, int] = field(default_factory=dict)  # exec: OCI ns type -> fd to setns
    pidns_in_child: bool = False  # new user + pid ns: unshare pid after user, then fork
    cgroup_wait: bool = False  # the parent sends CGROUP_DONE after GO
    cgroupns_pending: bool = False  # a new cgroup namespace, made once in the cgroup
    idmap_fds: dict[int, int] = field(default_factory=dict)  # mount index -> detached mount
    preserve_fds: int = 0
    state: dict[str, object] = field(default_factory=dict)


class ChildFailed(SampanError):
    """Raised in the parent with the child's one-line error (the class of the child's error is
    lost across the socket; callers treat it as the error of create)."""


def _fork_in_pidns(pidns_path: str | None, new_pidns: bool, child: Callable[[], None]) -> int:
    own = os.open("/proc/thread-self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC) if (new_pidns or pidns_path) else -1
    try:
        if pidns_path:
            fd = os.open(pidns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ns.setns(fd, ns.CLONE_NEWPID)
            finally:
                os.close(fd)
        elif new_pidns:
            ns.unshare(ns.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            try:
                child()
            finally:
                os._exit(1)
        return pid
    finally:
        if own >= 0:
            ns.setns(own, ns.CLONE_NEWPID)
            os.close(own)


def _write_id_maps(pid: int, linux: oci.Linux) -> None:
    def fmt(maps: tuple[oci.IDMapping, ...]) -> str:
        return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)

    try:
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(fmt(linux.uid_mappings))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(fmt(linux.gid_mappings))
    except OSError as exc:
        raise InvalidConfig("linux.uidMappings", f"cannot write id maps: {exc.strerror}") from None


def _idmapped_mounts(pid: int, spec: oci.Spec) -> tuple[list[int], list[int]]:
    """Detached, idmapped clones of the ``idmap`` bind mounts' sources, for the child to move
    into place: (mount indexes, mount fds).  Made here because idmapping needs privilege over
    the source's filesystem, which the child (already in its user namespace) lacks."""
    from sampan._sys.mount import MS_REC
    from sampan._sys.proc import idmap_mount, open_tree_clone

    wanted = [(i, mnt) for i, mnt in enumerate(spec.mounts) if mnt.idmap]
    if not wanted:
        return [], []
    userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    indexes: list[int] = []
    fds: list[int] = []
    try:
        for i, mnt in wanted:
            try:
                fd = open_tree_clone(mnt.source, recursive=bool(mnt.flags & MS_REC))
            except OSError as exc:
                raise InvalidConfig(f"mounts[{i}].source", f"open_tree {mnt.source}: {exc.strerror}") from None
            fds.append(fd)
            indexes.append(i)
            try:
                idmap_mount(fd, userns, recursive=mnt.idmap_recursive)
            except OSError as exc:
                raise InvalidConfig(f"mounts[{i}].options", f"idmap {mnt.source}: {exc.strerror} (filesystem without idmap support?)") from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(userns)
    return indexes, fds


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signals.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def spawn(
    cfg: InitConfig,
    *,
    on_pid: Callable[[int], None] | None = None,
    add_to_cgroup: Callable[[int], list[int]] | None = None,
    after_go: Callable[[], None] | None = None,
    run_hooks: Callable[[], None] | None = None,
    pidns_path: str | None = None,
    new_pidns: bool = False,
) -> int:
    """Fork the init described by ``cfg``, drive it to CREATED and return its pid.

    ``on_pid`` runs before GO; ``add_to_cgroup`` after it, while the child sets up: it makes
    the cgroup and either places the child there or returns fds the child moves itself in
    with (see ``CgroupManager.open_join_fds``); CGROUP_DONE carries them, and this function
    closes them.  ``after_go`` runs then too (bookkeeping the child does not wait for);
    ``run_hooks`` answers HOOKS.  On any failure the child is killed and reaped and the error
    is raised here.

    The child imports the init's modules itself (rootfs, mounts, capabilities, seccomp: about
    1 ms), while the parent makes the cgroup: the parent has no use for them.
    """
    parent_sock, child_sock = sync.pair()
    cfg.sync_sock = child_sock

    def child() -> None:
        parent_sock.close()
        from sampan.runtime import init

        init.main(cfg)

    user = cfg.spec.linux.namespace("user")
    cfg.pidns_in_child = new_pidns and user is not None and not user.path and not cfg.exec_mode
    if cfg.pidns_in_child:
        new_pidns = False
    cfg.cgroup_wait = add_to_cgroup is not None
    pid = _fork_in_pidns(pidns_path, new_pidns, child)
    intermediate = -1
    child_sock.close()
    if cfg.console_sock is not None:
        cfg.console_sock.close()
    try:
        if on_pid is not None:
            on_pid(pid)
        sync.send(parent_sock, sync.GO)
        if add_to_cgroup is not None:
            join_fds = add_to_cgroup(pid)
            try:
                sync.send(parent_sock, sync.CGROUP_DONE, fds=join_fds)
            finally:
                for fd in join_fds:
                    os.close(fd)
        if after_go is not None:
            after_go()
        while True:
            msg = sync.recv(parent_sock)
            if msg is None:
                _, status = os.waitpid(pid, 0)
                pid = -1
                raise ChildFailed(f"container init died during setup ({_describe(status)})")
            kind = msg["type"]
            if kind == sync.USERNS:
                _write_id_maps(pid, cfg.spec.linux)
                indexes, fds = _idmapped_mounts(pid, cfg.spec)
                try:
                    sync.send(parent_sock, sync.USERNS_DONE, fds=fds, idmap=indexes)
                finally:
                    for fd in fds:
                        os.close(fd)
            elif kind == sync.HOOKS:
                if run_hooks is not None:
                    run_hooks()
                sync.send(parent_sock, sync.HOOKS_DONE)
            elif kind == sync.CHILD:
                # the first child made the pid namespace and forked the init: reap it, follow
                # the init (our caller is its subreaper, or it is adopted by the system)
                intermediate, pid = pid, int(msg["pid"])
                os.waitpid(intermediate, 0)
                intermediate = -1
            elif kind == sync.CREATED:
                return pid
            elif kind == sync.ERROR:
                raise ChildFailed(str(msg.get("message", "unknown error")))
    except BaseException:
        for p in (pid, intermediate):
            if p > 0:
                _reap(p)
        raise
    finally:
        parent_sock.close()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128+n for signal n."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


_FORWARDED = (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1, signals.SIGUSR2, signals.SIGWINCH)


def wait_forwarding(pid: int, forward: tuple[int, ...] = _FORWARDED) -> int:
    """Wait for our child ``pid``, passing the listed signals on to it; return its exit code."""
    old: dict[int, Any] = {}

    def handler(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in forward:
        old[sig] = signals.set_handler(sig, handler)
    try:
        _, status = os.waitpid(pid, 0)
        return exit_code(status)
    finally:
        for sig, h in old.items():
            signals.set_handler(sig, h)


def wait_gone(pid: int, start: int, timeout: float = 5.0) -> bool:
    """Poll until ``pid`` (with start time ``start``) is gone; reap it if it is our child."""
    from sampan.runtime.state import pid_start_time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if pid_start_time(pid) != start:
            return True
        time.sleep(0.002)
    return False


def connect_console(path: str) -> socket.socket:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise InvalidConfig("--console-socket", f"cannot connect to {path}: {exc.strerror}") from None
    return sock
