"""The runtime as a Python API: what ``sampan-runtime``'s commands, the shim and the daemon
call, without exec'ing a CLI.

Lifecycle::

    pid = create(root, "web", bundle)     # init waits on exec.fifo; state "created"
    start(root, "web")                    # the user's program runs; state "running"
    state(root, "web")                    # runtime-spec state JSON (a dict)
    kill(root, "web", signal.SIGTERM)
    delete(root, "web")                   # after it stopped (or force=True)

``run`` is create + start + wait + delete for a process that is our child.
"""

from __future__ import annotations

import errno
import os
import select

from sampan._sys import signals
from sampan.errors import (
    Conflict,
    ContainerNotRunning,
    InvalidArgument,
    NotFound,
    from_oserror,
)
from sampan.oci import jsoncodec
from sampan.runtime import hooks as hooks_mod
from sampan.runtime import process as proc_mod
from sampan.runtime import spec as spec_mod
from sampan.runtime.state import (
    CREATED,
    PAUSED,
    RUNNING,
    STOPPED,
    State,
    StateDir,
    now_rfc3339,
    pid_start_time,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

    from _typeshed import StrPath

    from sampan.oci import runtime as oci

DEFAULT_ROOT = "/run/sampan-runtime"


def _cgroup_manager(st: State) -> Any:
    if not st.use_cgroups:
        return None
    from sampan.runtime.cgroups import new_manager

    return new_manager(st.cgroups_path, st.id)


def _wants_cgroups(linux: Any) -> bool:
    return linux.cgroups_path is not None or bool(linux.resources)


def create(
    root: StrPath,
    id: str,
    bundle: StrPath,
    *,
    pid_file: StrPath | None = None,
    console_socket: str | None = None,
    stdio: tuple[int, int, int] | None = None,
    no_pivot: bool = False,
    preserve_fds: int = 0,
    _console_sock: socket.socket | None = None,
    _spec: oci.Spec | None = None,
) -> int:
    """Create the container ``id`` from ``bundle``; return the init's pid (state "created").

    Nothing is left behind on failure: no state directory, cgroup, mount or process.
    """
    _sd, st, _mgr, _fd = _create(
        root, id, bundle, pid_file=pid_file, console_socket=console_socket, stdio=stdio,
        no_pivot=no_pivot, preserve_fds=preserve_fds, _console_sock=_console_sock, _spec=_spec,
    )
    return st.pid


def _create(
    root: StrPath,
    id: str,
    bundle: StrPath,
    *,
    pid_file: StrPath | None,
    console_socket: str | None,
    stdio: tuple[int, int, int] | None,
    no_pivot: bool,
    preserve_fds: int,
    _console_sock: socket.socket | None,
    _spec: oci.Spec | None,
    open_start: bool = False,
) -> tuple[StateDir, State, Any, int]:
    """:func:`create`, returning what ``run`` goes on with: the state directory, the state,
    the cgroup manager (None without cgroups) and, with ``open_start``, the read end of
    exec.fifo opened before the fork (else -1): the init then finds a reader at once after
    CREATED and runs on to exec while ``run`` records the state, instead of waiting for it."""
    from sampan.runtime import seccomp
    from sampan.runtime.process import InitConfig

    sd = StateDir(root, id)
    bundle = os.path.abspath(bundle)
    spec = _spec if _spec is not None else spec_mod.load(bundle)
    sd.create()
    mgr: Any = None
    start_fd = -1
    try:
        bpf = None
        if spec.linux.seccomp is not None:
            bpf = seccomp.program(spec.linux.seccomp, os.path.join(root, ".seccomp-cache"))
        os.mkfifo(sd.fifo, 0o622)
        os.chmod(sd.fifo, 0o622)  # mkfifo's mode went through the umask
        root_uid, root_gid = _host_root(spec.linux)
        if (root_uid, root_gid) != (0, 0):
            os.chown(sd.fifo, root_uid, root_gid)  # the init opens it as its (mapped) root
        fifo_fd = os.open(sd.fifo, os.O_PATH | os.O_CLOEXEC)
        if open_start:
            start_fd = os.open(sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        st = State(
            id=id, bundle=bundle, created=now_rfc3339(), annotations=spec.annotations,
            oci_version=spec.oci_version, cgroups_path=spec.linux.cgroups_path,
            use_cgroups=_wants_cgroups(spec.linux),
            hooks={"poststart": hooks_mod.to_json(spec.hooks.poststart), "poststop": hooks_mod.to_json(spec.hooks.poststop)},
        )
        console = _console_sock
        if spec.process.terminal and console is None:
            if console_socket is None:
                raise InvalidArgument("process.terminal is set: use --console-socket (or run) to receive the terminal")
            console = proc_mod.connect_console(console_socket)
        cfg = InitConfig(
            spec=spec, sync_sock=None,  # type: ignore[arg-type]  # set by spawn
            fifo_fd=fifo_fd, console_sock=console if spec.process.terminal else None, stdio=stdio,
            seccomp_bpf=bpf, seccomp_flags=seccomp.flags(spec.linux.seccomp or {}),
            no_pivot=no_pivot, preserve_fds=preserve_fds,
        )
        oci_state = {**st.to_oci(), "status": "creating"}
        cfg.state = oci_state

        def on_pid(pid: int) -> None:
            oci_state["pid"] = pid

        def into_cgroup(pid: int) -> list[int]:
            # after GO, while the child sets up its namespaces (outside the cgroup until
            # CGROUP_DONE, so the limits are in place before it joins); the cgroup modules
            # are imported here too, off the child's path
            nonlocal mgr
            from sampan.oci.defaults import with_default_device_rules

            mgr = _cgroup_manager(st)
            mgr.create()
            if spec.linux.resources:
                mgr.set(with_default_device_rules(spec.linux.resources, spec.linux.devices))
            fds: list[int] = mgr.open_join_fds()
            if not fds:
                mgr.add(pid)
            return fds

        def run_hooks() -> None:
            hooks_mod.run_all(spec.hooks.prestart, oci_state, "prestart")
            hooks_mod.run_all(spec.hooks.create_runtime, oci_state, "createRuntime")

        def after_go() -> None:
            sd.save(st)
            # exec uses the config as it was at create, whatever happens to the bundle later
            with open(os.path.join(bundle, "config.json"), "rb") as src, open(sd.config, "wb") as dst:
                dst.write(src.read())

        pidns = spec.linux.namespace("pid")
        try:
            pid = proc_mod.spawn(
                cfg, on_pid=on_pid, add_to_cgroup=into_cgroup if st.use_cgroups else None,
                after_go=after_go, run_hooks=run_hooks,
                pidns_path=pidns.path or None if pidns else None,
                new_pidns=pidns is not None and not pidns.path,
            )
        finally:
            os.close(fifo_fd)
            if console is not None and console is not _console_sock:
                console.close()
        st.pid = pid
        st.pid_start = pid_start_time(pid) or 0
        st.move(CREATED)
        sd.save(st)
        if pid_file is not None:
            _write_pid(pid_file, pid)
        return sd, st, mgr, start_fd
    except BaseException:
        if start_fd >= 0:
            os.close(start_fd)
        if mgr is not None:
            try:
                mgr.destroy()
            except Exception:
                pass
        sd.remove()
        raise


def _host_root(linux: Any) -> tuple[int, int]:
    """The host uid and gid of the container's root (0, 0 without a new user namespace)."""

    def lookup(maps: Any) -> int:
        for m in maps:
            if m.container_id <= 0 < m.container_id + m.size:
                return int(m.host_id - m.container_id)
        return 0

    return lookup(linux.uid_mappings), lookup(linux.gid_mappings)


def _write_pid(path: StrPath, pid: int) -> None:
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def start(root: StrPath, id: str) -> None:
    """Let a created container's init exec the user's program."""
    sd = StateDir(root, id)
    _start(sd, sd.load())


def _start(sd: StateDir, st: State, fd: int = -1) -> None:
    """Read the init's byte from exec.fifo (``fd``: its read end, already open; closed here)."""
    id = st.id
    if st.status != CREATED:
        if fd >= 0:
            os.close(fd)
        if st.status == STOPPED:
            raise ContainerNotRunning(f"cannot start a container that has stopped: {id}")
        raise Conflict(f"cannot start an already running container: {id}")
    if fd < 0:
        try:
            fd = os.open(sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise Conflict(f"cannot start an already running container: {id}") from None
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready and os.read(fd, 1):
                break
            if not st.alive():
                raise ContainerNotRunning(f"container {id}: init exited before start")
    finally:
        os.close(fd)
    os.unlink(sd.fifo)
    st.move(RUNNING)
    sd.save(st)
    poststart = hooks_mod.from_json(st.hooks.get("poststart", []))
    if poststart:
        hooks_mod.run_all(poststart, st.to_oci(), "poststart")


def state(root: StrPath, id: str) -> dict[str, Any]:
    return StateDir(root, id).load().to_oci()


def _container_pids(st: State) -> list[int]:
    """Every process of the container: its cgroup's, else those in its pid namespace."""
    mgr = _cgroup_manager(st)
    if mgr is not None:
        return list(mgr.pids())
    try:
        target = os.stat(f"/proc/{st.pid}/ns/pid").st_ino
    except OSError:
        return []
    if target == os.stat("/proc/self/ns/pid").st_ino:
        return [st.pid]
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == target:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def kill(root: StrPath, id: str, sig: int, all: bool = False) -> None:
    sd = StateDir(root, id)
    st = sd.load()
    if st.status == STOPPED:
        raise ContainerNotRunning(f"container not running: {id}")
    if all:
        mgr = _cgroup_manager(st)
        if mgr is not None:
            mgr.kill_all(sig)
            return
        for pid in _container_pids(st):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    _signal_init(st, sig)


def _signal_init(st: State, sig: int) -> None:
    from sampan._sys import ns

    try:
        pidfd = ns.pidfd_open(st.pid)
    except OSError:
        raise ContainerNotRunning(f"container not running: {st.id}") from None
    try:
        if pid_start_time(st.pid) != st.pid_start:
            raise ContainerNotRunning(f"container not running: {st.id}")
        ns.pidfd_send_signal(pidfd, sig)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            raise ContainerNotRunning(f"container not running: {st.id}") from None
        raise from_oserror(exc, f"signal {sig} to {st.id}") from None
    finally:
        os.close(pidfd)


def delete(root: StrPath, id: str, force: bool = False) -> None:
    """Remove a stopped (or created) container; ``force`` kills a running one first."""
    sd = StateDir(root, id)
    try:
        st = sd.load()
    except NotFound:
        if force and os.path.exists(sd.path):
            sd.remove()
            return
        raise
    if st.status in (RUNNING, PAUSED) and not force:
        raise Conflict(f"cannot delete container {id} that is not stopped: {st.status}")
    _delete(sd, st, _cgroup_manager(st))


def _delete(sd: StateDir, st: State, mgr: Any) -> None:
    """Kill what is left of ``st`` (forcibly), remove its cgroup, state and run poststop."""
    if st.status != STOPPED and st.pid > 0:
        if st.status == PAUSED and mgr is not None:
            mgr.thaw()
        if mgr is not None:
            mgr.kill_all(signals.SIGKILL)
        else:
            for pid in _container_pids(st):
                try:
                    os.kill(pid, signals.SIGKILL)
                except ProcessLookupError:
                    pass
        proc_mod.wait_gone(st.pid, st.pid_start)
    else:
        try:
            os.waitpid(st.pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if mgr is not None:
        mgr.destroy()
    poststop = hooks_mod.from_json(st.hooks.get("poststop", []))
    st.status = STOPPED
    sd.remove()
    for i, hook in enumerate(poststop):
        try:
            hooks_mod.run(hook, st.to_oci(), "poststop", i)
        except Exception:
            pass  # poststop failures are logged, never fatal (runtime-spec)


def pause(root: StrPath, id: str) -> None:
    sd = StateDir(root, id)
    st = sd.load()
    mgr = _cgroup_manager(st)
    if mgr is None:
        raise Conflict(f"container {id} has no cgroup to freeze")
    st.move(PAUSED)
    mgr.freeze()
    sd.save(st)


def resume(root: StrPath, id: str) -> None:
    sd = StateDir(root, id)
    st = sd.load()
    mgr = _cgroup_manager(st)
    if mgr is None:
        raise Conflict(f"container {id} has no cgroup to thaw")
    if st.status != PAUSED:
        raise Conflict(f"container {id} is not paused")
    mgr.thaw()
    st.status = RUNNING
    sd.save(st)


def update(root: StrPath, id: str, resources: dict[str, Any]) -> None:
    st = StateDir(root, id).load()
    if st.status == STOPPED:
        raise ContainerNotRunning(f"container not running: {id}")
    mgr = _cgroup_manager(st)
    if mgr is None:
        raise Conflict(f"container {id} has no cgroup to update")
    mgr.set(resources)


def ps(root: StrPath, id: str) -> list[int]:
    st = StateDir(root, id).load()
    if st.status == STOPPED:
        return []
    return sorted(_container_pids(st))


def run(
    root: StrPath,
    id: str,
    bundle: StrPath,
    *,
    pid_file: StrPath | None = None,
    console_socket: str | None = None,
    no_pivot: bool = False,
    keep: bool = False,
) -> int:
    """create + start + wait (+ delete unless ``keep``); return the exit code (128+n on signal n)."""
    from sampan._sys.caps import PR_SET_CHILD_SUBREAPER, prctl

    # the init may be forked by a helper child (new user + pid namespace): as the subreaper we
    # adopt it, and can wait for it
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    ours = theirs = None
    spec = spec_mod.load(bundle)
    if console_socket is None and spec.process.terminal:
        from sampan.runtime import console as console_mod

        ours, theirs = console_mod.local_pair()
    try:
        sd, st, mgr, start_fd = _create(
            root, id, bundle, pid_file=pid_file, console_socket=console_socket, stdio=None,
            no_pivot=no_pivot, preserve_fds=0, _console_sock=theirs, _spec=spec, open_start=True,
        )
    finally:
        if theirs is not None:
            theirs.close()
    pid = st.pid
    try:
        master = -1
        if ours is not None:
            from sampan.runtime import console as console_mod

            master = console_mod.receive_master(ours)
        _start(sd, st, start_fd)  # the state as create left it, not read back
        start_fd = -1
        if master >= 0:
            code = proc_mod.exit_code(console_mod.proxy(master, pid))
            os.close(master)
        else:
            code = proc_mod.wait_forwarding(pid)
    except BaseException:
        if start_fd >= 0:
            os.close(start_fd)
        delete(root, id, force=True)
        raise
    finally:
        if ours is not None:
            ours.close()
    if not keep:
        st.status = STOPPED  # its init is reaped
        _delete(sd, st, mgr)
    return code


def exec_process(
    root: StrPath,
    id: str,
    process: dict[str, Any],
    *,
    pid_file: StrPath | None = None,
    console_socket: str | None = None,
    stdio: tuple[int, int, int] | None = None,
    _console_sock: socket.socket | None = None,
) -> int:
    """Start ``process`` (an OCI process object) inside a running container; return its pid.

    The process is a child of the caller, which waits for it.
    """
    from sampan.oci import runtime as oci
    from sampan.runtime import seccomp
    from sampan.runtime.process import InitConfig

    sd = StateDir(root, id)
    st = sd.load()
    if st.status not in (RUNNING, CREATED):
        raise ContainerNotRunning(f"cannot exec in a stopped container: {id}")
    saved = sd.config if os.path.exists(sd.config) else os.path.join(st.bundle, "config.json")
    with open(saved) as f:
        raw = jsoncodec.loads(f.read())
    proc = spec_mod.process(process, "process")
    container = spec_mod.convert(raw, st.bundle)
    spec = oci.Spec(
        oci_version=container.oci_version, root_path="/", root_readonly=False, process=proc,
        linux=container.linux,
    )
    join: dict[str, int] = {}
    from sampan._sys.ns import NAMESPACES

    try:
        for entry in container.linux.namespaces:
            if entry.type == "pid":
                continue
            join[entry.type] = os.open(f"/proc/{st.pid}/ns/{NAMESPACES[entry.type][1]}", os.O_RDONLY | os.O_CLOEXEC)
        if pid_start_time(st.pid) != st.pid_start:
            raise ContainerNotRunning(f"container not running: {id}")
        console = _console_sock
        if proc.terminal and console is None:
            if console_socket is None:
                raise InvalidArgument("exec -t needs --console-socket")
            console = proc_mod.connect_console(console_socket)
        bpf = seccomp.program(container.linux.seccomp, os.path.join(root, ".seccomp-cache")) if container.linux.seccomp else None
        cfg = InitConfig(
            spec=spec, sync_sock=None,  # type: ignore[arg-type]
            console_sock=console if proc.terminal else None, stdio=stdio, seccomp_bpf=bpf,
            seccomp_flags=seccomp.flags(container.linux.seccomp or {}), exec_mode=True, join=join,
        )
        mgr = _cgroup_manager(st)

        def into_cgroup(pid: int) -> list[int]:
            fds: list[int] = mgr.open_join_fds()  # v1: the child moves itself (no global lock)
            if not fds:
                mgr.add(pid)
            return fds

        pid = proc_mod.spawn(
            cfg,
            add_to_cgroup=into_cgroup if mgr is not None else None,
            pidns_path=f"/proc/{st.pid}/ns/pid" if container.linux.namespace("pid") else None,
        )
    finally:
        for fd in join.values():
            os.close(fd)
    if pid_file is not None:
        _write_pid(pid_file, pid)
    return pid


def wait_exec(pid: int) -> int:
    return proc_mod.wait_forwarding(pid)


def list_containers(root: StrPath) -> list[dict[str, Any]]:
    from sampan.runtime.state import list_ids

    out = []
    for cid in list_ids(root):
        try:
            out.append(StateDir(root, cid).load().to_oci())
        except (NotFound, ValueError, OSError):
            continue
    return out
