"""Image configs: the OCI/Docker image config document, and ``docker import --change``.

An image config (OCI image-spec ``config.json``) holds ``architecture``, ``os``, ``created``,
``config`` (the runtime defaults: Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts,
Volumes, Labels, StopSignal, OnBuild), ``rootfs.diff_ids`` and ``history``.  Its canonical
bytes (``encode``) are what the image ID is the digest of.

``apply_changes`` takes Dockerfile-like lines as ``docker import -c`` and ``docker commit -c``
accept them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
"""

from __future__ import annotations

import json
import platform as host_platform
import shlex
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sampan.errors import InvalidArgument, NotImplementedFeature

ALLOWED_CHANGES = (
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def now_rfc3339() -> str:
    """The current time as Docker writes it in configs (RFC 3339, nanoseconds, UTC)."""
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def parse_time(text: str) -> float:
    """Unix time of an RFC 3339 timestamp (nanosecond fractions accepted); 0 if unparsable."""
    if not text:
        return 0.0
    s = text.strip()
    frac = ""
    if "." in s:
        head, _, tail = s.partition(".")
        digits = ""
        for i, c in enumerate(tail):
            if not c.isdigit():
                frac, s = "0." + digits, head + tail[i:]
                break
            digits += c
        else:
            frac, s = "0." + digits, head
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        base = datetime.fromisoformat(s).timestamp()
    except ValueError:
        return 0.0
    return base + (float(frac) if frac and frac != "0." else 0.0)


#: the operating systems and architectures containerd's platforms.Parse knows (GOOS and GOARCH values)
_OSES = frozenset([
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
    "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
])
_ARCHES = frozenset([
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64",
    "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x",
    "sparc", "sparc64", "wasm",
])


def host_platform_pair() -> tuple[str, str]:
    machine = host_platform.machine()
    return "linux", _ARCH.get(machine, machine)


def parse_platform(text: str) -> tuple[str, str, str]:
    """``os[/arch[/variant]]`` -> (os, arch, variant); empty = the host's."""
    host_os, host_arch = host_platform_pair()
    if not text:
        return host_os, host_arch, ""
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os[/arch[/variant]]")
    if len(parts) == 1 and parts[0] not in _OSES and _ARCH.get(parts[0], parts[0]) in _ARCHES:
        parts = ["linux", parts[0]]  # containerd's platforms.Parse: a lone architecture means linux
    if parts[0] not in _OSES:
        raise InvalidArgument(f"invalid platform {text!r}: unknown operating system or architecture")
    os_name = parts[0]
    arch = parts[1] if len(parts) > 1 else host_arch
    arch = _ARCH.get(arch, arch)
    return os_name, arch, parts[2] if len(parts) > 2 else ""


def encode(config: dict[str, Any]) -> bytes:
    """The canonical bytes of a config written by sampan (compact, keys in insertion order)."""
    return json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()


def new_config(
    *,
    diff_ids: list[str],
    created: str,
    platform: str = "",
    container_config: dict[str, Any] | None = None,
    comment: str = "",
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    os_name, arch, variant = parse_platform(platform)
    config: dict[str, Any] = {"architecture": arch}
    if comment:
        config["comment"] = comment
    config["config"] = container_config or {}
    config["created"] = created
    if history is not None:
        config["history"] = history
    config["os"] = os_name
    config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    if variant:
        config["variant"] = variant
    return config


def _words_or_json(instruction: str, value: str, *, shell: bool) -> list[str]:
    """A JSON array, or a shell-form string (wrapped in ``/bin/sh -c`` when ``shell``)."""
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    if shell:
        return ["/bin/sh", "-c", text]
    return text.split()


def _pairs(instruction: str, value: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"`` pairs, or the legacy ``k v`` form (one pair, rest of the line)."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise InvalidArgument(f"{instruction} {value}: {exc}") from None
    if not words:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, rest = value.strip().partition(" ")
        if not rest.strip():
            raise InvalidArgument(f"{instruction} must have two arguments")
        return [(key, rest.strip())]
    out = []
    for word in words:
        key, eq, val = word.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{instruction}: syntax error - can't find = in {word!r}. Must be of the form: name=value")
        out.append((key, val))
    return out


def apply_changes(container_config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Apply ``docker import -c`` lines to a config's ``config`` section; returns a new dict."""
    out: dict[str, Any] = json.loads(json.dumps(container_config))
    for line in changes:
        text = line.strip()
        if not text:
            continue
        instruction, _, value = text.partition(" ")
        word = instruction.upper()
        if word not in ALLOWED_CHANGES:
            if word in ("HEALTHCHECK",):
                raise NotImplementedFeature(f"{word} in --change is not supported yet")
            raise InvalidArgument(f"{instruction} is not a valid change command")
        value = value.strip()
        if word == "CMD":
            out["Cmd"] = _words_or_json(word, value, shell=True)
        elif word == "ENTRYPOINT":
            out["Entrypoint"] = _words_or_json(word, value, shell=True)
        elif word == "ENV":
            env = [e for e in out.get("Env") or [] if isinstance(e, str)]
            for key, val in _pairs(word, value):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={val}"]
            out["Env"] = env
        elif word == "LABEL":
            labels = dict(out.get("Labels") or {})
            for key, val in _pairs(word, value):
                labels[key] = val
            out["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for port in value.split():
                number, _, proto = port.partition("/")
                if not number.replace("-", "").isdigit():
                    raise InvalidArgument(f"invalid containerPort: {number}")
                ports[f"{number}/{proto or 'tcp'}"] = {}
            out["ExposedPorts"] = ports
        elif word == "VOLUME":
            vols = dict(out.get("Volumes") or {})
            for v in _words_or_json(word, value, shell=False):
                vols[v] = {}
            out["Volumes"] = vols
        elif word == "ONBUILD":
            out["OnBuild"] = [*(out.get("OnBuild") or []), value]
        else:
            if not value:
                raise InvalidArgument(f"{word} requires exactly one argument")
            key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[word]
            out[key] = value
    return out
