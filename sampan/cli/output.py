"""How the CLI prints: Docker's human sizes and durations, its tab-aligned tables and ``--format``.

* :func:`human_size` is go-units ``HumanSizeWithPrecision`` (decimal units, ``%.{p}g``):
  ``images`` and ``history`` use precision 3 ("2.14MB"), ``system df`` and prune use 4.
* :func:`human_duration` is go-units ``HumanDuration`` ("About an hour", "2 days").
* :func:`write_formatted` renders rows (dicts of Docker's field names to strings) the way the
  docker CLI's formatter does: the default table, ``table {{...}}`` (header from the same
  template executed against the header names, columns aligned like Go's tabwriter with minwidth
  10 and padding 3), a plain template (one line per row), or ``json`` (one object per line).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from sampan.units import human_duration as human_duration  # re-exported for the commands
from sampan.units import human_size as human_size


def since(timestamp: float, now: float | None = None) -> str:
    """``CreatedSince``: "5 minutes ago"."""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - timestamp)) + " ago"


def go_time(timestamp: float) -> str:
    """Go's ``time.Time.String()`` in local time: ``2024-01-02 15:04:05 +0000 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(timestamp))


def rfc3339(timestamp: float) -> str:
    """Go's ``time.RFC3339`` in local time: ``2024-01-02T15:04:05Z`` or ``...+01:00``."""
    t = time.localtime(timestamp)
    offset = time.strftime("%z", t)
    zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp (fractions and any offset accepted)."""
    from datetime import datetime

    value = text.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:  # Go writes up to 9 fractional digits; datetime takes 6
        digits = "".join(c for c in rest if c.isdigit())
        value = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def short_id(image_id: str) -> str:
    """stringid.TruncateID: the first 12 hex digits, without the ``sha256:`` prefix."""
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def tabwrite(text: str, *, minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-separated cells as Go's ``tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)``."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
        end = "\n"
    else:
        end = ""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):  # the last cell of a line is not tab-terminated
            widths[i] = max(widths.get(i, 0), max(len(cell) + padding, minwidth))
    out = []
    for cells in rows:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        parts.append(cells[-1])
        out.append("".join(parts))
    return "\n".join(out) + end


class HeaderRow(dict[str, str]):
    """The header context: a known field gives its column name, any other field nothing."""

    def __missing__(self, key: str) -> str:
        return ""


def prepare_format(fmt: str) -> tuple[bool, str]:
    """(is_table, template text) with ``table`` stripped and ``\\t``/``\\n`` escapes expanded."""
    is_table = fmt.startswith("table")
    text = fmt[len("table") :] if is_table else fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return is_table, text


def json_line(value: Any) -> str:
    """Go's ``json.Marshal``: compact, ``<``, ``>`` and ``&`` escaped."""
    from sampan.cli.template import escape_html

    return escape_html(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def write_formatted(
    out: TextIO,
    fmt: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    default: str,
    headers: Mapping[str, str],
) -> None:
    """Print ``rows`` with ``fmt`` ("" or "table" -> ``default``; "json" -> one object a line)."""
    from sampan.cli.template import FormatterRow, Template

    if fmt == "json":
        for row in rows:
            out.write(json_line(dict(sorted(row.items()))) + "\n")
        return
    if fmt in ("", "table"):
        fmt = default
    is_table, text = prepare_format(fmt)
    template = Template(text)
    rendered = [template.render(FormatterRow(row)) + "\n" for row in rows]
    if not is_table:
        out.write("".join(rendered))
        return
    head = template.render(HeaderRow(headers)) + "\n"
    out.write(tabwrite(head + "".join(rendered)))


def inspect_json(items: Sequence[Any], *, indent: int | None = 4) -> str:
    """``docker inspect`` output: a JSON array indented by 4 (or compact), Go's HTML escaping."""
    from sampan.cli.template import escape_html

    if indent is None:
        return json_line(list(items))
    return escape_html(json.dumps(list(items), indent=indent, ensure_ascii=False))
