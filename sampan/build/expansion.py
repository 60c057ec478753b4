"""Variable expansion of parsed instructions, step by step, as the builder needs it.

Which instructions expand what (BuildKit's ``Expand`` methods; moby's ``replaceEnvAllowed``):
ENV and LABEL keys and values; ADD and COPY sources, destination, ``--chown``, ``--chmod``,
``--checksum`` (ADD) and unquoted heredoc bodies (COPY ``--from`` refuses variables, as
BuildKit does); WORKDIR, USER, VOLUME, STOPSIGNAL; ARG names and defaults; EXPOSE (split into words); RUN's ``--mount`` values; FROM's
image with the meta ARGs only (:func:`stage_base`).  RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK
and ONBUILD are not expanded: the shell in the container does it (or the trigger's build).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from sampan.build import instructions as ins
from sampan.build.runmount import parse_mount
from sampan.build.shellwords import Lexer
from sampan.errors import DockerfileParseError, InvalidArgument

#: ARGs every build knows without declaring them (their values are not in the image history).
PREDEFINED_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)


T = TypeVar("T", bound=ins.Instruction)


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word (``$VAR``, ``${VAR:-x}``, quotes) against ``env``."""
    return Lexer(escape).process_word(word, env)


def expand(step: T, env: Mapping[str, str], escape: str = "\\") -> T:
    """A copy of ``step`` with its variables expanded, for the instructions that expand
    (:data:`~sampan.build.instructions.EXPANDING_INSTRUCTIONS`); others come back unchanged.
    Heredoc bodies of COPY/ADD whose marker is unquoted are expanded too."""

    def word(value: str) -> str:
        return expand_word(value, env, escape)

    if isinstance(step, ins.Env):
        env_pairs = [ins.KeyValue(word(kv.key), word(kv.value), kv.no_delim) for kv in step.env]
        return dataclasses.replace(step, env=env_pairs)
    if isinstance(step, ins.Label):
        labels = [ins.KeyValue(word(kv.key), word(kv.value), kv.no_delim) for kv in step.labels]
        return dataclasses.replace(step, labels=labels)
    if isinstance(step, ins.SourcesAndDest):
        raw = Lexer("\\", skip_process_quotes=True)  # bodies: backslash, quotes kept
        contents = [
            dataclasses.replace(c, data=raw.process_word(c.data, env)) if c.expand else c
            for c in step.contents
        ]
        changes: dict[str, Any] = {
            "sources": [word(s) for s in step.sources],
            "dest": word(step.dest),
            "chown": word(step.chown),
            "chmod": word(step.chmod),
            "contents": contents,
        }
        if isinstance(step, ins.Add):
            changes["checksum"] = word(step.checksum)
        if isinstance(step, ins.Copy) and step.from_ and _expands(step.from_, escape):
            raise InvalidArgument(
                "variable expansion is not supported for --from, define a new stage with "
                "FROM using ARG from global scope as a workaround"
            )
        return dataclasses.replace(step, **changes)
    if isinstance(step, ins.Workdir):
        return dataclasses.replace(step, path=word(step.path))
    if isinstance(step, ins.User):
        return dataclasses.replace(step, user=word(step.user))
    if isinstance(step, ins.StopSignal):
        return dataclasses.replace(step, signal=word(step.signal))
    if isinstance(step, ins.Volume):
        return dataclasses.replace(step, volumes=[word(v) for v in step.volumes])
    if isinstance(step, ins.Expose):
        lexer = Lexer(escape)
        ports = [p for port in step.ports for p in lexer.process_words(port, env)]
        return dataclasses.replace(step, ports=ports)
    if isinstance(step, ins.Arg):
        defs = [
            ins.ArgDef(word(a.key), None if a.default is None else word(a.default))
            for a in step.args
        ]
        return dataclasses.replace(step, args=defs)
    if isinstance(step, ins.Run) and step.mounts:
        mounts = [parse_mount(m.spec, word) for m in step.mounts]
        return dataclasses.replace(step, mounts=mounts)
    return step


def stage_base(stage: ins.Stage, meta_values: Mapping[str, str], escape: str = "\\") -> str:
    """The image (or stage) a FROM names, its meta ARGs expanded; refuses a blank result."""
    try:
        base = expand_word(stage.base, meta_values, escape)
    except InvalidArgument as exc:
        raise DockerfileParseError(exc.message, stage.line) from None
    if not base:
        raise DockerfileParseError(f"base name ({stage.base}) should not be blank", stage.line)
    return base


def stage_platform(stage: ins.Stage, meta_values: Mapping[str, str], escape: str = "\\") -> str:
    """A FROM's ``--platform`` with the meta ARGs expanded ("" when not given); the builder
    adds BuildKit's automatic ``BUILDPLATFORM``/``TARGETPLATFORM`` ARGs to ``meta_values``."""
    try:
        return expand_word(stage.platform, meta_values, escape) if stage.platform else ""
    except InvalidArgument as exc:
        raise DockerfileParseError(exc.message, stage.line) from None


def _expands(word: str, escape: str) -> bool:
    return Lexer(escape).process_word(word, {}) != word


def resolve_meta_args(
    meta_args: list[ins.ArgDef], build_args: Mapping[str, str], escape: str = "\\"
) -> dict[str, str]:
    """The values of the ARGs before the first FROM: a build arg overrides the default,
    defaults may refer to earlier meta ARGs; an ARG with neither stays unset."""
    values: dict[str, str] = {}
    for arg in meta_args:
        if arg.key in build_args:
            values[arg.key] = build_args[arg.key]
        elif arg.default is not None:
            values[arg.key] = expand_word(arg.default, values, escape)
    return values


class StageVariables:
    """The variables one stage's instructions see, updated as its ARG and ENV steps run.

    Rules (Docker's): an ``ARG`` makes a name usable from that step on; its value is the build
    arg of that name if given, else its default (expanded with what is visible so far), else —
    for ``ARG NAME`` without default — the meta ARG's value; with none of these it stays unset.
    ``ENV`` always wins over an ARG of the same name.  The proxy ARGs (:data:`PREDEFINED_ARGS`)
    reach RUN steps from build args without being declared.  ``unused_build_args`` lists build
    args no ARG consumed (Docker warns about them)."""

    def __init__(
        self,
        *,
        build_args: Mapping[str, str],
        meta_values: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        escape: str = "\\",
    ) -> None:
        self.build_args = dict(build_args)
        self.meta_values = dict(meta_values or {})
        self.env: dict[str, str] = dict(env or {})
        self.args: dict[str, str] = {}
        self.escape = escape
        self.consumed: set[str] = set()

    def visible(self) -> dict[str, str]:
        """What ``$NAME`` expands to in the next step."""
        return {**self.args, **self.env}

    def declare(self, step: ins.Arg) -> None:
        """Apply an ARG step (its names and defaults expanded first, as Docker does)."""
        for arg in step.args:
            key = expand_word(arg.key, self.visible(), self.escape)
            if key in self.build_args:
                self.args[key] = self.build_args[key]
                self.consumed.add(key)
            elif arg.default is not None:
                self.args[key] = expand_word(arg.default, self.visible(), self.escape)
            elif key in self.meta_values:
                self.args[key] = self.meta_values[key]
            else:
                self.args.pop(key, None)

    def set_env(self, step: ins.Env) -> None:
        """Apply an ENV step.  All its pairs are expanded with the values from *before* the
        step, as Docker documents (``ENV abc=bye def=$abc`` gives def the old abc)."""
        for kv in expand(step, self.visible(), self.escape).env:
            self.env[kv.key] = kv.value

    def run_environment(self) -> dict[str, str]:
        """The environment of a RUN step: ENV, then declared ARGs, then proxy build args."""
        proxies = {k: v for k, v in self.build_args.items() if k in PREDEFINED_ARGS}
        return {**proxies, **self.args, **self.env}

    def unused_build_args(self, meta_consumed: set[str] | None = None) -> list[str]:
        used = self.consumed | (meta_consumed or set()) | PREDEFINED_ARGS
        return sorted(k for k in self.build_args if k not in used)
