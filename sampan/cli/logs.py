"""``logs``: ``GET /containers/{id}/json`` (is it a TTY?) then ``GET .../logs``, raw with a TTY,
demultiplexed from 8-byte frames without one; ``-f`` follows until the container stops.

``--since``/``--until`` take what docker's ``timetypes.GetTimestamp`` takes: Unix seconds
(``1700000000.5``), RFC 3339 (``2024-01-02T15:04:05Z``, or a date alone) or a Go duration
before now (``10m``, ``1h30m``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

LOGS = Spec(
    "logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container",
    Flag("details", help="Show extra details provided to logs"),
    Flag("follow", "f", help="Follow log output"),
    Flag("since", kind="string", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    Flag("tail", "n", kind="string", default="all", help="Number of lines to show from the end of the logs"),
    Flag("timestamps", "t", help="Show timestamps"),
    Flag("until", kind="string", help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    aliases=("container logs", "logs"), min_args=1, max_args=1,
)


def timestamp(value: str, flag: str, now: float | None = None) -> str:
    """docker's ``GetTimestamp``: the API's ``seconds.nanoseconds`` text."""
    from sampan.cli.createflags import duration_ns
    from sampan.cli.flags import UsageError
    from sampan.cli.output import parse_rfc3339

    text = value.strip()
    if not text:
        return ""
    try:
        float(text)
        return text
    except ValueError:
        pass
    now = time.time() if now is None else now
    if text[-1].isalpha() and any(c.isdigit() for c in text) and "-" not in text:
        try:
            return f"{now - duration_ns(text, flag) / 1e9:.9f}"
        except UsageError:
            pass
    parsed = parse_rfc3339(text if "T" in text else text + "T00:00:00Z")
    if parsed is None:
        raise errors.InvalidArgument(f'invalid value for "{flag}": failed to parse value as time or duration: "{value}"')
    return f"{parsed:.9f}"


def logs(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.attach import Demux, binary_writer

    client = ctx.client()
    info = client.json("GET", f"/containers/{args[0]}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    tail = str(opts["tail"])
    query: dict[str, Any] = {
        "stdout": True, "stderr": True, "follow": bool(opts["follow"]), "tail": tail or "all",
        "since": timestamp(str(opts["since"]), "since") or None, "until": timestamp(str(opts["until"]), "until") or None,
        "timestamps": bool(opts["timestamps"]), "details": bool(opts["details"]),
    }
    response = client.request("GET", f"/containers/{info.get('Id', args[0])}/logs", query=query)
    out = binary_writer(ctx.stdout)
    err = binary_writer(ctx.stderr)
    demux = None if tty else Demux()
    try:
        for data in response.iter_raw(65536):
            if demux is None:
                out(data)
                continue
            for kind, payload in demux.feed(data):
                (err if kind == 2 else out)(payload)
    finally:
        response.close()
    return 0
