"""``exec``: docker's sequence — ``POST /containers/{id}/exec`` (the exec's config), then
``POST /exec/{id}/start`` hijacked (or ``Detach: true`` with ``-d``), the TTY resize, and the
exit status from ``GET /exec/{id}/json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

EXEC = Spec(
    "exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container",
    Flag("detach", "d", help="Detached mode: run command in the background"),
    Flag("detach-keys", kind="string", help="Override the key sequence for detaching a container"),
    Flag("env", "e", kind="list", help="Set environment variables"),
    Flag("env-file", kind="list", help="Read in a file of environment variables"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("privileged", help="Give extended privileges to the command"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag("user", "u", kind="string", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
    Flag("workdir", "w", kind="string", help="Working directory inside the container"),
    aliases=("container exec", "exec"), min_args=2,
)
EXEC.interspersed = False  # type: ignore[attr-defined]


def exec_(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.attach import (
        detach_sequence,
        initial_resize,
        isatty,
        resizer,
        run_session,
        terminal_size,
    )
    from sampan.cli.createflags import parse_env_file, resolve_env
    from sampan.client.hijack import hijack

    name, command = args[0], args[1:]
    detach = bool(opts["detach"])
    tty = bool(opts["tty"])
    interactive = bool(opts["interactive"])
    detach_keys = str(opts["detach_keys"])
    if detach_keys:
        detach_sequence(detach_keys)
    if tty and interactive and not detach and not isatty(ctx.stdin):
        raise errors.InvalidArgument("the input device is not a TTY")
    env: list[str] = []
    for path in opts["env_file"]:  # type: ignore[attr-defined]
        env += parse_env_file(path)
    env = resolve_env(env + list(opts["env"]), ctx.environ)  # type: ignore[call-overload]
    size = terminal_size(ctx.stdout) if tty and isatty(ctx.stdout) else None
    body: dict[str, Any] = {
        "User": opts["user"], "Privileged": bool(opts["privileged"]), "Tty": tty,
        "AttachStdin": interactive and not detach, "AttachStdout": not detach, "AttachStderr": not detach,
        "Detach": detach, "DetachKeys": detach_keys, "Env": env, "WorkingDir": opts["workdir"], "Cmd": command,
    }
    if size:
        body["ConsoleSize"] = list(size)
    client = ctx.client()
    exec_id = str((client.json("POST", f"/containers/{name}/exec", body=body) or {})["Id"])
    if detach:
        client.request("POST", f"/exec/{exec_id}/start", body=_json({"Detach": True, "Tty": tty}),
                       headers={"Content-Type": "application/json"}).read()
        return 0
    start: dict[str, Any] = {"Detach": False, "Tty": tty}
    if size:
        start["ConsoleSize"] = list(size)
    stream = hijack(client, "POST", f"/exec/{exec_id}/start", body=start)
    resize = resizer(ctx, f"/exec/{exec_id}")
    if tty and size:
        initial_resize(resize, size)
    detached = run_session(ctx, stream, tty=tty, with_stdin=interactive, detach_keys=detach_keys, resize=resize, kill=None)
    if detached:
        return 0
    result = client.json("GET", f"/exec/{exec_id}/json") or {}
    code = result.get("ExitCode")
    return int(code) if code is not None else 0


def _json(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()
