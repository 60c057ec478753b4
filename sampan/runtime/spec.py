"""Validate and convert a bundle's config.json once into :mod:`sampan.oci.runtime` types.

Every error is an ``InvalidConfig`` whose field is the JSON path of the bad value, e.g.
``linux.namespaces[2].type: unknown namespace "foo"``.  Nothing is created on the way, so a bad
config leaves nothing behind.  Checks that need the filesystem are limited to the bundle
(rootfs exists and is a directory); the executable is looked up by the init, inside the rootfs.
"""

from __future__ import annotations

import os
import resource

from sampan._sys.caps import NUMBERS as CAP_NUMBERS
from sampan._sys.mount import (
    FLAG_OPTIONS,
    MS_BIND,
    MS_REC,
    PROPAGATION_OPTIONS,
)
from sampan.errors import InvalidConfig, NotFound
from sampan.oci import jsoncodec
from sampan.oci import runtime as oci

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import StrPath

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
)
SECCOMP_OPS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
#: mount options that only select behaviour of the runtime (never passed to the kernel)
_RUNTIME_OPTIONS = ("tmpcopyup", "rro", "rrw", "idmap", "ridmap", "x-", "copy-symlink")
#: flag words valid on bind mounts besides FLAG_OPTIONS and propagation
_CLEARING = ("rw", "suid", "dev", "exec")


def _type(value: Any, kind: type | tuple[type, ...], field: str) -> Any:
    if isinstance(value, bool) and kind in (int, (int,)):
        raise InvalidConfig(field, f"expected an integer, got {value!r}")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidConfig(field, f"expected {name}, got {type(value).__name__}")
    return value


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    _type(value, list, field)
    for i, item in enumerate(value):
        _type(item, str, f"{field}[{i}]")
    return tuple(value)


def _caps(value: Any, field: str) -> int:
    mask = 0
    for i, name in enumerate(_strings(value, field)):
        number = CAP_NUMBERS.get(name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper())
        if number is None:
            raise InvalidConfig(f"{field}[{i}]", f"unknown capability {name!r}")
        mask |= 1 << number
    return mask


def load(bundle: StrPath) -> oci.Spec:
    """Read ``bundle/config.json`` and return the validated :class:`Spec`."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            raw = jsoncodec.loads(f.read())
    except FileNotFoundError:
        raise NotFound(f"bundle {bundle}: config.json not found") from None
    except (OSError, ValueError) as exc:
        raise InvalidConfig("config.json", f"cannot parse {path}: {exc}") from None
    return convert(raw, bundle)


def convert(raw: Any, bundle: StrPath) -> oci.Spec:
    """Validate a parsed config.json (``bundle`` anchors a relative root.path)."""
    _type(raw, dict, "config.json")
    version = _type(raw.get("ociVersion", ""), str, "ociVersion")
    if not version:
        raise InvalidConfig("ociVersion", "missing")
    root = _type(raw.get("root"), dict, "root")
    root_path = _type(root.get("path"), str, "root.path")
    full_root = os.path.realpath(os.path.join(bundle, root_path))
    if not os.path.isdir(full_root):
        raise InvalidConfig("root.path", f"rootfs {full_root} does not exist or is not a directory")
    linux_raw = raw.get("linux") or {}
    _type(linux_raw, dict, "linux")
    if "process" not in raw:
        raise InvalidConfig("process", "missing")
    proc = process(raw["process"], "process")
    return oci.Spec(
        oci_version=version,
        root_path=full_root,
        root_readonly=bool(root.get("readonly", False)),
        process=proc,
        hostname=_type(raw.get("hostname", ""), str, "hostname"),
        domainname=_type(raw.get("domainname", ""), str, "domainname"),
        mounts=tuple(mount(m, f"mounts[{i}]") for i, m in enumerate(_type(raw.get("mounts") or [], list, "mounts"))),
        hooks=hooks(raw.get("hooks") or {}),
        linux=linux(linux_raw, raw),
        annotations=dict(_type(raw.get("annotations") or {}, dict, "annotations")),
    )


def process(raw: Any, field: str) -> oci.Process:
    _type(raw, dict, field)
    args = _strings(raw.get("args"), f"{field}.args")
    if not args or not args[0]:
        raise InvalidConfig(f"{field}.args", "must name a program to run")
    cwd = _type(raw.get("cwd", "/"), str, f"{field}.cwd")
    if not cwd.startswith("/"):
        raise InvalidConfig(f"{field}.cwd", f"must be an absolute path, got {cwd!r}")
    user_raw = _type(raw.get("user") or {}, dict, f"{field}.user")
    user = oci.User(
        uid=_type(user_raw.get("uid", 0), int, f"{field}.user.uid"),
        gid=_type(user_raw.get("gid", 0), int, f"{field}.user.gid"),
        umask=_type(user_raw["umask"], int, f"{field}.user.umask") if user_raw.get("umask") is not None else None,
        additional_gids=tuple(
            _type(g, int, f"{field}.user.additionalGids[{i}]")
            for i, g in enumerate(user_raw.get("additionalGids") or [])
        ),
    )
    caps = None
    if raw.get("capabilities") is not None:
        c = _type(raw["capabilities"], dict, f"{field}.capabilities")
        caps = oci.Capabilities(
            **{k: _caps(c.get(k), f"{field}.capabilities.{k}") for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
        )
    rlimits = []
    for i, rl in enumerate(_type(raw.get("rlimits") or [], list, f"{field}.rlimits")):
        where = f"{field}.rlimits[{i}]"
        _type(rl, dict, where)
        name = _type(rl.get("type"), str, f"{where}.type")
        number = getattr(resource, name, None)
        if not name.startswith("RLIMIT_") or not isinstance(number, int):
            raise InvalidConfig(f"{where}.type", f"unknown rlimit {name!r}")
        soft = _rlim(_type(rl.get("soft"), int, f"{where}.soft"), f"{where}.soft")
        hard = _rlim(_type(rl.get("hard"), int, f"{where}.hard"), f"{where}.hard")
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            raise InvalidConfig(where, f"soft limit {soft} is above hard limit {hard}")
        rlimits.append(oci.Rlimit(number, soft, hard))
    size = None
    if raw.get("consoleSize"):
        cs = _type(raw["consoleSize"], dict, f"{field}.consoleSize")
        size = (_type(cs.get("height", 0), int, f"{field}.consoleSize.height"), _type(cs.get("width", 0), int, f"{field}.consoleSize.width"))
    oom = raw.get("oomScoreAdj")
    if oom is not None and not -1000 <= _type(oom, int, f"{field}.oomScoreAdj") <= 1000:
        raise InvalidConfig(f"{field}.oomScoreAdj", f"{oom} is outside -1000..1000")
    return oci.Process(
        args=args,
        env=_strings(raw.get("env"), f"{field}.env"),
        cwd=cwd,
        terminal=bool(raw.get("terminal", False)),
        console_size=size,
        user=user,
        capabilities=caps,
        rlimits=tuple(rlimits),
        no_new_privileges=bool(raw.get("noNewPrivileges", False)),
        oom_score_adj=oom,
    )


def mount(raw: Any, field: str) -> oci.Mount:
    _type(raw, dict, field)
    dest = _type(raw.get("destination"), str, f"{field}.destination")
    if not dest.startswith("/"):
        raise InvalidConfig(f"{field}.destination", f"must be an absolute path, got {dest!r}")
    options = _strings(raw.get("options"), f"{field}.options")
    kind = _type(raw.get("type") or "", str, f"{field}.type")
    bind = kind == "bind" or "bind" in options or "rbind" in options
    source = _type(raw.get("source") or kind or "none", str, f"{field}.source")
    if bind and not os.path.isabs(source):
        raise InvalidConfig(f"{field}.source", f"bind source must be an absolute path, got {source!r}")
    if bind and not os.path.exists(source):
        raise InvalidConfig(f"{field}.source", f"bind source {source} does not exist")
    flags = clear = propagation = 0
    data: list[str] = []
    recursive_ro = idmap = idmap_recursive = False
    for i, opt in enumerate(options):
        if opt in FLAG_OPTIONS:
            set_bits, clear_bits = FLAG_OPTIONS[opt]
            flags = (flags | set_bits) & ~clear_bits
            clear |= clear_bits
        elif opt in PROPAGATION_OPTIONS:
            propagation |= PROPAGATION_OPTIONS[opt]
        elif opt == "rro":
            recursive_ro = True
        elif opt in ("idmap", "ridmap"):
            if not bind:
                raise InvalidConfig(f"{field}.options[{i}]", f"{opt!r} needs a bind mount")
            idmap = True
            idmap_recursive = idmap_recursive or opt == "ridmap"
        elif opt.startswith(_RUNTIME_OPTIONS):
            continue
        elif bind:
            raise InvalidConfig(f"{field}.options[{i}]", f"unknown mount option {opt!r} for a bind mount")
        elif not opt or "," in opt:
            raise InvalidConfig(f"{field}.options[{i}]", f"bad mount option {opt!r}")
        else:
            data.append(opt)
    if bind:
        flags |= MS_BIND | (MS_REC if "rbind" in options else 0)
    if raw.get("uidMappings") or raw.get("gidMappings"):
        raise InvalidConfig(f"{field}.uidMappings", "per-mount id mappings are not supported (idmap uses the container's)")
    if not bind and not kind:
        raise InvalidConfig(f"{field}.type", "missing (and the mount is not a bind mount)")
    return oci.Mount(
        destination=os.path.normpath(dest), type=kind or "bind", source=source, flags=flags,
        clear=clear, propagation=propagation, data=",".join(data), options=options, bind=bind,
        recursive_ro=recursive_ro, idmap=idmap, idmap_recursive=idmap_recursive,
    )


def hooks(raw: Any) -> oci.Hooks:
    _type(raw, dict, "hooks")
    out: dict[str, tuple[oci.Hook, ...]] = {}
    for key, attr in (
        ("prestart", "prestart"), ("createRuntime", "create_runtime"),
        ("createContainer", "create_container"), ("startContainer", "start_container"),
        ("poststart", "poststart"), ("poststop", "poststop"),
    ):
        items = []
        for i, h in enumerate(_type(raw.get(key) or [], list, f"hooks.{key}")):
            where = f"hooks.{key}[{i}]"
            _type(h, dict, where)
            path = _type(h.get("path"), str, f"{where}.path")
            if not os.path.isabs(path):
                raise InvalidConfig(f"{where}.path", f"must be an absolute path, got {path!r}")
            timeout = h.get("timeout")
            if timeout is not None and _type(timeout, int, f"{where}.timeout") <= 0:
                raise InvalidConfig(f"{where}.timeout", "must be positive")
            items.append(oci.Hook(path, _strings(h.get("args"), f"{where}.args"), _strings(h.get("env"), f"{where}.env"), timeout))
        out[attr] = tuple(items)
    return oci.Hooks(**out)


def _mappings(raw: Any, field: str) -> tuple[oci.IDMapping, ...]:
    out = []
    for i, m in enumerate(_type(raw or [], list, field)):
        where = f"{field}[{i}]"
        _type(m, dict, where)
        out.append(oci.IDMapping(
            _type(m.get("containerID"), int, f"{where}.containerID"),
            _type(m.get("hostID"), int, f"{where}.hostID"),
            _type(m.get("size"), int, f"{where}.size"),
        ))
    return tuple(out)


def linux(raw: dict[str, Any], top: dict[str, Any]) -> oci.Linux:
    namespaces = []
    seen: set[str] = set()
    for i, ns in enumerate(_type(raw.get("namespaces") or [], list, "linux.namespaces")):
        where = f"linux.namespaces[{i}]"
        _type(ns, dict, where)
        kind = _type(ns.get("type"), str, f"{where}.type")
        if kind not in NAMESPACE_TYPES:
            raise InvalidConfig(f"{where}.type", f'unknown namespace "{kind}"')
        if kind in seen:
            raise InvalidConfig(f"{where}.type", f'namespace "{kind}" given twice')
        seen.add(kind)
        path = _type(ns.get("path") or "", str, f"{where}.path")
        if path and not os.path.exists(path):
            raise InvalidConfig(f"{where}.path", f"namespace path {path} does not exist")
        namespaces.append(oci.Namespace(kind, path))
    uid_maps = _mappings(raw.get("uidMappings"), "linux.uidMappings")
    gid_maps = _mappings(raw.get("gidMappings"), "linux.gidMappings")
    user_ns = "user" in seen
    if (uid_maps or gid_maps) and not user_ns:
        raise InvalidConfig("linux.uidMappings", "mappings given without a user namespace")
    if user_ns and not any(n.path for n in namespaces if n.type == "user") and not (uid_maps and gid_maps):
        raise InvalidConfig("linux.uidMappings", "a new user namespace needs uid and gid mappings")
    if any("idmap" in (m or {}).get("options", []) or "ridmap" in (m or {}).get("options", []) for m in top.get("mounts") or [] if isinstance(m, dict)) and not (user_ns and uid_maps):
        raise InvalidConfig("mounts", "idmap mounts need a new user namespace with uid/gid mappings")
    if top.get("hostname") and "uts" not in seen:
        raise InvalidConfig("hostname", "setting the hostname needs a new uts namespace")
    devices = []
    for i, d in enumerate(_type(raw.get("devices") or [], list, "linux.devices")):
        where = f"linux.devices[{i}]"
        _type(d, dict, where)
        kind = _type(d.get("type"), str, f"{where}.type")
        if kind not in ("c", "b", "u", "p"):
            raise InvalidConfig(f"{where}.type", f"unknown device type {kind!r}")
        path = _type(d.get("path"), str, f"{where}.path")
        if not path.startswith("/dev/"):
            raise InvalidConfig(f"{where}.path", f"device path must be under /dev, got {path!r}")
        devices.append(oci.Device(
            path, kind,
            _type(d.get("major", 0), int, f"{where}.major"), _type(d.get("minor", 0), int, f"{where}.minor"),
            _type(d.get("fileMode", 0o666), int, f"{where}.fileMode"),
            _type(d.get("uid", 0), int, f"{where}.uid"), _type(d.get("gid", 0), int, f"{where}.gid"),
        ))
    prop = raw.get("rootfsPropagation") or ""
    _type(prop, str, "linux.rootfsPropagation")
    if prop and prop not in PROPAGATION_OPTIONS:
        raise InvalidConfig("linux.rootfsPropagation", f"unknown propagation {prop!r}")
    sysctl = _type(raw.get("sysctl") or {}, dict, "linux.sysctl")
    for key, value in sysctl.items():
        _type(value, str, f"linux.sysctl.{key}")
        if "/" in key or ".." in key:
            raise InvalidConfig(f"linux.sysctl.{key}", "bad sysctl name")
    seccomp = raw.get("seccomp")
    if seccomp is not None:
        _seccomp(seccomp)
    resources = raw.get("resources")
    if resources is not None:
        _type(resources, dict, "linux.resources")
    offsets = []
    for clock, value in (_type(raw.get("timeOffsets") or {}, dict, "linux.timeOffsets")).items():
        if clock not in ("monotonic", "boottime"):
            raise InvalidConfig(f"linux.timeOffsets.{clock}", "unknown clock")
        _type(value, dict, f"linux.timeOffsets.{clock}")
        offsets.append((clock, int(value.get("secs", 0)), int(value.get("nanosecs", 0))))
    cgroups_path = raw.get("cgroupsPath")
    if cgroups_path is not None:
        _type(cgroups_path, str, "linux.cgroupsPath")
    return oci.Linux(
        namespaces=tuple(namespaces), uid_mappings=uid_maps, gid_mappings=gid_maps,
        devices=tuple(devices), cgroups_path=cgroups_path, resources=resources,
        rootfs_propagation=PROPAGATION_OPTIONS.get(prop, 0),
        masked_paths=_strings(raw.get("maskedPaths"), "linux.maskedPaths"),
        readonly_paths=_strings(raw.get("readonlyPaths"), "linux.readonlyPaths"),
        sysctl=tuple(sysctl.items()), seccomp=seccomp, time_offsets=tuple(offsets),
    )


def _seccomp(raw: Any) -> None:
    _type(raw, dict, "linux.seccomp")
    action = raw.get("defaultAction")
    if action not in SECCOMP_ACTIONS:
        raise InvalidConfig("linux.seccomp.defaultAction", f"unknown action {action!r}")
    for i, arch in enumerate(_strings(raw.get("architectures"), "linux.seccomp.architectures")):
        if not arch.startswith("SCMP_ARCH_"):
            raise InvalidConfig(f"linux.seccomp.architectures[{i}]", f"unknown architecture {arch!r}")
    for i, flag in enumerate(_strings(raw.get("flags"), "linux.seccomp.flags")):
        if flag not in SECCOMP_FLAGS:
            raise InvalidConfig(f"linux.seccomp.flags[{i}]", f"unknown flag {flag!r}")
    for i, rule in enumerate(_type(raw.get("syscalls") or [], list, "linux.seccomp.syscalls")):
        where = f"linux.seccomp.syscalls[{i}]"
        _type(rule, dict, where)
        if not _strings(rule.get("names"), f"{where}.names"):
            raise InvalidConfig(f"{where}.names", "empty")
        if rule.get("action") not in SECCOMP_ACTIONS:
            raise InvalidConfig(f"{where}.action", f"unknown action {rule.get('action')!r}")
        for j, arg in enumerate(_type(rule.get("args") or [], list, f"{where}.args")):
            _type(arg, dict, f"{where}.args[{j}]")
            idx = _type(arg.get("index"), int, f"{where}.args[{j}].index")
            if not 0 <= idx <= 5:
                raise InvalidConfig(f"{where}.args[{j}].index", f"{idx} is not 0..5")
            if arg.get("op") not in SECCOMP_OPS:
                raise InvalidConfig(f"{where}.args[{j}].op", f"unknown operator {arg.get('op')!r}")
            _type(arg.get("value", 0), int, f"{where}.args[{j}].value")


_RLIM_MAX = (1 << 64) - 1  # the spec's uint64 "unlimited" (what dockerd writes for -1)


def _rlim(value: int, where: str) -> int:
    """An rlimit value as setrlimit takes it: 2**64-1 (and runc's tolerated -1) mean unlimited."""
    if value in (_RLIM_MAX, -1):
        return resource.RLIM_INFINITY
    if not 0 <= value < _RLIM_MAX:
        raise InvalidConfig(where, f"must be 0..2^64-1, got {value}")
    return value
