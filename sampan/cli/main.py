"""``sampan``: Docker's CLI for the sampan daemon.  Entry point ``sampan.cli.main:main``.

Start-up is on the hot path (``sampan version`` must answer in < 60 ms from process start):
this module imports only ``sys``, ``os`` and the flag parser; each command's module is
imported when that command runs, and no command imports an HTTP server stack, asyncio or rich.

Global flags come before the command (as docker's): ``-H/--host``, ``--tls``, ``--tlsverify``,
``--tlscacert``, ``--tlscert``, ``--tlskey``, ``-D/--debug``, ``-v/--version``, ``-h/--help``.
Errors print one line on stderr (``Error response from daemon: ...`` for the daemon's own) and
exit with the code from :mod:`sampan.cli.exitcodes`; never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from sampan import errors
from sampan.cli import exitcodes
from sampan.cli.flags import PROG, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sampan.cli.context import Context, GlobalOptions

#: command words -> (module in sampan.cli, spec attribute, function)
COMMANDS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("images",): ("images", "LS", "ls"),
    ("image", "ls"): ("images", "LS", "ls"),
    ("image", "list"): ("images", "LS", "ls"),
    ("image", "inspect"): ("images", "IMAGE_INSPECT", "image_inspect"),
    ("inspect",): ("containers", "INSPECT", "inspect"),
    ("history",): ("images", "HISTORY", "history"),
    ("image", "history"): ("images", "HISTORY", "history"),
    ("tag",): ("images", "TAG", "tag"),
    ("image", "tag"): ("images", "TAG", "tag"),
    ("rmi",): ("images", "RMI", "rmi"),
    ("image", "rm"): ("images", "RMI", "rmi"),
    ("image", "remove"): ("images", "RMI", "rmi"),
    ("image", "prune"): ("images", "PRUNE", "prune"),
    ("save",): ("transfer", "SAVE", "save"),
    ("image", "save"): ("transfer", "SAVE", "save"),
    ("load",): ("transfer", "LOAD", "load"),
    ("image", "load"): ("transfer", "LOAD", "load"),
    ("import",): ("transfer", "IMPORT", "import_"),
    ("build",): ("build", "BUILD", "build"),
    ("image", "build"): ("build", "BUILD", "build"),
    ("builder", "build"): ("build", "BUILD", "build"),
    ("builder", "prune"): ("build", "PRUNE", "prune"),
    ("image", "import"): ("transfer", "IMPORT", "import_"),
    ("version",): ("system", "VERSION", "version"),
    ("pull",): ("registry", "PULL", "pull"),
    ("image", "pull"): ("registry", "PULL", "pull"),
    ("push",): ("registry", "PUSH", "push"),
    ("image", "push"): ("registry", "PUSH", "push"),
    ("login",): ("registry", "LOGIN", "login"),
    ("logout",): ("registry", "LOGOUT", "logout"),
    ("info",): ("system", "INFO", "info"),
    ("system", "info"): ("system", "INFO", "info"),
    ("system", "df"): ("system", "DF", "df"),
    # containers (run.py, containers.py, ps.py, logs.py, exec.py, attach.py, ...)
    ("run",): ("run", "RUN", "run"),
    ("container", "run"): ("run", "RUN", "run"),
    ("create",): ("run", "CREATE", "create"),
    ("container", "create"): ("run", "CREATE", "create"),
    ("start",): ("run", "START", "start"),
    ("container", "start"): ("run", "START", "start"),
    ("stop",): ("containers", "STOP", "stop"),
    ("container", "stop"): ("containers", "STOP", "stop"),
    ("restart",): ("containers", "RESTART", "restart"),
    ("container", "restart"): ("containers", "RESTART", "restart"),
    ("kill",): ("containers", "KILL", "kill"),
    ("container", "kill"): ("containers", "KILL", "kill"),
    ("pause",): ("containers", "PAUSE", "pause"),
    ("container", "pause"): ("containers", "PAUSE", "pause"),
    ("unpause",): ("containers", "UNPAUSE", "unpause"),
    ("container", "unpause"): ("containers", "UNPAUSE", "unpause"),
    ("rm",): ("containers", "RM", "rm"),
    ("container", "rm"): ("containers", "RM", "rm"),
    ("container", "remove"): ("containers", "RM", "rm"),
    ("rename",): ("containers", "RENAME", "rename"),
    ("container", "rename"): ("containers", "RENAME", "rename"),
    ("update",): ("containers", "UPDATE", "update"),
    ("container", "update"): ("containers", "UPDATE", "update"),
    ("wait",): ("containers", "WAIT", "wait"),
    ("container", "wait"): ("containers", "WAIT", "wait"),
    ("top",): ("containers", "TOP", "top"),
    ("container", "top"): ("containers", "TOP", "top"),
    ("port",): ("containers", "PORT", "port"),
    ("container", "port"): ("containers", "PORT", "port"),
    ("container", "inspect"): ("containers", "CONTAINER_INSPECT", "container_inspect"),
    ("ps",): ("ps", "PS", "ps"),
    ("container", "ls"): ("ps", "PS", "ps"),
    ("container", "list"): ("ps", "PS", "ps"),
    ("container", "ps"): ("ps", "PS", "ps"),
    ("logs",): ("logs", "LOGS", "logs"),
    ("container", "logs"): ("logs", "LOGS", "logs"),
    ("exec",): ("exec", "EXEC", "exec_"),
    ("container", "exec"): ("exec", "EXEC", "exec_"),
    ("attach",): ("attach", "ATTACH", "attach"),
    ("container", "attach"): ("attach", "ATTACH", "attach"),
    ("stats",): ("stats", "STATS", "stats"),
    ("container", "stats"): ("stats", "STATS", "stats"),
    ("cp",): ("cp", "CP", "cp"),
    ("container", "cp"): ("cp", "CP", "cp"),
    ("export",): ("cp", "EXPORT", "export"),
    ("container", "export"): ("cp", "EXPORT", "export"),
    ("commit",): ("cp", "COMMIT", "commit"),
    ("container", "commit"): ("cp", "COMMIT", "commit"),
    ("diff",): ("cp", "DIFF", "diff"),
    ("container", "diff"): ("cp", "DIFF", "diff"),
    ("events",): ("events", "EVENTS", "events"),
    ("system", "events"): ("events", "EVENTS", "events"),
    ("container", "prune"): ("prune", "CONTAINER_PRUNE", "container_prune"),
    ("system", "prune"): ("prune", "SYSTEM_PRUNE", "system_prune"),
    ("volume", "create"): ("volumes", "CREATE", "create"),
    ("volume", "ls"): ("volumes", "LS", "ls"),
    ("volume", "list"): ("volumes", "LS", "ls"),
    ("volume", "inspect"): ("volumes", "INSPECT", "inspect"),
    ("volume", "rm"): ("volumes", "RM", "rm"),
    ("volume", "remove"): ("volumes", "RM", "rm"),
    ("volume", "prune"): ("volumes", "PRUNE", "prune"),
    ("network", "create"): ("networks", "CREATE", "create"),
    ("network", "ls"): ("networks", "LS", "ls"),
    ("network", "list"): ("networks", "LS", "ls"),
    ("network", "inspect"): ("networks", "INSPECT", "inspect"),
    ("network", "rm"): ("networks", "RM", "rm"),
    ("network", "remove"): ("networks", "RM", "rm"),
    ("network", "prune"): ("networks", "PRUNE", "prune"),
    ("network", "connect"): ("networks", "CONNECT", "connect"),
    ("network", "disconnect"): ("networks", "DISCONNECT", "disconnect"),
}

GROUPS = {
    "container": "Manage containers",
    "image": "Manage images",
    "system": "Manage sampan",
    "volume": "Manage volumes",
    "network": "Manage networks",
}

SUMMARIES = {
    "attach": "Attach local standard input, output, and error streams to a running container",
    "commit": "Create a new image from a container's changes",
    "cp": "Copy files/folders between a container and the local filesystem",
    "create": "Create a new container",
    "diff": "Inspect changes to files or directories on a container's filesystem",
    "events": "Get real time events from the server",
    "export": "Export a container's filesystem as a tar archive",
    "exec": "Execute a command in a running container",
    "kill": "Kill one or more running containers",
    "logs": "Fetch the logs of a container",
    "pause": "Pause all processes within one or more containers",
    "port": "List port mappings or a specific mapping for the container",
    "ps": "List containers",
    "rename": "Rename a container",
    "restart": "Restart one or more containers",
    "rm": "Remove one or more containers",
    "run": "Create and run a new container from an image",
    "start": "Start one or more stopped containers",
    "stats": "Display a live stream of container(s) resource usage statistics",
    "stop": "Stop one or more running containers",
    "top": "Display the running processes of a container",
    "unpause": "Unpause all processes within one or more containers",
    "update": "Update configuration of one or more containers",
    "wait": "Block until one or more containers stop, then print their exit codes",
    "history": "Show the history of an image",
    "images": "List images",
    "import": "Import the contents from a tarball to create a filesystem image",
    "info": "Display system-wide information",
    "inspect": "Return low-level information on sampan objects",
    "load": "Load an image from a tar archive or STDIN",
    "login": "Authenticate to a registry",
    "logout": "Log out from a registry",
    "pull": "Download an image from a registry",
    "push": "Upload an image to a registry",
    "rmi": "Remove one or more images",
    "save": "Save one or more images to a tar archive (streamed to STDOUT by default)",
    "tag": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    "version": "Show the sampan version information",
}

GLOBAL_HELP = """\
Usage:  sampan [OPTIONS] COMMAND

A container engine that speaks Docker's Engine API

Management Commands:
{groups}

Commands:
{commands}

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (default unix:///run/sampan/sampan.sock;
                           env SAMPAN_HOST)
      --tls                Use TLS; implied by --tlsverify
      --tlscacert string   Trust certs signed only by this CA
      --tlscert string     Path to TLS certificate file
      --tlskey string      Path to TLS key file
      --tlsverify          Use TLS and verify the remote
  -v, --version            Print version information and quit

Run 'sampan COMMAND --help' for more information on a command.
"""


def _global_help() -> str:
    groups = "\n".join(f"  {name:<11}{text}" for name, text in sorted(GROUPS.items()))
    commands = "\n".join(f"  {name:<11}{text}" for name, text in sorted(SUMMARIES.items()))
    return GLOBAL_HELP.format(groups=groups, commands=commands)


def _group_help(group: str) -> str:
    subs = sorted({words[1] for words in COMMANDS if len(words) == 2 and words[0] == group} - {"list", "remove"})
    lines = [f"Usage:  {PROG} {group} COMMAND", "", GROUPS[group], "", "Commands:"]
    for sub in subs:
        module, spec_name, _ = COMMANDS[(group, sub)]
        spec = getattr(__import__(f"sampan.cli.{module}", fromlist=[spec_name]), spec_name)
        lines.append(f"  {sub:<11}{spec.summary}")
    lines += ["", f"Run '{PROG} {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


_VALUE_FLAGS = {"-H": "host", "--host": "host", "--tlscacert": "tlscacert", "--tlscert": "tlscert",
                "--tlskey": "tlskey", "-l": "", "--log-level": "", "--config": "", "-c": "", "--context": ""}


def parse_globals(argv: list[str]) -> tuple[GlobalOptions, list[str], bool, bool]:
    """(options, the rest from the command on, --help asked, --version asked)."""
    from sampan.cli.context import GlobalOptions

    opts = GlobalOptions()
    want_help = want_version = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        i += 1
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name.startswith("-H") and len(name) > 2 and not name.startswith("--"):
            name, eq, value = "-H", "=", arg[2:].lstrip("=")
        if name in _VALUE_FLAGS:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}", code=exitcodes.USAGE)
                value = argv[i]
                i += 1
            field = _VALUE_FLAGS[name]
            if field == "host":
                opts.hosts.append(value)
            elif field:
                setattr(opts, field, value)
        elif name in ("--tls", "--tlsverify", "-D", "--debug"):
            flag = value.lower() not in ("0", "f", "false") if eq else True
            setattr(opts, {"-D": "debug", "--debug": "debug"}.get(name, name[2:]), flag)
        elif name in ("-h", "--help"):
            want_help = True
        elif name in ("-v", "--version"):
            want_version = True
        else:
            raise UsageError(
                f"unknown flag: {name}\n\nUsage:  {PROG} [OPTIONS] COMMAND [ARG...]\n\nRun '{PROG} --help' for more information",
                code=exitcodes.USAGE,
            )
    return opts, argv[i:], want_help, want_version


def run(argv: list[str], *, make_context: Callable[[GlobalOptions], Context] | None = None) -> int:
    """Run one command line (without the program name); return the exit status."""
    from sampan.cli.context import Context

    options, rest, want_help, want_version = parse_globals(argv)
    ctx = (make_context or Context)(options)
    if want_version:
        from sampan import __version__

        ctx.stdout.write(f"sampan version {__version__}\n")
        return 0
    if not rest:
        ctx.stdout.write(_global_help())
        return 0
    if want_help:  # "sampan --help images" is "sampan images --help"
        rest = [*rest, "--help"]
    if rest[0] == "registry":  # the registry server's own main (serve, gc)
        from sampan.registry_main import main as registry_main

        return registry_main(rest[1:])
    words: tuple[str, ...] = (rest[0], rest[1]) if len(rest) > 1 else (rest[0],)
    if words not in COMMANDS:
        words = (rest[0],)
    if words not in COMMANDS:
        group = rest[0]
        if group in GROUPS:
            if len(rest) == 1 or rest[1] in ("-h", "--help"):
                ctx.stdout.write(_group_help(group))
                return 0
            raise UsageError(
                f"{PROG}: unknown command: {PROG} {group} {rest[1]}\n\nUsage:  {PROG} {group}\n\n"
                f"Run '{PROG} {group} --help' for more information",
                code=exitcodes.GENERAL,
            )
        raise UsageError(
            f"{PROG}: unknown command: {PROG} {group}\n\nRun '{PROG} --help' for more information",
            code=exitcodes.GENERAL,
        )
    module_name, spec_name, func_name = COMMANDS[words]
    module = __import__(f"sampan.cli.{module_name}", fromlist=[func_name])
    spec = getattr(module, spec_name)
    spec.words = " ".join(words)
    from sampan.cli.flags import help_text, parse, usage_hint

    try:
        opts, args = parse(spec, rest[len(words) :], interspersed=getattr(spec, "interspersed", True))
        if opts["help"]:
            ctx.stdout.write(help_text(spec))
            return 0
        result: int = getattr(module, func_name)(ctx, opts, args)
    except UsageError as exc:
        if exc.code == exitcodes.USAGE and "\n\nUsage:  " not in exc.message:
            exc.message += usage_hint(spec)
        raise
    return result


def report(exc: BaseException, stderr: TextIO | None = None) -> int:
    """Print ``exc`` as the docker CLI would and return the exit status."""
    out = stderr or sys.stderr
    from sampan.client.client import from_daemon

    if isinstance(exc, UsageError):
        text, code = exc.message, exc.code
    else:
        code = exitcodes.exit_code(exc)
        message = str(exc)
        if from_daemon(exc):
            text = f"Error response from daemon: {message}"
        elif getattr(exc, "plain", False) or type(exc).__name__ == "DaemonUnreachable":
            text = message
        else:
            text = f"{PROG}: {message}"
    out.write(text + "\n")
    return code


def main(argv: list[str] | None = None) -> int:
    """The program: run ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    Called without arguments (the console script, ``python -m sampan.cli``) it flushes the
    standard streams and leaves with ``os._exit``: tearing down the interpreter costs more
    (~8 ms here) than everything ``sampan version`` does.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        code = run(args)
        sys.stdout.flush()
    except errors.SampanError as exc:
        code = report(exc)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 141
    except Exception as exc:  # a bug or an unexpected system failure: one line, never a traceback
        if "-D" in args or "--debug" in args:
            import traceback

            traceback.print_exc()
        code = report(errors.Internal(f"unexpected error: {type(exc).__name__}: {exc}"))
    if argv is not None:
        _quiet_stdout_if_broken(code)
        return code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = 141
        except (OSError, ValueError):
            pass
    os._exit(code)


def _quiet_stdout_if_broken(code: int) -> None:
    if code == 141:  # stdout went away: do not let the interpreter complain at exit
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(main())
