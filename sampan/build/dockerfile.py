"""Dockerfile text to stages of typed instructions.

A typical use by the builder (expansion helpers are in :mod:`sampan.build.expansion`)::

    df = parse_dockerfile(text)              # DockerfileParseError names the line
    metas = resolve_meta_args(df.meta_args, build_args)
    for stage in df.stages:
        base = stage_base(stage, metas, df.escape)         # FROM sees only the meta ARGs
        for step in stage.instructions:
            step = expand(step, env_and_args, df.escape)  # a copy; the parse is untouched
            ...

Two steps, as in BuildKit: :func:`sampan.build.parser.parse` gives nodes (line syntax only),
then each node becomes an :class:`~sampan.build.instructions.Instruction` here, with
BuildKit's checks and error texts ("unknown instruction: RUNN", "ENV requires at least one
argument", ...).  ARGs before the first FROM are the *meta ARGs* (usable in FROM lines); any
other instruction before the first FROM is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sampan.build import instructions as ins
from sampan.build.parser import Heredoc, Node, ParseResult, chomp_heredoc, parse, parse_heredoc
from sampan.build.runmount import Mount, parse_mount
from sampan.build.shellwords import go_quote
from sampan.errors import DockerfileParseError, InvalidArgument

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its stages, the ARGs before the first FROM, and its directives."""

    stages: list[ins.Stage]
    meta_args: list[ins.ArgDef] = field(default_factory=list)
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def stage(self, name_or_index: str) -> ins.Stage:
        """A stage by ``AS`` name (case-insensitive) or by index, as ``--target``/``--from``."""
        wanted = name_or_index.lower()
        for stage in reversed(self.stages):  # a duplicated name means the last stage
            if stage.name and stage.name == wanted:
                return stage
        if name_or_index.isdigit() and int(name_or_index) < len(self.stages):
            return self.stages[int(name_or_index)]
        raise InvalidArgument(f"target stage {go_quote(name_or_index)} could not be found")


def parse_dockerfile(source: str | bytes) -> Dockerfile:
    """Parse a whole Dockerfile.  Raises :class:`DockerfileParseError` naming the line."""
    result: ParseResult = parse(source)
    stages: list[ins.Stage] = []
    meta: list[ins.ArgDef] = []
    names: set[str] = set()
    warnings = list(result.warnings)
    for node in result.nodes:
        try:
            item = from_node(node)
        except DockerfileParseError:
            raise
        except InvalidArgument as exc:
            raise DockerfileParseError(exc.message, node.start_line) from None
        if isinstance(item, ins.Stage):
            if item.name in names:
                warnings.append(
                    f"Duplicate stage name {go_quote(item.name)}, stage names should be unique"
                )
            if item.name:
                names.add(item.name)
            item.index = len(stages)
            stages.append(item)
        elif not stages and isinstance(item, ins.Arg):
            meta.extend(item.args)
        elif not stages:
            raise DockerfileParseError("no build stage in current context", node.start_line)
        else:
            stages[-1].instructions.append(item)
    return Dockerfile(stages, meta, result.escape, result.directives, warnings)


def from_node(node: Node) -> ins.Instruction | ins.Stage:
    """One parser node to its typed instruction (or a Stage for FROM)."""
    builder = _BUILDERS.get(node.name)
    if builder is None:
        raise InvalidArgument(f"unknown instruction: {node.cmd}")
    return builder(node)


def parse_trigger(expression: str, *, line: int = 0) -> ins.Instruction:
    """One ONBUILD trigger of a base image, run in a child's build (errors name ``line``,
    the child's FROM)."""
    try:
        nodes = parse(expression).nodes
        if len(nodes) != 1:
            raise InvalidArgument("onbuild trigger should be a single expression")
        item = from_node(nodes[0])
    except DockerfileParseError as exc:
        raise DockerfileParseError(exc.reason, line) from None
    except InvalidArgument as exc:
        raise DockerfileParseError(exc.message, line) from None
    if isinstance(item, ins.Stage):
        raise DockerfileParseError("FROM isn't allowed as an ONBUILD trigger", line)
    return item


# --- per instruction -----------------------------------------------------------------------


def _common(node: Node) -> dict[str, Any]:
    # the text the legacy builder prints as "Step N/M : <original>" (trimmed, as BuildKit's code)
    return {"original": node.original.strip(), "line": node.start_line}


def _no_flags(node: Node) -> None:
    ins.Flags(node.flags).parse()


def _at_least_one(node: Node, name: str) -> None:
    if not node.args:
        raise InvalidArgument(f"{name} requires at least one argument")


def _exactly_one(node: Node, name: str) -> str:
    if len(node.args) != 1:
        raise InvalidArgument(f"{name} requires exactly one argument")
    return node.args[0]


def _kvps(node: Node, name: str) -> list[ins.KeyValue]:
    _no_flags(node)
    if not node.args:
        raise InvalidArgument(f"{name} requires at least one argument")
    if len(node.args) % 3:
        raise InvalidArgument(f"Bad input to {name}, too many arguments")
    pairs = []
    for i in range(0, len(node.args), 3):
        if not node.args[i]:
            raise InvalidArgument(f"{name} names can not be blank")
        pairs.append(ins.KeyValue(node.args[i], node.args[i + 1], node.args[i + 2] == ""))
    return pairs


def _command_line(node: Node) -> dict[str, Any]:
    args = list(node.args) if node.json else ([" ".join(node.args)] if node.args else [])
    files = [
        ins.InlineFile(h.name, h.content, h.chomp, h.expand, h.file_descriptor)
        for h in node.heredocs
    ]
    return {"command": args, "prepend_shell": not node.json, "files": files}


def _from(node: Node) -> ins.Stage:
    args = node.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise InvalidArgument(
                f"invalid name for build stage: {go_quote(args[2])}, name can't start with "
                "a number or contain symbols"
            )
    elif len(args) != 1:
        raise InvalidArgument("FROM requires either one or three arguments")
    flags = ins.Flags(node.flags)
    flags.string("platform")
    flags.parse()
    return ins.Stage(
        base=args[0],
        name=name,
        platform=flags.get("platform"),
        original=node.original.strip(),
        line=node.start_line,
    )


def _run(node: Node) -> ins.Run:
    flags = ins.Flags(node.flags)
    flags.strings("mount")
    flags.string("network", "default")
    flags.string("security", "sandbox")
    flags.parse()
    network, security = flags.get("network"), flags.get("security")
    if network not in ("default", "none", "host"):
        raise InvalidArgument(f"invalid network mode {go_quote(network)}")
    if security not in ("sandbox", "insecure"):
        raise InvalidArgument(f"security {go_quote(security)} is not valid")
    mounts = []
    for spec in flags.lists["mount"]:
        # a spec with variables is checked again when the builder expands it
        mounts.append(parse_mount(spec) if "$" not in spec else Mount(spec=spec))
    return ins.Run(
        **_common(node),
        **_command_line(node),
        mounts=mounts,
        network=network,
        security=security,
        flags_used=list(flags.used),
    )


def _cmd(node: Node) -> ins.Cmd:
    _no_flags(node)
    return ins.Cmd(**_common(node), **_command_line(node))


def _entrypoint(node: Node) -> ins.Entrypoint:
    _no_flags(node)
    return ins.Entrypoint(**_common(node), **_command_line(node))


def _env(node: Node) -> ins.Env:
    return ins.Env(**_common(node), env=_kvps(node, "ENV"))


def _label(node: Node) -> ins.Label:
    return ins.Label(**_common(node), labels=_kvps(node, "LABEL"))


def _maintainer(node: Node) -> ins.Maintainer:
    value = _exactly_one(node, "MAINTAINER")
    _no_flags(node)
    return ins.Maintainer(**_common(node), maintainer=value)


def _heredoc_or_none(word: str) -> Heredoc | None:
    """A heredoc marker, or None also when the word does not lex (BuildKit's MustParseHeredoc)."""
    try:
        return parse_heredoc(word)
    except InvalidArgument:
        return None


def _sources(node: Node, name: str) -> dict[str, Any]:
    if len(node.args) < 2:
        raise InvalidArgument(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    *srcs, dest = node.args
    if _heredoc_or_none(dest) is not None:
        raise InvalidArgument(f"{name} cannot accept a heredoc as a destination")
    bodies = {h.name: h for h in node.heredocs}
    paths: list[str] = []
    contents: list[ins.InlineFile] = []
    for src in srcs:
        marker = _heredoc_or_none(src)  # also in JSON form, as BuildKit
        if marker is None:
            paths.append(src)
            continue
        body = bodies.get(marker.name)
        data = body.content if body else ""
        if marker.chomp:
            data = chomp_heredoc(data)
        contents.append(ins.InlineFile(marker.name, data, marker.chomp, marker.expand))
    return {"sources": paths, "contents": contents, "dest": dest}


def _add(node: Node) -> ins.Add:
    if len(node.args) < 2:
        _sources(node, "ADD")
    flags = ins.Flags(node.flags)
    for name in ("chown", "chmod", "checksum"):
        flags.string(name)
    for name in ("link", "keep-git-dir", "unpack"):
        flags.boolean(name)
    flags.strings("exclude")
    flags.parse()
    return ins.Add(
        **_common(node),
        **_sources(node, "ADD"),
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        link=flags.is_true("link"),
        excludes=flags.lists["exclude"],
        checksum=flags.get("checksum"),
        keep_git_dir=flags.is_true("keep-git-dir") if "keep-git-dir" in flags.used else None,
        unpack=flags.is_true("unpack") if "unpack" in flags.used else None,
    )


def _copy(node: Node) -> ins.Copy:
    if len(node.args) < 2:
        _sources(node, "COPY")
    flags = ins.Flags(node.flags)
    for name in ("chown", "chmod", "from"):
        flags.string(name)
    for name in ("link", "parents"):
        flags.boolean(name)
    flags.strings("exclude")
    flags.parse()
    return ins.Copy(
        **_common(node),
        **_sources(node, "COPY"),
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        link=flags.is_true("link"),
        excludes=flags.lists["exclude"],
        from_=flags.get("from"),
        parents=flags.is_true("parents"),
    )


def _onbuild(node: Node) -> ins.Onbuild:
    if node.sub is None:
        raise InvalidArgument("ONBUILD requires at least one argument")
    _no_flags(node)
    trigger = node.sub.cmd.upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for heredoc in node.heredocs:
        expression += "\n" + heredoc.content + heredoc.name
    return ins.Onbuild(**_common(node), expression=expression)


def _workdir(node: Node) -> ins.Workdir:
    path = _exactly_one(node, "WORKDIR")
    _no_flags(node)
    return ins.Workdir(**_common(node), path=path)


def _interval(flags: ins.Flags, name: str) -> int:
    value = flags.get(name)
    if not value:
        return 0
    ns = ins.parse_duration(value)
    if ns == 0:
        return 0
    if ns < 10**6:
        raise InvalidArgument(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _healthcheck(node: Node) -> ins.Healthcheck:
    _at_least_one(node, "HEALTHCHECK")
    kind = node.args[0].upper()
    rest = node.args[1:]
    if kind == "NONE":
        if rest:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return ins.Healthcheck(**_common(node), test=["NONE"])
    flags = ins.Flags(node.flags)
    for name in ("interval", "timeout", "start-period", "start-interval", "retries"):
        flags.string(name)
    flags.parse()
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    command = list(rest) if node.json else ([" ".join(rest)] if rest else [])
    if not command:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    retries = 0
    if flags.get("retries"):
        try:
            retries = int(flags.get("retries"), 10)
        except ValueError:
            raise InvalidArgument(
                f"strconv.ParseInt: parsing {go_quote(flags.get('retries'))}: invalid syntax"
            ) from None
        if retries < 0:
            raise InvalidArgument(f"--retries cannot be negative ({retries})")
    return ins.Healthcheck(
        **_common(node),
        test=["CMD" if node.json else "CMD-SHELL", *command],
        interval=_interval(flags, "interval"),
        timeout=_interval(flags, "timeout"),
        start_period=_interval(flags, "start-period"),
        start_interval=_interval(flags, "start-interval"),
        retries=retries,
    )


def _expose(node: Node) -> ins.Expose:
    _at_least_one(node, "EXPOSE")
    _no_flags(node)
    return ins.Expose(**_common(node), ports=sorted(node.args))


def _user(node: Node) -> ins.User:
    user = _exactly_one(node, "USER")
    _no_flags(node)
    return ins.User(**_common(node), user=user)


def _volume(node: Node) -> ins.Volume:
    _at_least_one(node, "VOLUME")
    _no_flags(node)
    volumes = [v.strip() for v in node.args]
    if any(not v for v in volumes):
        raise InvalidArgument("VOLUME specified can not be an empty string")
    return ins.Volume(**_common(node), volumes=volumes)


def _stopsignal(node: Node) -> ins.StopSignal:
    signal = _exactly_one(node, "STOPSIGNAL")
    return ins.StopSignal(**_common(node), signal=signal)


def _arg(node: Node) -> ins.Arg:
    _at_least_one(node, "ARG")
    defs = []
    for word in node.args:
        key, has_value, value = word.partition("=")
        if has_value and not key:
            raise InvalidArgument("ARG names can not be blank")
        defs.append(ins.ArgDef(key, value if has_value else None))
    return ins.Arg(**_common(node), args=defs)


def _shell(node: Node) -> ins.Shell:
    _no_flags(node)
    if not node.args:
        raise InvalidArgument("SHELL requires at least one argument")
    if not node.json:
        raise InvalidArgument("SHELL requires the arguments to be in JSON form")
    return ins.Shell(**_common(node), shell=list(node.args))


_BUILDERS: dict[str, Callable[[Node], ins.Instruction | ins.Stage]] = {
    "add": _add,
    "arg": _arg,
    "cmd": _cmd,
    "copy": _copy,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _maintainer,
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _user,
    "volume": _volume,
    "workdir": _workdir,
}
