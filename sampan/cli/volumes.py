"""``volume create|ls|inspect|rm|prune``: docker's output (``DRIVER  VOLUME NAME`` table, the
volume's name on create and rm, "Total reclaimed space" on prune).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec
from sampan.cli.system import FORMAT_HELP, TABLE_FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

CREATE = Spec(
    "volume create", "[OPTIONS] [VOLUME]", "Create a volume",
    Flag("driver", "d", kind="string", default="local", help="Specify volume driver name"),
    Flag("label", kind="list", help="Set metadata for a volume"),
    Flag("name", kind="string", help="Specify volume name"),
    Flag("opt", "o", kind="list", metavar="map", help="Set driver specific options"),
    max_args=1,
)
LS = Spec(
    "volume ls", "[OPTIONS]", "List volumes",
    Flag("filter", "f", kind="list", metavar="filter", help="Provide filter values (e.g. 'dangling=true')"),
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("quiet", "q", help="Only display volume names"),
    aliases=("volume ls", "volume list"), max_args=0,
)
INSPECT = Spec(
    "volume inspect", "[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes",
    Flag("format", "f", kind="string", help=FORMAT_HELP), min_args=1,
)
RM = Spec(
    "volume rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes",
    Flag("force", "f", help="Force the removal of one or more volumes"),
    aliases=("volume rm", "volume remove"), min_args=1,
)
PRUNE = Spec(
    "volume prune", "[OPTIONS]", "Remove unused local volumes",
    Flag("all", "a", help="Remove all unused volumes, not just anonymous ones"),
    Flag("filter", kind="list", metavar="filter", help='Provide filter values (e.g. "label=<label>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
    max_args=0,
)

HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}
TABLE = "table {{.Driver}}\t{{.Name}}"


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    name = str(opts["name"])
    if args:
        if name and name != args[0]:
            raise errors.InvalidArgument("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
        name = args[0]
    body = {"Name": name, "Driver": str(opts["driver"]) or "local",
            "DriverOpts": _pairs(list(opts["opt"])), "Labels": _pairs(list(opts["label"]))}  # type: ignore[call-overload]
    volume = ctx.client().json("POST", "/volumes/create", body=body) or {}
    ctx.stdout.write(f"{volume.get('Name', name)}\n")
    return 0


def volume_rows(volumes: list[dict[str, Any]]) -> list[dict[str, str]]:
    from sampan.cli.output import human_size

    rows = []
    for v in volumes:
        usage = v.get("UsageData") or {}
        size = usage.get("Size", -1)
        refs = usage.get("RefCount", -1)
        rows.append({
            "Name": str(v.get("Name", "")), "Driver": str(v.get("Driver", "")), "Scope": str(v.get("Scope", "local")),
            "Mountpoint": str(v.get("Mountpoint", "")),
            "Labels": ",".join(f"{k}={val}" for k, val in sorted((v.get("Labels") or {}).items())),
            "Links": "N/A" if refs is None or refs < 0 else str(refs),
            "Size": "N/A" if size is None or size < 0 else human_size(size),
        })
    return rows


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import parse_filters
    from sampan.cli.output import write_formatted
    from sampan.client.client import encode_filters

    filters = parse_filters(opts["filter"])  # type: ignore[arg-type]
    result = ctx.client().json("GET", "/volumes", query={"filters": encode_filters(filters)}) or {}
    volumes = sorted(result.get("Volumes") or [], key=lambda v: str(v.get("Name", "")))
    for warning in result.get("Warnings") or []:
        ctx.stderr.write(f"{warning}\n")
    fmt = "{{.Name}}" if opts["quiet"] else str(opts["format"])
    write_formatted(ctx.stdout, fmt, volume_rows(volumes), default=TABLE, headers=HEADERS)
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import inspect_named

    return inspect_named(ctx, str(opts["format"]), args, "/volumes/{}")


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.containers import for_each
    from sampan.client.client import Client

    def action(client: Client, name: str) -> object:
        return client.request("DELETE", f"/volumes/{name}", query={"force": bool(opts["force"])}).read()

    return for_each(ctx, args, action)


PRUNE_WARNING = "WARNING! This will remove anonymous local volumes not used by at least one container."
PRUNE_ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one container."


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import confirm, parse_filters
    from sampan.cli.output import human_size
    from sampan.client.client import encode_filters

    filters = parse_filters(opts["filter"], "--filter")  # type: ignore[arg-type]
    if opts["all"]:
        filters["all"] = ["true"]
    if not opts["force"] and not confirm(ctx, PRUNE_ALL_WARNING if opts["all"] else PRUNE_WARNING):
        return 0
    report = ctx.client().json("POST", "/volumes/prune", query={"filters": encode_filters(filters)}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        ctx.stdout.write("Deleted Volumes:\n" + "".join(f"{n}\n" for n in deleted) + "\n")
    ctx.stdout.write(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}\n")
    return 0
