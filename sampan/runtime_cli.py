"""``sampan-runtime``'s commands: the argument parser and the dispatch to
:mod:`sampan.runtime.container`, behind the launcher :mod:`sampan.runtime_main`.

    sampan-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...

Commands: create start run state kill delete exec ps list pause resume update features.
Errors print one line on stderr (and to --log) and exit 1, as runc does; ``run`` and ``exec``
exit with the process's status (128+n when killed by signal n).  Imports are lazy: the parser
is hand-written because argparse alone costs milliseconds on every container start.

This module is imported (from its cached bytecode) by the launcher, a file kept small because
a script run by path is compiled from source on every start (this one cost 2.4 ms).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: command -> {flag: takes_value}; aliases map to the canonical flag
_COMMANDS: dict[str, dict[str, bool]] = {
    "create": {"--bundle": True, "--pid-file": True, "--console-socket": True, "--no-pivot": False, "--preserve-fds": True, "--no-new-keyring": False},
    "run": {"--bundle": True, "--pid-file": True, "--console-socket": True, "--no-pivot": False, "--detach": False, "--keep": False, "--preserve-fds": True, "--no-new-keyring": False},
    "start": {},
    "state": {},
    "kill": {"--all": False},
    "delete": {"--force": False},
    "exec": {"--process": True, "--tty": False, "--cwd": True, "--env": True, "--user": True, "--detach": False, "--pid-file": True, "--console-socket": True, "--cap": True, "--no-new-privs": False, "--additional-gids": True},
    "ps": {"--format": True},
    "list": {"--format": True, "--quiet": False},
    "pause": {},
    "resume": {},
    "update": {"--resources": True, "--memory": True, "--cpu-shares": True, "--cpu-quota": True, "--cpu-period": True, "--pids-limit": True, "--cpuset-cpus": True},
    "features": {},
}
_ALIASES = {"-b": "--bundle", "-d": "--detach", "-t": "--tty", "-e": "--env", "-u": "--user", "-p": "--process", "-f": "--force", "-a": "--all", "-q": "--quiet", "-c": "--cap", "-r": "--resources", "-g": "--additional-gids"}
_MULTI = ("--env", "--cap", "--additional-gids")
_GLOBAL = {"--root": True, "--log": True, "--log-format": True, "--debug": False, "--systemd-cgroup": False, "--rootless": True, "--criu": True}

_log_file: str | None = None
_log_json = False


class UsageError(Exception):
    pass


def _parse(argv: list[str], table: dict[str, bool], stop_at_positional: bool) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i + 1:])
            break
        if arg.startswith("-") and len(arg) > 1 and not (rest and stop_at_positional):
            name, eq, value = arg.partition("=")
            if not name.startswith("--") and len(name) == 2:
                name = _ALIASES.get(name, name)
                if name == "--force" and "--force" not in table and "--format" in table:
                    name = "--format"  # runc: "list -f json", "ps -f json", "delete -f"
            elif name.startswith("-") and not name.startswith("--"):
                name = "-" + name  # runc accepts -root as well as --root
            if name not in table:
                raise UsageError(f"flag provided but not defined: {arg}")
            if table[name]:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {arg}")
                    value = argv[i]
                if name in _MULTI:
                    opts.setdefault(name, []).append(value)
                else:
                    opts[name] = value
            else:
                opts[name] = value.lower() not in ("false", "0") if eq else True
        else:
            if stop_at_positional:
                rest.extend(argv[i:])
                break
            rest.append(arg)
        i += 1
    return opts, rest


def _log(message: str) -> None:
    print(message, file=sys.stderr)
    if _log_file:
        import json
        import time

        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps({"level": "error", "msg": message, "time": t}) if _log_json else f'time="{t}" level=error msg="{message}"'
        try:
            with open(_log_file, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass


def _one_id(rest: list[str], command: str, extra: int = 0) -> str:
    if not rest:
        raise UsageError(f'"{command}" requires a container id')
    if len(rest) > 1 + extra:
        raise UsageError(f'"{command}" takes at most {1 + extra} arguments')
    return rest[0]


def _signal(text: str) -> int:
    import signal

    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise UsageError(f"unknown signal {text!r}")
    return int(sig)


def _exec_process(opts: dict[str, Any], rest: list[str], bundle_config: str) -> dict[str, Any]:
    import json

    if opts.get("--process"):
        with open(opts["--process"]) as f:
            raw: dict[str, Any] = json.load(f)
        return raw
    if len(rest) < 2:
        raise UsageError('"exec" requires a container id and a command (or --process)')
    with open(bundle_config) as f:
        base = dict(json.load(f).get("process") or {})
    base["args"] = rest[1:]
    base["terminal"] = bool(opts.get("--tty"))
    base.pop("consoleSize", None)
    if opts.get("--cwd"):
        base["cwd"] = opts["--cwd"]
    if opts.get("--env"):
        base["env"] = list(base.get("env") or []) + opts["--env"]
    if opts.get("--user"):
        uid, _, gid = opts["--user"].partition(":")
        base["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if opts.get("--no-new-privs"):
        base["noNewPrivileges"] = True
    if opts.get("--cap"):
        caps = base.setdefault("capabilities", {})
        for key in ("bounding", "effective", "permitted"):
            caps[key] = list(caps.get(key) or []) + opts["--cap"]
    if opts.get("--additional-gids"):
        base.setdefault("user", {})["additionalGids"] = [int(g) for g in opts["--additional-gids"]]
    return base


def _features() -> dict[str, Any]:
    from sampan._sys.caps import NAMES
    from sampan.runtime.spec import NAMESPACE_TYPES, SECCOMP_ACTIONS, SECCOMP_OPS

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime", "nodiratime", "relatime", "strictatime", "bind", "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", "rro", "idmap", "ridmap"],
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": list(SECCOMP_ACTIONS), "operators": list(SECCOMP_OPS), "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime-spec.features": "sampan-runtime"},
    }


def _update_resources(opts: dict[str, Any]) -> dict[str, Any]:
    import json

    if opts.get("--resources"):
        if opts["--resources"] == "-":
            data: dict[str, Any] = json.load(sys.stdin)
        else:
            with open(opts["--resources"]) as f:
                data = json.load(f)
        return data
    res: dict[str, Any] = {}
    if "--memory" in opts:
        res.setdefault("memory", {})["limit"] = int(opts["--memory"])
    for flag, key in (("--cpu-shares", "shares"), ("--cpu-quota", "quota"), ("--cpu-period", "period")):
        if flag in opts:
            res.setdefault("cpu", {})[key] = int(opts[flag])
    if "--cpuset-cpus" in opts:
        res.setdefault("cpu", {})["cpus"] = opts["--cpuset-cpus"]
    if "--pids-limit" in opts:
        res["pids"] = {"limit": int(opts["--pids-limit"])}
    return res


def _warm_cgroups(bundle: str) -> None:
    """A bundle that will use cgroups: start the kernel's slow first-move wait now, in a side
    thread, so that it overlaps the imports and setup (see sampan.runtime.cgroups.warmup)."""
    from sampan.runtime.cgroups import warmup

    warmup.start_for_bundle(bundle)


def dispatch(argv: list[str]) -> int:
    global _log_file, _log_json
    gopts, rest = _parse(argv, _GLOBAL, stop_at_positional=True)
    _log_file = gopts.get("--log")
    _log_json = gopts.get("--log-format") == "json"
    if not rest:
        raise UsageError("no command given (create start run state kill delete exec ps list pause resume update features)")
    command, args = rest[0], rest[1:]
    if command not in _COMMANDS:
        raise UsageError(f"no such command: {command}")
    opts, rest = _parse(args, _COMMANDS[command], stop_at_positional=command == "exec")
    root = gopts.get("--root") or "/run/sampan-runtime"
    if command in ("create", "run"):
        _warm_cgroups(opts.get("--bundle") or ".")
    from sampan.runtime import container as c

    if command in ("create", "run"):
        cid = _one_id(rest, command)
        bundle = opts.get("--bundle") or "."
        pid_file = opts.get("--pid-file") or None
        kwargs = {"pid_file": pid_file, "console_socket": opts.get("--console-socket"), "no_pivot": bool(opts.get("--no-pivot"))}
        if command == "create" or opts.get("--detach"):
            c.create(root, cid, bundle, preserve_fds=int(opts.get("--preserve-fds", 0)), **kwargs)  # type: ignore[arg-type]
            if command == "run":
                c.start(root, cid)
            return 0
        return c.run(root, cid, bundle, keep=bool(opts.get("--keep")), **kwargs)  # type: ignore[arg-type]
    if command == "features":
        import json

        print(json.dumps(_features(), indent=2))
        return 0
    if command == "list":
        items = c.list_containers(root)
        if opts.get("--quiet"):
            for item in items:
                print(item["id"])
        elif opts.get("--format") == "json":
            import json

            print(json.dumps(items))
        else:
            print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED'}")
            for item in items:
                print(f"{item['id']:<20}{item['pid']:<10}{item['status']:<10}{item['bundle']:<40}{item['created']}")
        return 0
    if command == "exec":
        if not rest:
            raise UsageError('"exec" requires a container id')
        cid = rest[0]
        from sampan.runtime.state import StateDir

        st = StateDir(root, cid).load()
        process = _exec_process(opts, rest, os.path.join(st.bundle, "config.json"))
        pid_file = opts.get("--pid-file") or None
        ours = theirs = None
        if process.get("terminal") and not opts.get("--console-socket"):
            if opts.get("--detach"):
                raise UsageError("cannot allocate tty if runc will detach without setting console socket")
            from sampan.runtime import console

            ours, theirs = console.local_pair()
        pid = c.exec_process(root, cid, process, pid_file=pid_file, console_socket=opts.get("--console-socket"), _console_sock=theirs)
        if theirs is not None:
            theirs.close()
        if opts.get("--detach"):
            return 0
        if ours is not None:
            from sampan.runtime import console
            from sampan.runtime.process import exit_code

            master = console.receive_master(ours)
            return exit_code(console.proxy(master, pid))
        return c.wait_exec(pid)
    cid = _one_id(rest, command, extra=1 if command == "kill" else 0)
    if command == "start":
        c.start(root, cid)
    elif command == "state":
        import json

        print(json.dumps(c.state(root, cid), indent=2))
    elif command == "kill":
        c.kill(root, cid, _signal(rest[1] if len(rest) > 1 else "TERM"), all=bool(opts.get("--all")))
    elif command == "delete":
        c.delete(root, cid, force=bool(opts.get("--force")))
    elif command == "ps":
        pids = c.ps(root, cid)
        if opts.get("--format") == "json":
            import json

            print(json.dumps(pids))
        else:
            print("PID")
            for pid in pids:
                print(pid)
    elif command == "pause":
        c.pause(root, cid)
    elif command == "resume":
        c.resume(root, cid)
    elif command == "update":
        c.update(root, cid, _update_resources(opts))
    return 0


def main(argv: list[str] | None = None) -> int:
    from sampan.errors import SampanError

    try:
        return dispatch(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        _log(f"sampan-runtime: {exc}")
        return 1
    except SampanError as exc:
        _log(str(exc))
        return 1
    except OSError as exc:
        _log(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def launch() -> None:
    """Run the command line and leave at once: the exit skips the interpreter's finalization
    (2 ms: module teardown and garbage collection), so stdio is flushed here.  Never returns."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
