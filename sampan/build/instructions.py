"""Typed Dockerfile instructions, with the flag and value grammar they share.

:func:`sampan.build.dockerfile.parse_dockerfile` produces these from parser nodes; the builder
consumes them.  Each instruction keeps ``original`` (the line as written, continuations joined)
and ``line`` (its first line number) for error messages and the legacy builder's
``Step N/M : ...`` output.  Values are kept *unexpanded*: the builder expands variables per
step with :func:`sampan.build.dockerfile.expand`, because the environment changes as ENV and
ARG instructions run.  Which instructions expand what follows BuildKit (and moby's
``replaceEnvAllowed``): see :data:`EXPANDING_INSTRUCTIONS`.

Durations (HEALTHCHECK) are integers in nanoseconds, as Docker's image config stores them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sampan.build.shellwords import go_quote
from sampan.errors import InvalidArgument

#: Instructions whose arguments the builder expands with the current ENV and ARG values.
EXPANDING_INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "RUN",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)


@dataclass(frozen=True)
class KeyValue:
    """One ``key=value`` of ENV or LABEL; ``no_delim`` marks the legacy ``ENV key value``."""

    key: str
    value: str
    no_delim: bool = False


@dataclass(frozen=True)
class ArgDef:
    """One ARG: a name and an optional default (``None`` when the ARG has no ``=``)."""

    key: str
    default: str | None = None


@dataclass(frozen=True)
class InlineFile:
    """A heredoc body: a RUN script (``name`` is the marker) or a COPY/ADD source file."""

    name: str
    data: str
    chomp: bool = False
    expand: bool = True
    file_descriptor: int = 0


@dataclass(kw_only=True)
class Instruction:
    """Fields every instruction has."""

    original: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return _NAMES[type(self)]


@dataclass(kw_only=True)
class ShellDependent(Instruction):
    """RUN, CMD, ENTRYPOINT: exec form (``prepend_shell`` False) or shell form (one string)."""

    command: list[str] = field(default_factory=list)
    prepend_shell: bool = True
    files: list[InlineFile] = field(default_factory=list)


@dataclass(kw_only=True)
class Run(ShellDependent):
    mounts: list[Mount] = field(default_factory=list)
    network: str = "default"
    security: str = "sandbox"
    flags_used: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Cmd(ShellDependent):
    pass


@dataclass(kw_only=True)
class Entrypoint(ShellDependent):
    pass


@dataclass(kw_only=True)
class Env(Instruction):
    env: list[KeyValue] = field(default_factory=list)


@dataclass(kw_only=True)
class Label(Instruction):
    labels: list[KeyValue] = field(default_factory=list)


@dataclass(kw_only=True)
class Maintainer(Instruction):
    maintainer: str = ""


@dataclass(kw_only=True)
class Expose(Instruction):
    ports: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class SourcesAndDest(Instruction):
    """COPY and ADD: paths in the context (or URLs), heredoc files, one destination."""

    sources: list[str] = field(default_factory=list)
    contents: list[InlineFile] = field(default_factory=list)
    dest: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Add(SourcesAndDest):
    checksum: str = ""
    keep_git_dir: bool | None = None
    unpack: bool | None = None


@dataclass(kw_only=True)
class Copy(SourcesAndDest):
    from_: str = ""
    parents: bool = False


@dataclass(kw_only=True)
class Volume(Instruction):
    volumes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class User(Instruction):
    user: str = ""


@dataclass(kw_only=True)
class Workdir(Instruction):
    path: str = ""


@dataclass(kw_only=True)
class Arg(Instruction):
    args: list[ArgDef] = field(default_factory=list)


@dataclass(kw_only=True)
class Onbuild(Instruction):
    """A trigger: the wrapped instruction's text, run when a child image is built FROM this."""

    expression: str = ""


@dataclass(kw_only=True)
class StopSignal(Instruction):
    signal: str = ""


@dataclass(kw_only=True)
class Healthcheck(Instruction):
    """``test`` is ``["NONE"]``, ``["CMD", ...]`` or ``["CMD-SHELL", "..."]``."""

    test: list[str] = field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(kw_only=True)
class Shell(Instruction):
    shell: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Stage:
    """One ``FROM`` and the instructions up to the next one.

    ``base`` is the image reference, another stage's name, or ``scratch``; ``name`` is the
    lower-cased ``AS`` name ("" when none); ``index`` counts stages from 0.
    """

    base: str
    name: str = ""
    platform: str = ""
    index: int = 0
    instructions: list[Instruction] = field(default_factory=list)
    original: str = ""
    line: int = 0


_NAMES: dict[type, str] = {
    Run: "RUN",
    Cmd: "CMD",
    Entrypoint: "ENTRYPOINT",
    Env: "ENV",
    Label: "LABEL",
    Maintainer: "MAINTAINER",
    Expose: "EXPOSE",
    Add: "ADD",
    Copy: "COPY",
    Volume: "VOLUME",
    User: "USER",
    Workdir: "WORKDIR",
    Arg: "ARG",
    Onbuild: "ONBUILD",
    StopSignal: "STOPSIGNAL",
    Healthcheck: "HEALTHCHECK",
    Shell: "SHELL",
}


# --- flags ---------------------------------------------------------------------------------


class Flags:
    """The ``--name[=value]`` flags of one instruction, checked as BuildKit's BFlags does."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.kinds: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.used: list[str] = []

    def string(self, name: str, default: str = "") -> None:
        self.kinds[name] = "string"
        self.values[name] = default

    def boolean(self, name: str) -> None:
        self.kinds[name] = "bool"
        self.values[name] = "false"

    def strings(self, name: str) -> None:
        self.kinds[name] = "strings"
        self.lists[name] = []

    def get(self, name: str) -> str:
        return self.values[name]

    def is_true(self, name: str) -> bool:
        return self.values[name] == "true"

    def parse(self) -> None:
        for arg in self.args:
            if arg == "--":
                return
            if not arg.startswith("--"):
                raise InvalidArgument(f"arg should start with -- : {arg}")
            flag, has_value, value = arg.partition("=")
            name = flag[2:]
            kind = self.kinds.get(name)
            if kind is None:
                raise InvalidArgument(f"unknown flag: {flag}")
            if name in self.used and kind != "strings":
                raise InvalidArgument(f"duplicate flag specified: {flag}")
            self.used.append(name)
            if kind == "bool":
                if has_value and value == "":
                    raise InvalidArgument(f"missing a value on flag: {flag}")
                if value.lower() in ("true", ""):
                    self.values[name] = "true"
                elif value.lower() == "false":
                    self.values[name] = "false"
                else:
                    raise InvalidArgument(f"expecting boolean value for flag {flag}, not: {value}")
            elif not has_value:
                raise InvalidArgument(f"missing a value on flag: {flag}")
            elif kind == "string":
                self.values[name] = value
            else:
                self.lists[name].append(value)


# --- durations -----------------------------------------------------------------------------

_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` ("1m30s", "500ms", "1.5h") in nanoseconds."""
    bad = InvalidArgument(f"time: invalid duration {go_quote(text)}")
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise bad
    total = 0.0
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None or match.group(1) in ("", "."):
            raise bad
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise InvalidArgument(
                f"time: unknown unit {go_quote(match.group(2))} in duration {go_quote(text)}"
            )
        total += float(match.group(1)) * unit
        pos = match.end()
    return sign * round(total)


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` for the values the error messages show."""
    if ns == 0:
        return "0s"
    if ns < 10**3:
        return f"{ns}ns"
    if ns < 10**6:
        return f"{ns / 10**3:g}µs"
    if ns < 10**9:
        return f"{ns / 10**6:g}ms"
    return f"{ns / 10**9:g}s"


# --- RUN --mount ---------------------------------------------------------------------------

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


_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def _ram_in_bytes(value: str) -> int:
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(value)
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(float(match.group(1)) * 1024**power)


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
                m.size_limit = _ram_in_bytes(value)
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
