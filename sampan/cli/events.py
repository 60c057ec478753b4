"""``events``: the daemon's event stream (``GET /events``), printed as the docker CLI does::

    2024-01-02T15:04:05.123456789+00:00 container start 3f2a... (image=busybox, name=web)

``--since``/``--until`` take the same values as ``logs``; ``--format`` templates see the event
object (``{{.Type}} {{.Action}} {{.Actor.ID}}``), ``json`` prints one object a line.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sampan.cli.flags import Flag, Spec
from sampan.cli.system import FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

EVENTS = Spec(
    "system events", "[OPTIONS]", "Get real time events from the server",
    Flag("filter", "f", kind="list", metavar="filter", help="Filter output based on conditions provided"),
    Flag("format", kind="string", help=FORMAT_HELP),
    Flag("since", kind="string", help="Show all events created since timestamp"),
    Flag("until", kind="string", help="Stream events until this timestamp"),
    aliases=("system events", "events"), max_args=0,
)


def rfc3339_nano(time_nano: int) -> str:
    """Go's ``RFC3339NanoFixed`` in local time: ``2006-01-02T15:04:05.000000000Z07:00``."""
    seconds, nanos = divmod(time_nano, 1_000_000_000)
    t = time.localtime(seconds)
    offset = time.strftime("%z", t)
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{nanos:09d}" + zone


def event_line(event: dict[str, Any]) -> str:
    actor = event.get("Actor") or {}
    parts = []
    if event.get("timeNano"):
        parts.append(rfc3339_nano(int(event["timeNano"])) + " ")
    elif event.get("time"):
        parts.append(rfc3339_nano(int(event["time"]) * 1_000_000_000) + " ")
    parts.append(f"{event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}")
    attributes = actor.get("Attributes") or {}
    if attributes:
        parts.append(" (" + ", ".join(f"{k}={v}" for k, v in sorted(attributes.items())) + ")")
    return "".join(parts)


def events(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import parse_filters
    from sampan.cli.logs import timestamp
    from sampan.cli.output import json_line
    from sampan.client.client import encode_filters

    filters = parse_filters(opts["filter"])  # type: ignore[arg-type]
    query = {
        "since": timestamp(str(opts["since"]), "since") or None,
        "until": timestamp(str(opts["until"]), "until") or None,
        "filters": encode_filters(filters),
    }
    fmt = str(opts["format"])
    template = None
    if fmt and fmt != "json":
        from sampan.cli.template import Template

        template = Template(fmt)
    try:
        for event in ctx.client().stream("GET", "/events", query=query):
            if fmt == "json":
                line = json_line(event)
            elif template is not None:
                line = template.render(event)
            else:
                line = event_line(event)
            ctx.stdout.write(line + "\n")
            ctx.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0
