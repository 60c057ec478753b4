"""``ps`` / ``container ls``: docker's columns (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS,
PORTS, NAMES, and SIZE with ``-s``), its ``--format`` fields (ID, Image, Command, CreatedAt,
RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks, LocalVolumes) and
truncation rules (``cli/command/formatter/container.go``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sampan.cli.flags import Flag, Spec
from sampan.cli.system import TABLE_FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

PS = Spec(
    "container ls", "[OPTIONS]", "List containers",
    Flag("all", "a", help="Show all containers (default shows just running)"),
    Flag("filter", "f", kind="list", metavar="filter", help="Filter output based on conditions provided"),
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("last", "n", kind="int", default=-1, help="Show n last created containers (includes all states)"),
    Flag("latest", "l", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only display container IDs"),
    Flag("size", "s", help="Display total file sizes"),
    aliases=("container ls", "container list", "container ps", "ps"), max_args=0,
)

HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}
TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` for the characters a command line holds."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def display_ports(ports: Iterable[dict[str, Any]]) -> str:
    """``0.0.0.0:8080->80/tcp, 443/tcp`` (docker's ``DisplayablePorts``, without range folding)."""
    items = []
    for p in ports:
        private, kind = p.get("PrivatePort", 0), p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            items.append((1, f"{host}:{p['PublicPort']}->{private}/{kind}"))
        else:
            items.append((0, f"{private}/{kind}"))
    seen: list[str] = []
    for _, text in sorted(items):
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def container_rows(containers: Iterable[dict[str, Any]], *, trunc: bool = True, now: float | None = None) -> list[dict[str, str]]:
    from sampan.cli.output import ellipsis, go_time, human_size, short_id, since

    rows = []
    for c in containers:
        names = [n.lstrip("/") for n in c.get("Names") or []]
        if trunc:
            names = [n for n in names if "/" not in n][:1]
        image = str(c.get("Image", ""))
        if trunc and image.startswith("sha256:"):
            image = short_id(image)
        elif trunc and "@" in image:
            image = image.split("@", 1)[0]
        command = str(c.get("Command", ""))
        created = float(c.get("Created", 0) or 0)
        size_rw = int(c.get("SizeRw", 0) or 0)
        size_root = int(c.get("SizeRootFs", 0) or 0)
        size = human_size(size_rw, 3)
        if size_root > 0:
            size = f"{size} (virtual {human_size(size_root, 3)})"
        labels = c.get("Labels") or {}
        mounts = []
        for m in c.get("Mounts") or []:
            name = str(m.get("Name") or m.get("Source") or "")
            mounts.append(ellipsis(name, 15) if trunc else name)
        networks = sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        cid = str(c.get("Id", ""))
        rows.append({
            "ID": short_id(cid) if trunc else cid,
            "Image": image or "<no image>",
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "CreatedAt": go_time(created),
            "RunningFor": since(created, now),
            "Ports": display_ports(c.get("Ports") or []),
            "State": str(c.get("State", "")),
            "Status": str(c.get("Status", "")),
            "Size": size,
            "Names": ",".join(names),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "Mounts": ",".join(mounts),
            "Networks": ",".join(networks),
            "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        })
    return rows


def ps(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import parse_filters
    from sampan.cli.output import write_formatted

    filters = parse_filters(opts["filter"])  # type: ignore[arg-type]
    last = int(opts["last"])  # type: ignore[call-overload]
    if opts["latest"]:
        last = 1
    fmt = str(opts["format"])
    want_size = bool(opts["size"]) or "{{.Size}}" in fmt.replace(" ", "")
    query = {
        "all": bool(opts["all"]) or last > 0, "limit": last if last > 0 else None, "size": want_size,
        "filters": _filters_json(filters),
    }
    containers = ctx.client().json("GET", "/containers/json", query=query) or []
    rows = container_rows(containers, trunc=not opts["no_trunc"])
    if opts["quiet"]:
        fmt = "{{.ID}}"
    default = TABLE + ("\t{{.Size}}" if opts["size"] else "")
    if fmt in ("", "table") and opts["size"]:
        fmt = default
    write_formatted(ctx.stdout, fmt, rows, default=default, headers=HEADERS)
    return 0


def _filters_json(filters: dict[str, list[str]]) -> str | None:
    from sampan.client.client import encode_filters

    return encode_filters(filters)
