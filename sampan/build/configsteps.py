"""Metadata instructions: how each changes the image config, and its legacy history text.

The legacy builder commits every step; a metadata step (ENV, CMD, LABEL, ...) changes only
the config and records a history entry ``/bin/sh -c #(nop)  ENV X=1`` with
``empty_layer: true`` (two spaces: moby appends ``"#(nop) "`` and the text as two words of
the shell command and joins them with a space).  WORKDIR and COPY/ADD use one space
(``#(nop) WORKDIR /app``), as moby's ``withCmdCommentString``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sampan.build import instructions as ins
from sampan.errors import InvalidArgument

DEFAULT_SHELL = ["/bin/sh", "-c"]


def go_list(items: list[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    import json

    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: "0s", "500ms", "1.5s", "5m0s", "1h2m3s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_fraction(u, 1000)}µs"
    if u < 10**9:
        return f"{sign}{_fraction(u, 10**6)}ms"
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    head = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return f"{sign}{head}{_fraction(rest, 10**9)}s"


_RUNE_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
                 39: "\\'", 92: "\\\\"}


def go_rune(n: int) -> str:
    """Go's ``%q`` of an integer: a quoted character literal ('\\x03', 'A')."""
    if n in _RUNE_ESCAPES:
        return f"'{_RUNE_ESCAPES[n]}'"
    if 0x20 <= n < 0x7F:
        return f"'{chr(n)}'"
    if n < 0x80:
        return f"'\\x{n:02x}'"
    return f"'{chr(n)}'" if chr(n).isprintable() else f"'\\u{n:04x}'"


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def command_of(step: ins.ShellDependent, config: dict[str, Any]) -> list[str]:
    if step.prepend_shell and step.command:
        return [*shell_of(config), " ".join(step.command)]
    return list(step.command)


def nop(config: dict[str, Any], text: str) -> str:
    return " ".join([*shell_of(config), "#(nop) ", text])


def nop1(config: dict[str, Any], text: str) -> str:
    return " ".join([*shell_of(config), "#(nop) " + text])


def _healthcheck(step: ins.Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(step.test)}
    for key, value in (("Interval", step.interval), ("Timeout", step.timeout),
                       ("StartPeriod", step.start_period), ("StartInterval", step.start_interval),
                       ("Retries", step.retries)):
        if value:
            out[key] = value
    return out


def workdir_path(config: dict[str, Any], path: str) -> str:
    if not path.startswith("/"):
        path = posixpath.join(config.get("WorkingDir") or "/", path)
    return posixpath.normpath(path) if path != "/" else "/"


class ConfigState:
    """The runtime config (Docker's ``Config`` section) of a stage as its steps change it."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.config: dict[str, Any] = dict(base)
        self.author = ""
        self.cmd_set = False

    def apply(self, step: ins.Instruction) -> str:
        """Apply a metadata step; return its history text (after ``#(nop)``)."""
        c = self.config
        if isinstance(step, ins.Env):
            env = list(c.get("Env") or [])
            for kv in step.env:
                env = [e for e in env if e.partition("=")[0] != kv.key] + [f"{kv.key}={kv.value}"]
            c["Env"] = env
            return "ENV " + " ".join(f"{kv.key}={kv.value}" for kv in step.env)
        if isinstance(step, ins.Label):
            labels = dict(c.get("Labels") or {})
            for kv in step.labels:
                labels[kv.key] = kv.value
            c["Labels"] = labels
            return "LABEL " + " ".join(f"{kv.key}={kv.value}" for kv in step.labels)
        if isinstance(step, ins.Cmd):
            c["Cmd"] = command_of(step, c) or None
            self.cmd_set = True
            return f"CMD {go_list(c['Cmd'] or [])}"
        if isinstance(step, ins.Entrypoint):
            c["Entrypoint"] = command_of(step, c) or None
            if not self.cmd_set:
                c["Cmd"] = None
            return f"ENTRYPOINT {go_list(c['Entrypoint'] or [])}"
        if isinstance(step, ins.Expose):
            ports = dict(c.get("ExposedPorts") or {})
            for p in ins.exposed_ports(step.ports):
                ports[p] = {}
            c["ExposedPorts"] = ports
            return "EXPOSE " + " ".join(step.ports)
        if isinstance(step, ins.Volume):
            vols = dict(c.get("Volumes") or {})
            for v in step.volumes:
                if not v.strip():
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            c["Volumes"] = vols
            return "VOLUME [" + " ".join(step.volumes) + "]"  # moby: "VOLUME %v"
        if isinstance(step, ins.User):
            c["User"] = step.user
            return f"USER {step.user}"
        if isinstance(step, ins.StopSignal):
            c["StopSignal"] = step.signal
            return f"STOPSIGNAL {step.signal}"
        if isinstance(step, ins.Maintainer):
            self.author = step.maintainer
            return f"MAINTAINER {step.maintainer}"
        if isinstance(step, ins.Onbuild):
            c["OnBuild"] = [*(c.get("OnBuild") or []), step.expression]
            return f"ONBUILD {step.expression}"
        if isinstance(step, ins.Healthcheck):
            c["Healthcheck"] = _healthcheck(step)
            # moby (20.10): fmt.Sprintf("HEALTHCHECK %q", runConfig.Healthcheck)
            return (f"HEALTHCHECK &{{{go_list(step.test)} \"{go_duration(step.interval)}\""
                    f" \"{go_duration(step.timeout)}\" \"{go_duration(step.start_period)}\""
                    f" {go_rune(step.retries)}}}")
        if isinstance(step, ins.Shell):
            c["Shell"] = list(step.shell)
            return "SHELL [" + " ".join(step.shell) + "]"  # moby: "SHELL %v"
        if isinstance(step, ins.Arg):
            return "ARG " + " ".join(a.key if a.default is None else f"{a.key}={a.default}" for a in step.args)
        if isinstance(step, ins.Workdir):
            c["WorkingDir"] = workdir_path(c, step.path)
            return f"WORKDIR {c['WorkingDir']}"
        raise InvalidArgument(f"not a metadata instruction: {step.name}")
