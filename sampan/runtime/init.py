"""The container's init: what the forked child does, in order, until it becomes the user's
program.  It runs in Python after fork and before exec, so each step is small and the whole
path is one function per phase; any failure is sent to the parent as one ERROR line.

The steps of :func:`run_init` and why they come in this order (after runc's
``standard_init_linux.go``):

 1. signals back to default, mask cleared, stray fds closed: Python ignores SIGPIPE and
    SIGXFSZ and the exec'd program would inherit that; fds of the caller must not leak in;
 2. stdio from the caller (dup2), then wait for GO.  The parent makes the cgroup meanwhile;
    we wait for CGROUP_DONE only where membership matters: before the cgroup namespace
    (rooted at the cgroup we are in), the cgroup mount, the pid-namespace fork (the init must
    be born inside) and CREATED.  On v1 we then move ourselves in through the ``tasks`` fds
    it carries (a thread moving itself skips the kernel's slow global lock); on v2 the parent
    has moved us;
 3. the user namespace first, alone: the parent writes the id maps, and the other namespaces
    are then owned by it;
 4. join namespaces by path, then unshare the new ones (the pid namespace was made by the
    parent, because it applies to children only); time offsets before anything runs in it;
 5. hostname and domainname (needs the new uts namespace);
 6. the rootfs: mounts, /dev (needs the mount namespace; before pivot_root, because sources
    are host paths);
 7. prestart/createRuntime hooks in the parent, then createContainer hooks here: the spec
    puts them after the mounts and before pivot_root;
 8. pivot_root: from here on, only the container's files are reachable;
 9. the console: the PTY comes from the container's own devpts (needs /dev/pts, after pivot);
10. sysctls, read-only and masked paths, read-only root (they write to /proc/sys and the
    tree, so read-only comes last);
11. rlimits, oom_score_adj, no_new_privileges (while still privileged enough to lower them);
12. look up the executable inside the rootfs, so that a missing binary fails ``create``;
13. CREATED to the parent; block opening exec.fifo until ``start`` (run: at once);
14. startContainer hooks;
15. seccomp now if no_new_privileges is off (loading it then needs CAP_SYS_ADMIN, which the
    next step drops);
16. drop privileges: bounding set, then setgroups/setgid/setuid with keep-caps, then the
    capability sets and ambient set; chdir to cwd as the user; umask;
17. seccomp now if no_new_privileges is on: as close to exec as possible, so the filter
    restricts the fewest of our own calls;
18. execve.
"""

from __future__ import annotations

import _socket
import os
import resource

from sampan._sys import caps as capsys
from sampan._sys import ns, signals
from sampan._sys import seccomp as sc
from sampan.errors import Internal, InvalidConfig, NotFound, SampanError
from sampan.runtime import rootfs, sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sampan.oci import runtime as oci
    from sampan.runtime.process import InitConfig

_IGNORED_BY_PYTHON = (signals.SIGPIPE, signals.SIGXFSZ, signals.SIGINT)


def main(cfg: InitConfig) -> None:
    """Run the steps; never returns (execve, or exit 1 after reporting the error)."""
    try:
        run_init(cfg)
    except SampanError as exc:
        _report(cfg, str(exc))
    except OSError as exc:
        _report(cfg, f"{exc.strerror or exc}" if not exc.filename else f"{exc.filename}: {exc.strerror}")
    except BaseException as exc:
        _report(cfg, f"init: {type(exc).__name__}: {exc}")
    os._exit(1)


def _report(cfg: InitConfig, message: str) -> None:
    try:
        sync.send(cfg.sync_sock, sync.ERROR, message=message)
    except OSError:
        # after start nobody listens on the socket any more: the container's stderr is left
        try:
            os.write(2, f"sampan-runtime init: {message}\n".encode())
        except OSError:
            pass


def _keep_fds(cfg: InitConfig) -> list[int]:
    keep = [0, 1, 2, cfg.sync_sock.fileno(), *range(3, 3 + cfg.preserve_fds)]
    if cfg.fifo_fd >= 0:
        keep.append(cfg.fifo_fd)
    if cfg.console_sock is not None:
        keep.append(cfg.console_sock.fileno())
    if cfg.stdio:
        keep.extend(cfg.stdio)
    keep.extend(cfg.join.values())
    return sorted(set(keep))


def _close_others(keep: list[int]) -> None:
    low = 3
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def run_init(cfg: InitConfig) -> None:
    spec = cfg.spec
    proc = spec.process
    # 1. signals, fds
    for sig in _IGNORED_BY_PYTHON:
        signals.set_handler(sig, signals.SIG_DFL)
    signals.clear_mask()
    _close_others([fd for fd in _keep_fds(cfg) if fd > 2])
    # 2. stdio, GO
    if cfg.stdio:
        for target, fd in enumerate(cfg.stdio):
            if fd != target:
                os.dup2(fd, target)
    sync.expect(cfg.sync_sock, sync.GO)
    # import now what later steps need: once the root moves (pivot_root, or setns into the
    # container's mount namespace for exec) the host's Python library is out of reach
    if proc.terminal:
        from sampan._sys import term  # noqa: F401
    if spec.hooks.start_container and not cfg.exec_mode:
        import subprocess  # noqa: F401

        from sampan.runtime import hooks
    # 3-4. namespaces
    if cfg.exec_mode:
        _enter_cgroup(cfg)  # first: the container's cgroup, then its namespaces
        _join_for_exec(cfg)
    else:
        _namespaces(cfg)
        # 5. hostname
        if spec.hostname:
            _socket.sethostname(spec.hostname)
        if spec.domainname:
            ns.setdomainname(spec.domainname)
        # 6-8. rootfs, hooks, pivot_root
        if spec.linux.namespace("mount"):
            rootfs.prepare(spec, before_cgroup=lambda: _join_cgroup(cfg), idmap_fds=cfg.idmap_fds)
        _join_cgroup(cfg)
        if spec.hooks.prestart or spec.hooks.create_runtime:
            sync.send(cfg.sync_sock, sync.HOOKS)
            sync.expect(cfg.sync_sock, sync.HOOKS_DONE)
        if spec.hooks.create_container:
            from sampan.runtime import hooks

            hooks.run_all(spec.hooks.create_container, cfg.state, "createContainer")
        rootfs.pivot(spec.root_path, no_pivot=cfg.no_pivot or not spec.linux.namespace("mount"))
    # 9. console
    if proc.terminal:
        _console(cfg)
    if not cfg.exec_mode:
        # 10. sysctl, read-only and masked paths, read-only root
        rootfs.finalize(spec)
        if spec.root_readonly:
            rootfs.make_root_readonly()
    # 11. rlimits, oom score, no_new_privileges
    for i, rl in enumerate(proc.rlimits):
        try:
            resource.setrlimit(rl.resource, (rl.soft, rl.hard))
        except (OSError, ValueError) as exc:
            raise InvalidConfig(f"process.rlimits[{i}]", f"setrlimit({rl.soft}, {rl.hard}): {exc}") from None
    if proc.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc.oom_score_adj))
        except OSError as exc:
            raise InvalidConfig("process.oomScoreAdj", f"cannot set {proc.oom_score_adj}: {exc.strerror}") from None
    if proc.no_new_privileges:
        capsys.prctl(capsys.PR_SET_NO_NEW_PRIVS, 1)
    # 12. executable
    path = find_executable(proc.args[0], proc.env_value("PATH"), proc.cwd)
    env = _environment(proc)
    # 13. CREATED, then wait for start
    sync.send(cfg.sync_sock, sync.CREATED, pid=os.getpid())
    if cfg.fifo_fd >= 0:
        fd = os.open(f"/proc/self/fd/{cfg.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        os.close(cfg.fifo_fd)
    # 14. startContainer hooks
    if spec.hooks.start_container and not cfg.exec_mode:
        from sampan.runtime import hooks

        hooks.run_all(spec.hooks.start_container, cfg.state, "startContainer")
    # 15. early seccomp
    if cfg.seccomp_bpf is not None and not proc.no_new_privileges:
        sc.load_filter(cfg.seccomp_bpf, cfg.seccomp_flags)
    # 16. privileges
    _drop_privileges(proc)
    try:
        os.chdir(proc.cwd)
    except OSError as exc:
        raise InvalidConfig("process.cwd", f"chdir to {proc.cwd}: {exc.strerror}") from None
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    # 17. late seccomp
    if cfg.seccomp_bpf is not None and proc.no_new_privileges:
        sc.load_filter(cfg.seccomp_bpf, cfg.seccomp_flags)
    # 18. exec
    cfg.sync_sock.close()
    os.execve(path, list(proc.args), env)


def _namespaces(cfg: InitConfig) -> None:
    linux = cfg.spec.linux
    user = linux.namespace("user")
    if user is not None:
        if user.path:
            _setns_path(user.path, ns.CLONE_NEWUSER, "user")
        else:
            ns.unshare(ns.CLONE_NEWUSER)
            sync.send(cfg.sync_sock, sync.USERNS, pid=os.getpid())
            done = sync.expect(cfg.sync_sock, sync.USERNS_DONE)
            cfg.idmap_fds = dict(zip(done.get("idmap", []), done.get("_fds", []), strict=True))
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        # changing credentials cleared "dumpable", which makes /proc/self/* (the exec fifo
        # handle) owned by the host's root, out of reach in the new user namespace
        capsys.prctl(capsys.PR_SET_DUMPABLE, 1)
    if cfg.pidns_in_child:
        _enter_cgroup(cfg)  # the init, forked next, is born there
        ns.unshare(ns.CLONE_NEWPID)
        pid = os.fork()
        if pid:
            sync.send(cfg.sync_sock, sync.CHILD, pid=pid)
            os._exit(0)
    flags = 0
    for entry in linux.namespaces:
        if entry.type in ("user", "pid"):
            continue
        flag = ns.NAMESPACES[entry.type][0]
        if entry.path:
            _setns_path(entry.path, flag, entry.type)
        elif entry.type == "cgroup" and cfg.cgroup_wait:
            cfg.cgroupns_pending = True  # made by _join_cgroup, inside the cgroup
        else:
            flags |= flag
    if flags:
        ns.unshare(flags)
    if linux.time_offsets:
        with open("/proc/self/timens_offsets", "w") as f:
            for clock, secs, nsecs in linux.time_offsets:
                f.write(f"{clock} {secs} {nsecs}\n")


def _enter_cgroup(cfg: InitConfig) -> None:
    """Wait until the parent has made the cgroup; move in through the ``tasks`` fds it sent
    (v1: this process is single-threaded, so its one thread is all of it), or find ourselves
    placed there by the parent (v2)."""
    if not cfg.cgroup_wait:
        return
    fds = sync.await_cgroup(cfg.sync_sock)
    try:
        for fd in fds:
            try:
                os.write(fd, b"0")
            except OSError as exc:
                raise Internal(f"join the container's cgroup: {exc.strerror}") from None
    finally:
        for fd in fds:
            os.close(fd)


def _join_cgroup(cfg: InitConfig) -> None:
    """Enter the cgroup (:func:`_enter_cgroup`), then make the cgroup namespace."""
    _enter_cgroup(cfg)
    if cfg.cgroupns_pending:
        ns.unshare(ns.CLONE_NEWCGROUP)
        cfg.cgroupns_pending = False


def _setns_path(path: str, flag: int, kind: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidConfig("linux.namespaces", f"{kind} namespace {path}: {exc.strerror}") from None
    try:
        ns.setns(fd, flag)
    except OSError as exc:
        raise InvalidConfig("linux.namespaces", f"join {kind} namespace {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _join_for_exec(cfg: InitConfig) -> None:
    order = ["user", "ipc", "uts", "network", "cgroup", "time", "mount"]
    for kind in order:
        fd = cfg.join.get(kind)
        if fd is None:
            continue
        ns.setns(fd, ns.NAMESPACES[kind][0])
        os.close(fd)
        if kind == "user":
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
    if "mount" in cfg.join:
        os.chdir("/")


def _console(cfg: InitConfig) -> None:
    from sampan._sys import mount as m
    from sampan._sys import term

    if cfg.console_sock is None:
        raise InvalidConfig("process.terminal", "a terminal was requested without a console socket")
    master, slave_path = term.open_pty("/dev/ptmx" if os.path.exists("/dev/ptmx") else "/dev/pts/ptmx")
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    size = cfg.spec.process.console_size
    if size:
        term.set_size(slave, *size)
    if not cfg.exec_mode and os.path.isdir("/dev"):
        if not os.path.lexists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        try:
            m.mount(slave_path, "/dev/console", "", m.MS_BIND)
        except OSError:
            pass
    term.send_fd(cfg.console_sock, master, slave_path)
    os.close(master)
    cfg.console_sock.close()
    cfg.console_sock = None
    os.setsid()
    term.set_controlling(slave)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def find_executable(name: str, path_env: str | None, cwd: str) -> str:
    """Look ``name`` up as execvp would, in the (already pivoted) container."""
    if "/" in name:
        full = name if name.startswith("/") else os.path.join(cwd, name)
        if not os.path.exists(full):
            raise NotFound(f'exec: "{name}": stat {name}: no such file or directory')
        if os.path.isdir(full) or not os.access(full, os.X_OK):
            raise InvalidConfig("process.args", f'exec: "{name}": permission denied')
        return full
    for directory in (path_env if path_env is not None else "/usr/local/bin:/usr/bin:/bin").split(":"):
        full = os.path.join(directory or ".", name)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    raise NotFound(f'exec: "{name}": executable file not found in $PATH')


def _environment(proc: oci.Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in proc.env:
        key, _, value = item.partition("=")
        env[key] = value
    if "HOME" not in env:
        env["HOME"] = _home(proc.user.uid)
    return env


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 5 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _drop_privileges(proc: oci.Process) -> None:
    caps = proc.capabilities
    own_bounding = capsys.bounding_set()
    if caps is not None:
        capsys.drop_bounding(caps.bounding & own_bounding)
    user = proc.user
    if caps is not None:
        capsys.prctl(capsys.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(user.additional_gids))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    if caps is not None:
        capsys.prctl(capsys.PR_SET_KEEPCAPS, 0)
        capsys.capset(caps.effective & own_bounding, caps.permitted & own_bounding, caps.inheritable & own_bounding)
        if caps.ambient:
            capsys.set_ambient(caps.ambient & caps.permitted & caps.inheritable)
