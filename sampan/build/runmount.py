"""``RUN --mount=...`` values: BuildKit's keys, defaults and errors.

At parse time a spec without variables is checked at once; one with ``$`` is kept as text and
checked when the builder expands it (:func:`parse_mount` with an expander), as BuildKit does.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

from sampan.build.shellwords import go_quote
from sampan.errors import InvalidArgument
from sampan.units import ram_in_bytes

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")


@dataclass
class Mount:
    """One ``RUN --mount=...``; defaults as BuildKit's (bind, read-only unless cache/tmpfs)."""

    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    readonly: bool = True
    size_limit: int = 0
    cache_id: str = ""
    sharing: str = ""
    required: bool = False
    env: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    spec: str = ""




def _parse_bool(key: str, value: str) -> bool:
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false"):
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


def _parse_uint(value: str, what: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if number < 0 or number >= 2**32:
        raise InvalidArgument(f"invalid value {value} for {what}")
    return number


def parse_mount(spec: str, expand: Callable[[str], str] = lambda s: s) -> Mount:
    """Parse a ``--mount`` value (CSV of ``key=value``) with BuildKit's keys and errors."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise InvalidArgument(f"failed to parse csv mounts: {exc}") from None
    m = Mount(spec=spec)
    ro_auto = True
    for item in fields:
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                m.readonly, ro_auto = True, False
            elif key in ("readwrite", "rw"):
                m.readonly, ro_auto = False, False
            elif key == "required" and m.type in ("secret", "ssh"):
                m.required = True
            elif key == "required":
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{m.type}'")
            else:
                raise InvalidArgument(f"invalid field '{item}' must be a key=value pair")
            continue
        value = expand(value)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                raise InvalidArgument(f"unsupported mount type {go_quote(value)}")
            m.type = value.lower()
        elif key == "from":
            m.from_ = value
        elif key in ("source", "src"):
            m.source = value
        elif key in ("target", "dst", "destination"):
            m.target = value
        elif key in ("readonly", "ro"):
            m.readonly, ro_auto = _parse_bool(key, value), False
        elif key in ("readwrite", "rw"):
            m.readonly, ro_auto = not _parse_bool(key, value), False
        elif key == "required":
            if m.type not in ("secret", "ssh"):
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{m.type}'")
            m.required = _parse_bool(key, value)
        elif key == "size":
            if m.type != "tmpfs":
                raise InvalidArgument(f"unexpected key '{key}' for mount type '{m.type}'")
            try:
                m.size_limit = ram_in_bytes(value)
            except ValueError:
                raise InvalidArgument(f"invalid value for {key}: {value}") from None
        elif key == "id":
            m.cache_id = value
        elif key == "sharing":
            if value.lower() not in SHARING_MODES:
                raise InvalidArgument(f"unsupported sharing value {go_quote(value)}")
            m.sharing = value.lower()
        elif key == "mode":
            m.mode = _parse_uint(value, "mode", 8)
        elif key == "uid":
            m.uid = _parse_uint(value, "uid", 10)
        elif key == "gid":
            m.gid = _parse_uint(value, "gid", 10)
        elif key == "env":
            m.env = value
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{item}'")
    if m.type not in ("secret", "ssh", "cache"):
        for what in ("mode", "uid", "gid"):
            if getattr(m, what) is not None:
                raise InvalidArgument(f'{what} not allowed for "{m.type}" type mounts')
    if ro_auto:
        m.readonly = m.type not in ("cache", "tmpfs")
    if m.type == "secret":
        if m.from_:
            raise InvalidArgument("secret mount should not have a from")
        if m.sharing:
            raise InvalidArgument("secret mount should not define sharing")
        if not (m.source or m.target or m.cache_id):
            raise InvalidArgument("invalid secret mount. one of source, target required")
        if m.source and m.cache_id:
            raise InvalidArgument("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise InvalidArgument(f"invalid cache sharing set for {m.type} mount")
    return m
