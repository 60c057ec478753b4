"""``create``, ``run`` and ``start``: docker's call sequences from ``cli/command/container``.

``run`` in the foreground: ``POST /containers/create`` (on "No such image": "Unable to find image
'x' locally", ``POST /images/create`` and create again), the hijacked ``attach`` (before start, so
no output is lost), ``POST .../wait?condition=next-exit|removed`` sent before start and read after,
``start``, the initial resize with a TTY, then the stream until the container exits; the exit
status is the container's.  ``run -d`` is create + start + the ID.  Exit status 125 means sampan
failed before the process started, 126 that the command cannot be invoked, 127 that it was not
found (docker's ``runStartContainerErr``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli import exitcodes
from sampan.cli.createflags import CREATE_FLAGS
from sampan.cli.flags import Flag, Spec, UsageError

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.client import Client
    from sampan.client.hijack import Hijacked

RUN = Spec(
    "run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
    *sorted((
        Flag("detach", "d", help="Run container in background and print container ID"),
        Flag("detach-keys", kind="string", help="Override the key sequence for detaching a container"),
        Flag("sig-proxy", default=True, help="Proxy received signals to the process"),
        *CREATE_FLAGS,
    ), key=lambda f: f.long),
    aliases=("container run", "run"), min_args=1,
)
RUN.interspersed = False  # type: ignore[attr-defined]  # flags end at the image
CREATE = Spec(
    "create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
    *CREATE_FLAGS,
    aliases=("container create", "create"), min_args=1,
)
CREATE.interspersed = False  # type: ignore[attr-defined]
START = Spec(
    "start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
    Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
    Flag("detach-keys", kind="string", help="Override the key sequence for detaching a container"),
    Flag("interactive", "i", help="Attach container's STDIN"),
    aliases=("container start", "start"), min_args=1,
)


def _reference(image: str) -> str:
    """docker's ``FamiliarString(TagNameOnly(ref))``: ``busybox`` -> ``busybox:latest``."""
    if "@" in image:
        return image
    tail = image.rsplit("/", 1)[-1]
    return image if ":" in tail else image + ":latest"


def pull(ctx: Context, image: str, *, quiet: bool = False) -> None:
    from sampan.cli.images import split_tag
    from sampan.client.client import stream_error

    ref = _reference(image)
    name, sep, digest = ref.partition("@")
    repo, tag = (name, digest) if sep else split_tag(ref)
    for message in ctx.client().stream("POST", "/images/create", query={"fromImage": repo, "tag": tag}):
        exc = stream_error(message)
        if exc is not None:
            exc.from_daemon = True  # type: ignore[attr-defined]
            raise exc
        if not quiet and message.get("status"):
            ident = f"{message['id']}: " if message.get("id") else ""
            ctx.stderr.write(f"{ident}{message['status']}\n")


def _is_missing_image(exc: errors.SampanError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, errors.NotFound) and ("no such image" in text or ("image" in text and "not found" in text))


def create_container(ctx: Context, opts: Options, args: list[str], *, detach: bool) -> str:
    """Create the container ``run``/``create`` describe (pulling as ``--pull`` says); its ID."""
    from sampan.cli.attach import isatty, terminal_size
    from sampan.cli.createflags import create_body

    image, command = args[0], args[1:]
    policy = str(opts["pull"])
    if policy not in ("missing", "always", "never"):
        raise UsageError(f'invalid pull option: \'{policy}\': must be one of "always", "missing" or "never"', code=125)
    size = terminal_size(ctx.stdout) if opts["tty"] and isatty(ctx.stdout) else None
    body = create_body(opts, image, command, environ=ctx.environ, detach=detach, console_size=size)
    query: dict[str, Any] = {"name": str(opts["name"]) or None, "platform": str(opts["platform"]) or None}
    client = ctx.client()
    if policy == "always":
        pull(ctx, image, quiet=bool(opts["quiet"]))
    try:
        created = client.json("POST", "/containers/create", query=query, body=body)
    except errors.SampanError as exc:
        if policy != "missing" or not _is_missing_image(exc):
            raise
        ctx.stderr.write(f"Unable to find image '{_reference(image)}' locally\n")
        ctx.stderr.flush()
        pull(ctx, image, quiet=bool(opts["quiet"]))
        created = client.json("POST", "/containers/create", query=query, body=body)
    for warning in created.get("Warnings") or []:
        ctx.stderr.write(f"WARNING: {warning}\n")
    return str(created["Id"])


def start_error_code(exc: BaseException) -> int:
    """docker's ``runStartContainerErr``: 127 not found, 126 cannot invoke, else 125."""
    text = str(exc)
    if any(s in text for s in ("executable file not found", "no such file or directory", "not found in $PATH")):
        return exitcodes.NOT_FOUND_COMMAND
    if "permission denied" in text or "cannot invoke" in text.lower():
        return exitcodes.CANNOT_INVOKE
    return exitcodes.ENGINE


def _report(exc: BaseException, ctx: Context) -> None:
    from sampan.cli.main import report

    ctx.stdout.flush()
    report(exc, ctx.stderr)


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    try:
        cid = create_container(ctx, opts, args, detach=True)
    except UsageError:
        raise
    except errors.SampanError as exc:
        _report(exc, ctx)
        return exitcodes.ENGINE
    ctx.stdout.write(cid + "\n")
    return 0


def attach_and_start(
    ctx: Context,
    cid: str,
    *,
    tty: bool,
    streams: tuple[bool, bool, bool],
    detach_keys: str,
    sig_proxy: bool,
    condition: str,
) -> int:
    """Attach ``streams`` (stdin, stdout, stderr), open wait, start, pump; the exit status."""
    from sampan.cli.attach import initial_resize, isatty, resizer, run_session, terminal_size
    from sampan.client.hijack import hijack, send_early

    client = ctx.client()
    with_stdin, with_out, with_err = streams
    stream: Hijacked | None = None
    if any(streams):
        query = {"stream": True, "stdin": with_stdin, "stdout": with_out, "stderr": with_err,
                 "detachKeys": detach_keys or None}
        stream = hijack(client, "POST", f"/containers/{cid}/attach", query=query)
    waiter = send_early(client, "POST", f"/containers/{cid}/wait", query={"condition": condition})
    try:
        client.request("POST", f"/containers/{cid}/start").read()
    except errors.SampanError as exc:
        waiter.close()
        if stream is not None:
            stream.close()
        _report(exc, ctx)
        if condition == "removed":  # --rm: never leave the container behind
            _remove_quietly(client, cid)
        return start_error_code(exc)
    resize = resizer(ctx, f"/containers/{cid}")
    if tty and isatty(ctx.stdout):
        initial_resize(resize, terminal_size(ctx.stdout))
    if stream is not None:
        kill = None
        if sig_proxy and not tty:

            def kill(name: str) -> None:
                client.request("POST", f"/containers/{cid}/kill", query={"signal": name}).read()

        detached = run_session(ctx, stream, tty=tty, with_stdin=with_stdin, detach_keys=detach_keys,
                               resize=resize, kill=kill)
        if detached:
            waiter.close()
            return 0
    return exit_status(ctx, waiter.json())


def _remove_quietly(client: Client, cid: str) -> None:
    try:
        client.request("DELETE", f"/containers/{cid}", query={"force": True, "v": True}).read()
    except errors.SampanError:
        pass  # the daemon removed it already


def exit_status(ctx: Context, result: Any) -> int:
    result = result or {}
    error = (result.get("Error") or {}).get("Message") if isinstance(result.get("Error"), dict) else None
    if error:
        ctx.stderr.write(f"{error}\n")
    return int(result.get("StatusCode", 0) or 0)


def run(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.attach import detach_sequence, isatty

    detach = bool(opts["detach"])
    try:
        if opts["detach_keys"]:
            detach_sequence(str(opts["detach_keys"]))
        if opts["tty"] and opts["interactive"] and not detach and not isatty(ctx.stdin):
            ctx.stderr.write("the input device is not a TTY\n")
            return 1
        if opts["rm"] and str(opts["restart"]) not in ("", "no"):
            raise UsageError("Conflicting options: --restart and --rm", code=125)
        cid = create_container(ctx, opts, args, detach=detach)
    except UsageError:
        raise
    except errors.SampanError as exc:
        _report(exc, ctx)
        return exitcodes.ENGINE
    client = ctx.client()
    if detach:
        try:
            client.request("POST", f"/containers/{cid}/start").read()
        except errors.SampanError as exc:
            _report(exc, ctx)
            if opts["rm"]:
                _remove_quietly(client, cid)
            return start_error_code(exc)
        ctx.stdout.write(cid + "\n")
        return 0
    attach = [str(a).lower() for a in opts["attach"]]  # type: ignore[attr-defined]
    if attach:
        streams = ("stdin" in attach, "stdout" in attach, "stderr" in attach)
    else:
        streams = (bool(opts["interactive"]), True, True)
    try:
        return attach_and_start(
            ctx, cid, tty=bool(opts["tty"]), streams=streams, detach_keys=str(opts["detach_keys"]),
            sig_proxy=bool(opts["sig_proxy"]), condition="removed" if opts["rm"] else "next-exit",
        )
    except errors.SampanError as exc:
        _report(exc, ctx)
        return exitcodes.ENGINE


def start(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.client.client import from_daemon

    client = ctx.client()
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise errors.InvalidArgument("you cannot start and attach multiple containers at once")
        info = client.json("GET", f"/containers/{args[0]}/json")
        config = info.get("Config") or {}
        tty = bool(config.get("Tty"))
        with_stdin = bool(opts["interactive"]) and bool(config.get("OpenStdin"))
        try:
            return attach_and_start(
                ctx, str(info["Id"]), tty=tty, streams=(with_stdin, bool(opts["attach"]), bool(opts["attach"])),
                detach_keys=str(opts["detach_keys"]), sig_proxy=bool(opts["attach"]) and not tty,
                condition="next-exit",
            )
        except errors.SampanError as exc:
            _report(exc, ctx)
            return exitcodes.GENERAL
    failed = []
    for name in args:
        try:
            client.request("POST", f"/containers/{name}/start").read()
        except errors.SampanError as exc:
            if not from_daemon(exc):
                raise
            failed.append(f"Error response from daemon: {exc}")
            continue
        ctx.stdout.write(name + "\n")
    if failed:
        ctx.stdout.flush()
        ctx.stderr.write("\n".join(failed) + f"\nError: failed to start containers: {', '.join(args)}\n")
        return 1
    return 0


def client_of(ctx: Context) -> Client:
    return ctx.client()
