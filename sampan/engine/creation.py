"""Turning a create request into a :class:`Container`: names, the image's config merged in,
mounts parsed, and the per-container files (/etc/hostname, /etc/hosts, /etc/resolv.conf).

Pure where it can be (``merge_image_config``, ``parse_bind``, ``generate_name``) so that unit
tests cover the rules without a daemon.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.engine.model import (
    Container,
    ContainerSpec,
    HealthConfig,
    HostSpec,
    MountPoint,
    MountSpec,
)
from sampan.engine.specgen.process import merge_env
from sampan.units import ram_in_bytes

if TYPE_CHECKING:
    from sampan.engine.volumes import VolumeService

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
NETWORK_MODES_NOW = ("none", "host")

_LEFT = ("admiring", "blissful", "bold", "brave", "busy", "charming", "clever", "cool", "dazzling",
         "eager", "ecstatic", "elegant", "epic", "festive", "friendly", "gallant", "gifted", "happy",
         "hopeful", "jolly", "keen", "kind", "loving", "lucid", "modest", "nice", "peaceful",
         "quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "vibrant", "zen")
_RIGHT = ("albattani", "bardeen", "bell", "bohr", "curie", "darwin", "einstein", "euler", "fermi",
          "feynman", "galileo", "gauss", "hopper", "hypatia", "kepler", "lamarr", "lovelace",
          "mayer", "meitner", "newton", "noether", "pascal", "raman", "ritchie", "shannon",
          "thompson", "tesla", "turing", "wozniak", "yalow")


def generate_name(taken: set[str]) -> str:
    for attempt in range(100):
        name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
        if attempt > 10:
            name += str(random.randint(0, 99))
        if name not in taken:
            return name
    raise errors.Internal("could not generate a unique container name")


def check_name(name: str) -> str:
    """The name without its leading "/"; Docker's error for an invalid one."""
    if not NAME_RE.match(name):
        raise errors.InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def merge_image_config(spec: ContainerSpec, image_config: dict[str, Any]) -> ContainerSpec:
    """Docker's merge of the image's config into the container's (daemon/create.go merge)."""
    ic = image_config or {}
    if not spec.entrypoint and not spec.cmd:
        spec.entrypoint = list(ic.get("Entrypoint") or [])
        spec.cmd = list(ic.get("Cmd") or [])
    elif not spec.entrypoint and spec.cmd:
        spec.entrypoint = list(ic.get("Entrypoint") or [])
    spec.env = merge_env(list(ic.get("Env") or []), spec.env)
    spec.working_dir = spec.working_dir or str(ic.get("WorkingDir") or "")
    spec.user = spec.user or str(ic.get("User") or "")
    spec.labels = {**(ic.get("Labels") or {}), **spec.labels}
    ports = list(spec.exposed_ports)
    for p in ic.get("ExposedPorts") or {}:
        if p not in ports:
            ports.append(p)
    spec.exposed_ports = ports
    vols = list(spec.volumes)
    for v in ic.get("Volumes") or {}:
        if v not in vols:
            vols.append(v)
    spec.volumes = vols
    spec.stop_signal = spec.stop_signal or str(ic.get("StopSignal") or "")
    spec.on_build = list(ic.get("OnBuild") or [])
    spec.shell = list(ic.get("Shell") or [])
    hc = ic.get("Healthcheck")
    if hc and spec.healthcheck is None:
        spec.healthcheck = HealthConfig(
            test=list(hc.get("Test") or []), interval_ns=int(hc.get("Interval") or 0),
            timeout_ns=int(hc.get("Timeout") or 0), start_period_ns=int(hc.get("StartPeriod") or 0),
            start_interval_ns=int(hc.get("StartInterval") or 0), retries=int(hc.get("Retries") or 0),
        )
    elif spec.healthcheck is not None and hc:
        base = spec.healthcheck  # zero fields inherit the image's (Docker's merge)
        if not base.test:
            base.test = list(hc.get("Test") or [])
        base.interval_ns = base.interval_ns or int(hc.get("Interval") or 0)
        base.timeout_ns = base.timeout_ns or int(hc.get("Timeout") or 0)
        base.start_period_ns = base.start_period_ns or int(hc.get("StartPeriod") or 0)
        base.start_interval_ns = base.start_interval_ns or int(hc.get("StartInterval") or 0)
        base.retries = base.retries or int(hc.get("Retries") or 0)
    return spec


def command(spec: ContainerSpec) -> tuple[str, list[str]]:
    """(Path, Args) as inspect shows them; an error when there is nothing to run."""
    argv = [*spec.entrypoint, *spec.cmd]
    if not argv:
        raise errors.InvalidArgument("no command specified")
    return argv[0], argv[1:]


def parse_bind(bind: str) -> MountSpec:
    """``-v`` syntax: ``SRC:DST[:OPTS]`` (SRC a host path or a volume name) or ``DST``."""
    parts = bind.split(":")
    if len(parts) == 1:
        spec = MountSpec(type="volume", target=parts[0])
    elif len(parts) in (2, 3):
        src, dst = parts[0], parts[1]
        if not src:
            raise errors.InvalidArgument(f"invalid volume specification: '{bind}'")
        spec = MountSpec(type="bind" if src.startswith("/") else "volume", target=dst, source=src)
        for opt in parts[2].split(",") if len(parts) == 3 else []:
            if opt == "ro":
                spec.read_only = True
            elif opt == "rw":
                spec.read_only = False
            elif opt in ("z", "Z", "consistent", "cached", "delegated"):
                pass
            elif opt in ("private", "rprivate", "shared", "rshared", "slave", "rslave"):
                spec.propagation = opt
            elif opt == "nocopy":
                spec.no_copy = True
            else:
                raise errors.InvalidArgument(f"invalid mode: {opt}")
    else:
        raise errors.InvalidArgument(f"invalid volume specification: '{bind}'")
    if not spec.target.startswith("/"):
        raise errors.InvalidArgument(
            f"invalid volume specification: '{bind}': invalid mount config for type \"{spec.type}\": "
            "invalid mount path: '" + spec.target + "' mount path must be absolute"
        )
    if spec.target == "/":
        raise errors.InvalidArgument(f"invalid volume specification: '{bind}': destination can't be '/'")
    return spec


def parse_tmpfs(target: str, options: str) -> MountSpec:
    opts = [o for o in options.split(",") if o]
    spec = MountSpec(type="tmpfs", target=target)
    for o in opts:
        if o == "ro":
            spec.read_only = True
        elif o != "rw":
            spec.options.append(o)
    return spec


def user_mounts(host: HostSpec, image_volumes: list[str]) -> list[MountSpec]:
    """Every mount the container asked for, later ones winning at the same target; image
    VOLUMEs not covered by one become anonymous volumes."""
    out: dict[str, MountSpec] = {}
    for v in image_volumes:
        out[os.path.normpath(v)] = MountSpec(type="volume", target=os.path.normpath(v))
    for b in host.binds:
        m = parse_bind(b)
        out[os.path.normpath(m.target)] = m
    for m in host.mounts:
        if m.type not in ("bind", "volume", "tmpfs"):
            raise errors.InvalidArgument(f"invalid mount config for type \"{m.type}\": mount type unknown")
        if not m.target.startswith("/"):
            raise errors.InvalidArgument(f"invalid mount config for type \"{m.type}\": invalid mount path: '{m.target}' mount path must be absolute")
        if m.type == "bind":
            if not m.source:
                raise errors.InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
            if not os.path.exists(m.source):
                raise errors.InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: {m.source}')
        out[os.path.normpath(m.target)] = m
    for target, opts in host.tmpfs.items():
        out[os.path.normpath(target)] = parse_tmpfs(target, opts)
    return list(out.values())


def write_etc_files(c: Container, bundle_dir: str) -> None:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container (bind-mounted in)."""
    hostname = c.spec.hostname or c.id[:12]
    c.hostname_path = os.path.join(bundle_dir, "hostname")
    c.hosts_path = os.path.join(bundle_dir, "hosts")
    c.resolv_conf_path = os.path.join(bundle_dir, "resolv.conf")
    _write(c.hostname_path, hostname + "\n")
    if c.host.network_mode == "host":
        hosts = _read("/etc/hosts")
    else:
        hosts = (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n"
        )
    for extra in c.host.extra_hosts:
        name, _, addr = extra.partition(":")
        if not addr:
            raise errors.InvalidArgument(f"invalid IP address in add-host: {extra!r}")
        hosts += f"{addr}\t{name}\n"
    _write(c.hosts_path, hosts)
    resolv = _read("/etc/resolv.conf")
    if c.host.dns or c.host.dns_search or c.host.dns_options:
        kept = [ln for ln in resolv.splitlines() if not ln.startswith(("nameserver", "search", "options"))]
        lines = kept + [f"nameserver {d}" for d in c.host.dns]
        if c.host.dns_search:
            lines.append("search " + " ".join(c.host.dns_search))
        if c.host.dns_options:
            lines.append("options " + " ".join(c.host.dns_options))
        resolv = "\n".join(lines) + "\n"
    _write(c.resolv_conf_path, resolv)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def parse_size(text: str) -> int:
    """``10m``, ``1g``, ``512k``, ``100`` (bytes) as Docker's units.RAMInBytes."""
    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc)) from None


def mount_point(m: MountSpec, volumes: VolumeService, made: list[str]) -> MountPoint:
    """The mount point for one requested mount; creates a named or anonymous volume if needed
    (its name is appended to ``made``, for the caller's rollback)."""
    if m.type == "bind":
        if not os.path.exists(m.source):
            os.makedirs(m.source, exist_ok=True)  # -v creates a missing host directory
        return MountPoint(type="bind", destination=m.target, source=m.source, rw=not m.read_only,
                          mode="ro" if m.read_only else "", propagation=m.propagation or "rprivate")
    if m.type == "tmpfs":
        return MountPoint(type="tmpfs", destination=m.target, rw=not m.read_only, mode=",".join(m.options))
    name = m.source
    anonymous = not name
    if not name or not volumes.exists(name):
        v = volumes.create(name, labels=dict(m.labels), anonymous=anonymous)
        name = v.name
        made.append(name)
    mode = "ro" if m.read_only else ("z" if not anonymous else "")
    if m.no_copy:
        mode = ",".join(x for x in (mode, "nocopy") if x)
    return MountPoint(type="volume", destination=m.target, source=volumes.path(name), name=name,
                      driver="local", mode=mode, rw=not m.read_only, anonymous=anonymous)


def volumes_from(get: Callable[[str], Container], sources: list[str], taken: set[str]) -> list[MountPoint]:
    """``--volumes-from NAME[:ro|rw]``: the other container's volumes and binds, at the
    same destinations (the container's own mounts win)."""
    out: list[MountPoint] = []
    for item in sources:
        name, _, mode = item.partition(":")
        if mode not in ("", "ro", "rw"):
            raise errors.InvalidArgument(f"invalid mode for volumes-from: {mode}")
        other = get(name)
        for mp in other.mount_points:
            if mp.type == "tmpfs" or mp.destination in taken:
                continue
            taken.add(mp.destination)
            rw = mp.rw if not mode else mode == "rw"
            out.append(dataclasses.replace(mp, rw=rw, mode="ro" if not rw else mp.mode.replace("ro", "").strip(","),
                                           anonymous=False))
    return out

# ------------------------------------------------------------------ start
