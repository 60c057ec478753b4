"""Rendering a JSON-lines progress stream (load, import; later pull, push, build) as docker does.

Not on a terminal: one plain line per message, and messages that only move a progress bar are
dropped.  On a terminal: each ``id`` keeps its own line, redrawn in place (cursor up, clear,
write, cursor down) as docker's ``jsonmessage.DisplayJSONMessagesStream`` does.  An in-band
error (``errorDetail``) stops the rendering and is raised.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from sampan.cli.output import human_size
from sampan.client.client import stream_error


def progress_text(detail: Any, width: int) -> str:
    if not isinstance(detail, dict):
        return ""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = str(detail.get("units") or "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}" if not units else f"{current} {units}"
    bar = ""
    if width > 110:
        filled = min(50, int(current / total * 100) // 2)
        bar = f"[{'=' * filled}>{' ' * max(0, 50 - filled)}] "
    if units:
        numbers = f"{current}/{total} {units}"
    elif current > total:
        numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
    return bar + numbers


def display(
    messages: Iterable[dict[str, Any]],
    out: TextIO,
    *,
    tty: bool,
    on_aux: Callable[[Any], None] | None = None,
) -> None:
    ids: dict[str, int] = {}
    width = shutil.get_terminal_size((80, 24)).columns if tty else 80
    for msg in messages:
        error = stream_error(msg)
        if error is not None:
            out.flush()
            raise error
        if "aux" in msg:
            if on_aux is not None:
                on_aux(msg["aux"])
            continue
        ident = str(msg.get("id") or "")
        progress = progress_text(msg.get("progressDetail"), width) or str(msg.get("progress") or "")
        # as docker's jm.Progress != nil: an empty progressDetail ("Pulling fs layer") keeps
        # the layer's line too
        tracked = bool(progress) or isinstance(msg.get("progressDetail"), dict)
        diff = 0
        if ident and tracked:
            if ident not in ids:
                ids[ident] = len(ids)
                if tty:
                    out.write("\n")
            diff = len(ids) - ids[ident]
            if tty:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        _display_one(msg, out, tty=tty, ident=ident, progress=progress, tracked=tracked)
        if ident and tty and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()


def _display_one(
    msg: dict[str, Any], out: TextIO, *, tty: bool, ident: str, progress: str, tracked: bool = False
) -> None:
    stream = msg.get("stream")
    endl = ""
    if tty and not stream and (progress or tracked):
        out.write("\x1b[2K\r")
        endl = "\r"
    elif progress and not tty:
        return  # no progress bars off a terminal
    prefix = f"{ident}: " if ident else ""
    status = str(msg.get("status") or "")
    if (progress or tracked) and tty:
        out.write(f"{prefix}{status} {progress}{endl}")
    elif stream:
        out.write(f"{prefix}{stream}{endl}")
    elif status or prefix:
        out.write(f"{prefix}{status}{endl}\n")
