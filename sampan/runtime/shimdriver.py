"""How the shim drives the OCI runtime: a runc-compatible CLI, or sampan's runtime in-process.

Both take the same steps (create with the container's stdio, start, kill --all, delete); the
in-process calls run ``sampan.runtime.container`` in a forked helper, so that the runtime's
forks and namespace changes (it unshares the PID namespace in its parent) stay out of the
caller.  The callers are the shim's throwaway children (``shimtasks``), never the shim's own
process; the container's pid 1 ends up the shim's child either way: the shim is a child
subreaper.
"""

from __future__ import annotations

import json
import os
import signal
import socket

from sampan import errors
from sampan.runtime import shimproto as proto

TYPE_CHECKING = False  # typing is not imported at run time: the shim's memory is the budget
if TYPE_CHECKING:
    from typing import Any

DEFAULT_RUNTIME_ROOT = "/run/sampan-runtime"


class ShimConfig:
    """What the launcher sends (a JSON object) to start one shim."""

    def __init__(self, raw: dict[str, Any]) -> None:
        try:
            self.container_id = str(raw["container_id"])
            self.bundle = str(raw["bundle"])
            self.runtime = str(raw.get("runtime") or "sampan")
            self.runtime_root = str(raw.get("runtime_root") or "")
            self.state_dir = str(raw["state_dir"])
            self.log_path = str(raw["log_path"])
            self.log_max_size = int(raw.get("log_max_size", 10 << 20))
            self.log_max_files = int(raw.get("log_max_files", 3))
            self.tty = bool(raw.get("tty", False))
            self.stdin_open = bool(raw.get("stdin_open", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.InvalidArgument(f"shim config: {exc}") from exc
        base = self.state_dir.rstrip("/") or "/"
        self.socket_path = f"{base}/shim.sock"
        self.state_path = f"{base}/state.json"


class Created:
    """The result of create: pid 1, and the shim's ends of the container's stdio."""

    def __init__(self, pid: int, out_fds: dict[int, str], stdin_fd: int) -> None:
        self.pid = pid
        self.out_fds = out_fds  # fd -> "stdout" | "stderr" (a PTY master is "stdout")
        self.stdin_fd = stdin_fd  # pipe write end, the PTY master, or -1


class RuntimeDriver:
    def __init__(self, cfg: ShimConfig, *, throwaway: bool = False) -> None:
        """``throwaway``: the caller is a child that exits after the call, so sampan's
        runtime is called right here rather than in a forked helper (start, kill, delete)."""
        self.cfg = cfg
        self.throwaway = throwaway
        self.created_pid = 0  # set as soon as the runtime reports pid 1

    def create(self) -> Created:
        cfg = self.cfg
        pid_file = os.path.join(cfg.state_dir, "init.pid")
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        child_fds: list[int] = []
        ours: list[int] = []
        console: socket.socket | None = None
        console_path = ""
        out_fds: dict[int, str] = {}
        stdin_fd = -1
        ok = False
        try:
            if cfg.tty:
                console_path = os.path.join(cfg.state_dir, "console.sock")
                if len(console_path) > proto.MAX_SUN_PATH:
                    console_path = f"/tmp/sampan-console-{os.getpid()}.sock"
                console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                console.bind(console_path)
                console.listen(1)
                stdio = (devnull, devnull, devnull)
            else:
                r = devnull
                if cfg.stdin_open:
                    r, stdin_fd = os.pipe2(os.O_CLOEXEC)
                    child_fds.append(r)
                    ours.append(stdin_fd)
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                child_fds += [out_w, err_w]
                ours += [out_r, err_r]
                out_fds = {out_r: "stdout", err_r: "stderr"}
                stdio = (r, out_w, err_w)
            if cfg.runtime == "sampan":
                pid = self.created_pid = int(
                    self.in_process(
                        "create",
                        bundle=cfg.bundle,
                        pid_file=pid_file,
                        console_socket=console_path or None,
                        stdio=None if cfg.tty else stdio,
                    )
                )
            else:
                args = ["create", "--bundle", cfg.bundle, "--pid-file", pid_file]
                if console_path:
                    args += ["--console-socket", console_path]
                self.run_cli([*args, cfg.container_id], stdio)
                with open(pid_file) as f:
                    pid = self.created_pid = int(f.read().strip())
            if console is not None:
                console.settimeout(10)
                conn, _ = console.accept()
                with conn:
                    _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
                if not fds:
                    raise errors.Internal("the runtime sent no PTY master on the console socket")
                stdin_fd = fds[0]
                ours.append(stdin_fd)
                out_fds = {stdin_fd: "stdout"}
            ok = True
        finally:
            for fd in child_fds:
                os.close(fd)
            os.close(devnull)
            if console is not None:
                console.close()
                try:
                    os.unlink(console_path)
                except OSError:
                    pass
            if not ok:
                for fd in ours:
                    os.close(fd)
        for fd in ours:
            os.set_blocking(fd, False)
        return Created(pid, out_fds, stdin_fd)

    def call(self, call: str, cli: list[str], **kwargs: Any) -> None:
        """One runtime call: in process (``sampan``) or as a CLI with arguments ``cli``."""
        if self.cfg.runtime == "sampan" and self.throwaway:
            proto.raise_for(call_container(call, self.cfg, kwargs))
        elif self.cfg.runtime == "sampan":
            self.in_process(call, **kwargs)
        else:
            self.run_cli([call, *cli])

    def run_cli(self, args: list[str], stdio: tuple[int, int, int] | None = None) -> None:
        """Run ``<runtime> [--root R] --log F --log-format json <args>``; raise on failure."""
        cfg = self.cfg
        log = os.path.join(cfg.state_dir, "runtime.log")
        argv = [cfg.runtime]
        if cfg.runtime_root:
            argv += ["--root", cfg.runtime_root]
        argv += ["--log", log, "--log-format", "json", *args]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                child_defaults()
                devnull = os.open(os.devnull, os.O_RDWR)
                for target, fd in enumerate(stdio or (devnull, devnull, devnull)):
                    os.dup2(fd, target)
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            name = os.path.basename(cfg.runtime)
            if code == 127 and not os.path.exists(log):
                raise errors.NotFound(f"runtime {cfg.runtime!r} could not be executed")
            raise errors.Internal(f"{name} {args[0]} failed (exit {code}): {last_error(log)}")

    def in_process(self, call: str, **kwargs: Any) -> Any:
        """Call ``sampan.runtime.container.<call>`` in a forked helper; returns its result or
        raises its error."""
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(r)
                child_defaults()
                reply = call_container(call, self.cfg, kwargs)
                os.write(w, json.dumps(reply).encode())
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        os.waitpid(pid, 0)
        if not chunks:
            raise errors.Internal(f"sampan runtime {call}: the helper died without an answer")
        return proto.raise_for(json.loads(b"".join(chunks))).get("result")


def make_dir(path: str) -> None:
    """mkdir 0700 if missing (os.makedirs only when a parent is missing: it costs memory)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, mode=0o700, exist_ok=True)


def child_defaults() -> None:
    """In a forked child that will exec or call the runtime: default signal handling."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def call_container(call: str, cfg: ShimConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        if call == "create":  # the kernel's slow first cgroup move, overlapped with the imports
            from sampan.runtime.cgroups import warmup

            warmup.start_for_bundle(kwargs["bundle"])
        from pathlib import Path

        from sampan.runtime import container  # type: ignore[attr-defined,unused-ignore]

        root = Path(cfg.runtime_root or DEFAULT_RUNTIME_ROOT)
        result: Any = None
        if call == "create":
            result = container.create(
                root,
                cfg.container_id,
                Path(kwargs["bundle"]),
                pid_file=Path(kwargs["pid_file"]),
                console_socket=kwargs["console_socket"],
                stdio=kwargs["stdio"],
            )
        elif call == "start":
            container.start(root, cfg.container_id)
        elif call == "kill":
            container.kill(root, cfg.container_id, kwargs["sig"], all=kwargs["all"])
        elif call == "delete":
            container.delete(root, cfg.container_id, force=kwargs["force"])
        else:
            raise errors.InvalidArgument(f"unknown runtime call {call!r}")
        return {"ok": True, "result": result if isinstance(result, (int, str)) else None}
    except BaseException as exc:
        return proto.error_reply(exc)


def last_error(log_path: str) -> str:
    """The last error a runc-style runtime wrote to its --log (json or text)."""
    try:
        with open(log_path) as f:
            lines = f.read().splitlines()
    except OSError:
        return "no runtime log"
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            return line.strip()
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", None):
            return str(entry.get("msg", line))
    return lines[-1].strip() if lines else "no runtime log"
