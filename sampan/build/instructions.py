"""Typed Dockerfile instructions, with the flag and value grammar they share.

:func:`sampan.build.dockerfile.parse_dockerfile` produces these from parser nodes; the builder
consumes them.  Each instruction keeps ``original`` (the line as written, continuations joined)
and ``line`` (its first line number) for error messages and the legacy builder's
``Step N/M : ...`` output.  Values are kept *unexpanded*: the builder expands variables per
step with :func:`sampan.build.expansion.expand`, because the environment changes as ENV and
ARG instructions run.  Which instructions expand what follows BuildKit (and moby's
``replaceEnvAllowed``): see :data:`EXPANDING_INSTRUCTIONS`.

Durations (HEALTHCHECK) are integers in nanoseconds, as Docker's image config stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sampan import units
from sampan.build.parser import chomp_heredoc, parse_heredoc
from sampan.build.runmount import Mount
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
    """A heredoc body: a RUN script (``name`` is the marker) or a COPY/ADD source file.

    For RUN, ``data`` is the body as written (a ``<<-`` body still has its tabs; see
    :func:`run_script`); for COPY/ADD it is already chomped and ``name`` is the file name
    written in the destination."""

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
    """RUN, CMD, ENTRYPOINT: exec form (``prepend_shell`` False) or shell form (one string).

    An empty ``command`` (``CMD []``, ``ENTRYPOINT []``, or no argument) clears the setting."""

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


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` ("1m30s", "500ms", "1.5h") in nanoseconds, with BuildKit's
    messages (the text quoted as Go's strconv.Quote does)."""
    try:
        return units.parse_duration(text, quote=go_quote)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


# --- EXPOSE --------------------------------------------------------------------------------


def _port_range(text: str) -> tuple[int, int]:
    """``"80"`` or ``"8000-8010"`` as (first, last); ValueError when malformed."""
    first, dash, last = text.partition("-")
    if dash and "-" in last:
        raise ValueError(text)
    lo = int(first) if first.isdigit() else -1
    hi = (int(last) if last.isdigit() else -1) if dash else lo
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise ValueError(text)
    return lo, hi


def exposed_ports(specs: list[str]) -> list[str]:
    """The image config's ExposedPorts keys (``"80/tcp"``) for expanded EXPOSE arguments.

    Accepts ``port``, ``port/proto`` (tcp, udp, sctp; any case), ranges ``8000-8010`` and, as
    BuildKit still does, an ``[ip:]hostport:`` prefix that is checked and then ignored."""
    out: list[str] = []
    for spec in specs:
        parts = spec.split(":")
        container = parts[-1]
        host = parts[-2] if len(parts) >= 2 else ""
        ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
        port, _, proto = container.partition("/")
        if not port:
            raise InvalidArgument(f"no port specified: {container}<empty>")
        proto = proto.lower() or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        if ip and not _is_ip(ip):
            raise InvalidArgument(f"invalid IP address: {ip}")
        try:
            lo, hi = _port_range(port)
        except ValueError:
            raise InvalidArgument(f"invalid containerPort: {port}") from None
        if host:
            try:
                hlo, hhi = _port_range(host)
            except ValueError:
                raise InvalidArgument(f"invalid hostPort: {host}") from None
            if hi - lo != hhi - hlo and hi != lo:
                raise InvalidArgument(
                    f"invalid ranges specified for container and host Ports: {port} and {host}"
                )
        out += [f"{p}/{proto}" for p in range(lo, hi + 1)]
    return out


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- RUN with heredocs ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunScript:
    """What a RUN step executes once its heredocs are taken into account.

    ``command`` and ``prepend_shell`` mean what they mean on :class:`Run`.  ``executable`` is
    set for a lone ``RUN <<EOF`` whose body starts with ``#!``: the builder writes it, mode
    0755, to ``/dev/pipes/<name>`` (a read-only mount) and the command runs that file."""

    command: list[str]
    prepend_shell: bool
    executable: InlineFile | None = None


PIPES_DIR = "/dev/pipes/"


def run_script(run: Run) -> RunScript:
    """BuildKit's rules for a RUN with heredocs: a lone marker runs its body with the shell
    (or as a file when it has a shebang); otherwise the bodies are appended to the command
    line, and the shell reads them as real heredocs."""
    if not run.files:
        return RunScript(list(run.command), run.prepend_shell)
    if len(run.command) != 1 or not run.prepend_shell:
        raise InvalidArgument(f"parsing produced an invalid run command: [{' '.join(run.command)}]")
    try:
        lone = parse_heredoc(run.command[0]) is not None
    except InvalidArgument:
        lone = False
    if lone:
        first = run.files[0]
        data = chomp_heredoc(first.data) if first.chomp else first.data
        if data.startswith("#!"):
            script = InlineFile(first.name, data, chomp=False, expand=False)
            return RunScript([PIPES_DIR + first.name], True, script)
        return RunScript([data], True)
    full = run.command[0] + "".join(f"\n{f.data}{f.name}" for f in run.files)
    return RunScript([full], True)
