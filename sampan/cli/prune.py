"""``container prune`` and ``system prune`` (stopped containers, unused networks, volumes with
``--volumes``, dangling or ``-a`` all unused images, build cache), each printing what it removed
and "Total reclaimed space: X".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.client import Client

CONTAINER_PRUNE = Spec(
    "container prune", "[OPTIONS]", "Remove all stopped containers",
    Flag("filter", kind="list", metavar="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
    max_args=0,
)
SYSTEM_PRUNE = Spec(
    "system prune", "[OPTIONS]", "Remove unused data",
    Flag("all", "a", help="Remove all unused images not just dangling ones"),
    Flag("filter", kind="list", metavar="filter", help='Provide filter values (e.g. "label=<key>=<value>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
    Flag("volumes", help="Prune anonymous volumes"),
    max_args=0,
)

CONTAINER_WARNING = "WARNING! This will remove all stopped containers."


def _prune(client: Client, path: str, filters: dict[str, list[str]]) -> dict[str, Any]:
    from sampan.client.client import encode_filters

    return dict(client.json("POST", path, query={"filters": encode_filters(filters)}) or {})


def _containers_section(report: dict[str, Any]) -> str:
    deleted = report.get("ContainersDeleted") or []
    return "Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n" if deleted else ""


def container_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import confirm, parse_filters
    from sampan.cli.output import human_size

    filters = parse_filters(opts["filter"], "--filter")  # type: ignore[arg-type]
    if not opts["force"] and not confirm(ctx, CONTAINER_WARNING):
        return 0
    report = _prune(ctx.client(), "/containers/prune", filters)
    ctx.stdout.write(_containers_section(report))
    ctx.stdout.write(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}\n")
    return 0


def system_warning(all_images: bool, volumes: bool) -> str:
    lines = ["WARNING! This will remove:", "  - all stopped containers", "  - all networks not used by at least one container"]
    if volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them" if all_images else "  - all dangling images")
    lines.append("  - unused build cache")
    return "\n".join(lines) + "\n"


def system_prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import confirm, parse_filters
    from sampan.cli.output import human_size

    filters = parse_filters(opts["filter"], "--filter")  # type: ignore[arg-type]
    if not opts["force"] and not confirm(ctx, system_warning(bool(opts["all"]), bool(opts["volumes"]))):
        return 0
    client = ctx.client()
    total = 0
    out = ctx.stdout
    report = _prune(client, "/containers/prune", filters)
    total += int(report.get("SpaceReclaimed") or 0)
    out.write(_containers_section(report))
    try:
        networks = _prune(client, "/networks/prune", filters).get("NetworksDeleted") or []
        if networks:
            out.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in networks) + "\n")
    except (errors.NotFound, errors.NotImplementedFeature):
        pass  # networking not there yet
    if opts["volumes"]:
        report = _prune(client, "/volumes/prune", filters)
        total += int(report.get("SpaceReclaimed") or 0)
        deleted = report.get("VolumesDeleted") or []
        if deleted:
            out.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted) + "\n")
    image_filters = {**filters, "dangling": ["false" if opts["all"] else "true"]}
    report = _prune(client, "/images/prune", image_filters)
    total += int(report.get("SpaceReclaimed") or 0)
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        lines = ["Deleted Images:"]
        for item in deleted:
            lines.append(f"untagged: {item['Untagged']}" if item.get("Untagged") else f"deleted: {item.get('Deleted', '')}")
        out.write("\n".join(lines) + "\n\n")
    try:
        report = _prune(client, "/build/prune", {"all": ["true"]} if opts["all"] else {})
        total += int(report.get("SpaceReclaimed") or 0)
        cache = report.get("CachesDeleted") or []
        if cache:
            out.write("Deleted build cache objects:\n" + "".join(f"{c}\n" for c in cache) + "\n")
    except (errors.NotFound, errors.NotImplementedFeature):
        pass
    out.write(f"Total reclaimed space: {human_size(total)}\n")
    return 0
