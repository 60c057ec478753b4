"""Container lifecycle commands: ``stop``, ``restart``, ``kill``, ``pause``, ``unpause``, ``rm``,
``rename``, ``update``, ``wait``, ``top``, ``port`` and ``inspect`` (containers, images, volumes).

Commands over several containers act on each, print each name that succeeded and the daemon's
errors on stderr, and exit 1 if any failed, as the docker CLI does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec
from sampan.cli.system import FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.client import Client

STOP = Spec(
    "stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
    Flag("signal", "s", kind="string", help="Signal to send to the container"),
    Flag("timeout", "t", kind="int", default=-1, help="Seconds to wait before killing the container"),
    aliases=("container stop", "stop"), min_args=1,
)
RESTART = Spec(
    "restart", "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
    Flag("signal", "s", kind="string", help="Signal to send to the container"),
    Flag("timeout", "t", kind="int", default=-1, help="Seconds to wait before killing the container"),
    aliases=("container restart", "restart"), min_args=1,
)
KILL = Spec(
    "kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
    Flag("signal", "s", kind="string", help="Signal to send to the container"),
    aliases=("container kill", "kill"), min_args=1,
)
PAUSE = Spec("pause", "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
             aliases=("container pause", "pause"), min_args=1)
UNPAUSE = Spec("unpause", "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
               aliases=("container unpause", "unpause"), min_args=1)
RM = Spec(
    "rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
    Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("link", "l", help="Remove the specified link"),
    Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
    aliases=("container rm", "container remove", "rm"), min_args=1,
)
RENAME = Spec("rename", "CONTAINER NEW_NAME", "Rename a container",
              aliases=("container rename", "rename"), min_args=2, max_args=2)
UPDATE = Spec(
    "update", "[OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers",
    Flag("cpu-shares", "c", kind="int", help="CPU shares (relative weight)"),
    Flag("cpus", kind="string", metavar="decimal", help="Number of CPUs"),
    Flag("cpuset-cpus", kind="string", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("memory", "m", kind="string", metavar="bytes", help="Memory limit"),
    Flag("memory-reservation", kind="string", metavar="bytes", help="Memory soft limit"),
    Flag("memory-swap", kind="string", metavar="bytes", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("pids-limit", kind="int", help="Tune container pids limit (set -1 for unlimited)"),
    Flag("restart", kind="string", help="Restart policy to apply when a container exits"),
    aliases=("container update", "update"), min_args=1,
)
WAIT = Spec("wait", "CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes",
            aliases=("container wait", "wait"), min_args=1)
TOP = Spec("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
           aliases=("container top", "top"), min_args=1)
TOP.interspersed = False  # type: ignore[attr-defined]
PORT = Spec("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container",
            aliases=("container port", "port"), min_args=1, max_args=2)
INSPECT = Spec(
    "inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on sampan objects",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    Flag("size", "s", help="Display total file sizes if the type is container"),
    Flag("type", kind="string", help="Only inspect objects of the given type"),
    min_args=1,
)
CONTAINER_INSPECT = Spec(
    "container inspect", "[OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    Flag("size", "s", help="Display total file sizes"),
    min_args=1,
)


def for_each(ctx: Context, names: list[str], action: Callable[[Client, str], object], *, what: str = "",
             missing_ok: bool = False) -> int:
    """Run ``action`` on each name; print the name on success, the daemon's error otherwise.

    With ``missing_ok`` (``rm -f``) a name the daemon does not know is reported on stderr at once
    and does not fail the command, as the docker CLI does: ``docker rm -f $(docker ps -a)`` removes
    the real containers, names each table word it could not find, and exits 0."""
    from sampan.client.client import from_daemon

    client = ctx.client()
    failed = []
    for name in names:
        try:
            action(client, name)
        except errors.SampanError as exc:
            if not from_daemon(exc):
                raise
            if missing_ok and isinstance(exc, errors.NotFound):
                ctx.stdout.flush()
                ctx.stderr.write(f"Error response from daemon: {exc}\n")
                ctx.stderr.flush()
                continue
            failed.append(f"Error response from daemon: {exc}")
            continue
        ctx.stdout.write(name + "\n")
    if failed:
        ctx.stdout.flush()
        ctx.stderr.write("\n".join(failed) + "\n")
        return 1
    return 0


def _post(path: str, query: dict[str, Any] | None = None) -> Callable[[Client, str], object]:
    def action(client: Client, name: str) -> object:
        return client.request("POST", path.format(name=name), query=query).read()

    return action


def _stop_query(opts: Options) -> dict[str, Any]:
    timeout = int(opts["timeout"])  # type: ignore[call-overload]
    return {"t": timeout if timeout >= 0 else None, "signal": str(opts["signal"]) or None}


def stop(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, _post("/containers/{name}/stop", _stop_query(opts)))


def restart(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, _post("/containers/{name}/restart", _stop_query(opts)))


def kill(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, _post("/containers/{name}/kill", {"signal": str(opts["signal"]) or None}))


def pause(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, _post("/containers/{name}/pause"))


def unpause(ctx: Context, opts: Options, args: list[str]) -> int:
    return for_each(ctx, args, _post("/containers/{name}/unpause"))


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    query = {"force": bool(opts["force"]), "v": bool(opts["volumes"]), "link": bool(opts["link"])}

    def action(client: Client, name: str) -> object:
        return client.request("DELETE", f"/containers/{name}", query=query).read()

    return for_each(ctx, args, action, missing_ok=bool(opts["force"]))


def rename(ctx: Context, opts: Options, args: list[str]) -> int:
    old, new = args
    if not new.strip():
        raise errors.InvalidArgument("Error: Neither old nor new names may be empty")
    ctx.client().request("POST", f"/containers/{old}/rename", query={"name": new}).read()
    return 0


def update(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.createflags import bad, parse_restart, ram_bytes

    body: dict[str, Any] = {}
    if opts["cpu_shares"]:
        body["CpuShares"] = int(opts["cpu_shares"])  # type: ignore[call-overload]
    if opts["cpus"]:
        try:
            body["NanoCpus"] = round(float(str(opts["cpus"])) * 1e9)
        except ValueError:
            raise bad(f'invalid argument "{opts["cpus"]}" for "--cpus" flag') from None
    if opts["cpuset_cpus"]:
        body["CpusetCpus"] = opts["cpuset_cpus"]
    for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation")):
        if opts[flag]:
            body[key] = ram_bytes(str(opts[flag]), f"--{flag.replace('_', '-')}")
    if opts["memory_swap"]:
        swap = str(opts["memory_swap"])
        body["MemorySwap"] = -1 if swap == "-1" else ram_bytes(swap, "--memory-swap")
    if opts["pids_limit"]:
        body["PidsLimit"] = int(opts["pids_limit"])  # type: ignore[call-overload]
    if opts["restart"]:
        body["RestartPolicy"] = parse_restart(str(opts["restart"]))
    if not body:
        raise errors.InvalidArgument("you must provide one or more flags when using this command")

    def action(client: Client, name: str) -> object:
        result = client.json("POST", f"/containers/{name}/update", body=body) or {}
        for warning in result.get("Warnings") or []:
            ctx.stderr.write(f"WARNING: {warning}\n")
        return result

    return for_each(ctx, args, action)


def wait(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.client.client import from_daemon
    from sampan.client.hijack import first_json

    client = ctx.client()
    failed = False
    for name in args:
        try:
            response = client.request("POST", f"/containers/{name}/wait", query={"condition": "not-running"})
            result = first_json(response) or {}
        except errors.SampanError as exc:
            if not from_daemon(exc):
                raise
            ctx.stderr.write(f"Error response from daemon: {exc}\n")
            failed = True
            continue
        ctx.stdout.write(f"{int(result.get('StatusCode', 0) or 0)}\n")
        ctx.stdout.flush()
    return 1 if failed else 0


def top(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.output import tabwrite

    query = {"ps_args": " ".join(args[1:]) or None}
    result = ctx.client().json("GET", f"/containers/{args[0]}/top", query=query) or {}
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(str(c) for c in row) for row in result.get("Processes") or []]
    ctx.stdout.write(tabwrite("\n".join(lines) + "\n", minwidth=1, padding=3))
    return 0


def port_lines(ports: dict[str, Any] | None, wanted: str = "") -> list[str]:
    """``80/tcp -> 0.0.0.0:8080`` lines from ``NetworkSettings.Ports``."""
    if wanted and "/" not in wanted:
        wanted += "/tcp"
    lines = []
    for key in sorted((ports or {}), key=lambda k: (int(k.split("/")[0]) if k.split("/")[0].isdigit() else 0, k)):
        if wanted and key != wanted:
            continue
        for binding in (ports or {}).get(key) or []:
            ip = binding.get("HostIp") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            addr = f"{host}:{binding.get('HostPort', '')}"
            lines.append(addr if wanted else f"{key} -> {addr}")
    return lines


def port(ctx: Context, opts: Options, args: list[str]) -> int:
    info = ctx.client().json("GET", f"/containers/{args[0]}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports")
    lines = port_lines(ports, args[1] if len(args) > 1 else "")
    if len(args) > 1 and not lines:
        raise errors.NotFound(f"No public port '{args[1] if '/' in args[1] else args[1] + '/tcp'}' published for {args[0]}")
    if lines:
        ctx.stdout.write("\n".join(lines) + "\n")
    return 0


_KINDS = ("container", "image", "volume")


def _lookup(client: Client, kind: str, name: str, size: bool) -> Any:
    if kind == "container":
        return client.json("GET", f"/containers/{name}/json", query={"size": size})
    if kind == "image":
        return client.inspect_image(name)
    return client.json("GET", f"/volumes/{name}")


def _inspect(ctx: Context, opts: Options, args: list[str], kinds: tuple[str, ...], *, object_errors: bool) -> int:
    from sampan.cli.images import write_inspected

    client = ctx.client()
    found: list[Any] = []
    failures: list[str] = []
    for name in args:
        for kind in kinds:
            try:
                found.append(_lookup(client, kind, name, bool(opts["size"])))
                break
            except errors.NotFound:
                continue
        else:
            failures.append(f"Error: No such object: {name}" if object_errors else f"Error: No such container: {name}")
    return write_inspected(ctx, str(opts["format"]), found, failures)


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    kind = str(opts["type"])
    if kind and kind not in _KINDS:
        if kind in ("network", "node", "service", "task", "plugin", "secret", "config"):
            raise errors.NotImplementedFeature(f"inspect --type={kind} is not supported yet")
        raise errors.InvalidArgument(f'"{kind}" is not a valid value for --type')
    return _inspect(ctx, opts, args, (kind,) if kind else _KINDS, object_errors=True)


def container_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    return _inspect(ctx, opts, args, ("container",), object_errors=False)
