"""Security: capabilities, --privileged, no-new-privileges, seccomp, masked/read-only paths.

``--privileged`` grants every capability in the HOST's bounding set (read from
``/proc/self/status`` ``CapBnd``): this machine's root lacks CAP_SYS_RESOURCE, and asking the
kernel for a capability the daemon does not hold fails (dockerd fails exactly there).
Masked and read-only paths are dropped when privileged, and /sys is mounted read-write.
"""

from __future__ import annotations

import json
import os
import stat

from sampan import errors
from sampan._sys.caps import NAMES as CAP_NAMES
from sampan.engine.specgen import Spec, SpecContext
from sampan.oci import defaults


def host_capabilities(status_path: str = "/proc/self/status") -> list[str]:
    """The capability names in this process's bounding set."""
    mask = 0
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
    except (OSError, ValueError):
        return list(CAP_NAMES)
    return [name for i, name in enumerate(CAP_NAMES) if mask >> i & 1]


def _cap_name(name: str) -> str:
    upper = name.strip().upper()
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if upper != "ALL" and full not in CAP_NAMES:
        raise errors.InvalidArgument(f"unknown capability: {name!r}")
    return "ALL" if upper == "ALL" else full


def capabilities(privileged: bool, cap_add: list[str], cap_drop: list[str], host: list[str]) -> list[str]:
    """Docker's TweakCapabilities: defaults (or all when privileged), then add, then drop."""
    if privileged:
        return sorted(host)
    adds = [_cap_name(c) for c in cap_add]
    drops = [_cap_name(c) for c in cap_drop]
    base = [] if "ALL" in drops else list(defaults.DEFAULT_CAPABILITIES)
    if "ALL" in adds:
        base = list(host)
    for cap in adds:
        if cap != "ALL" and cap not in base:
            base.append(cap)
    return [c for c in base if c not in drops or c in adds]


def with_security(spec: Spec, ctx: SpecContext) -> None:
    host = ctx.container.host
    caps = capabilities(host.privileged, host.cap_add, host.cap_drop, host_capabilities())
    process = spec["process"]
    process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    if process["user"]["uid"] != 0:  # a non-root user keeps no effective capabilities
        process["capabilities"]["effective"] = []
        process["capabilities"]["permitted"] = []
    linux = spec["linux"]
    seccomp = "default"
    for opt in host.security_opt:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges":
            process["noNewPrivileges"] = value.lower() in ("", "true", "1") if sep else True
        elif key == "seccomp":
            seccomp = value
        elif key in ("apparmor", "label", "systempaths"):
            if key == "systempaths" and value == "unconfined":
                linux["maskedPaths"] = []
                linux["readonlyPaths"] = []
        else:
            raise errors.InvalidArgument(f'Invalid --security-opt: "{opt}"')
    if not host.privileged:
        linux.setdefault("maskedPaths", list(defaults.MASKED_PATHS))
        linux.setdefault("readonlyPaths", list(defaults.READONLY_PATHS))
        if seccomp in ("", "default", "builtin"):
            linux["seccomp"] = defaults.default_seccomp(caps)
        elif seccomp != "unconfined":
            linux["seccomp"] = _seccomp_file(seccomp)
    elif seccomp not in ("", "default", "builtin", "unconfined"):
        linux["seccomp"] = _seccomp_file(seccomp)
    if host.privileged:
        linux["devices"] = host_devices()
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]


def _seccomp_file(value: str) -> dict[str, object]:
    """A seccomp profile given as JSON text (the CLI sends the file's content) or a path."""
    text = value
    if not value.lstrip().startswith("{"):
        try:
            with open(value) as f:
                text = f.read()
        except OSError as exc:
            raise errors.InvalidArgument(f"opening seccomp profile ({value}) failed: {exc.strerror}") from exc
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidArgument(f"decoding seccomp profile failed: {exc}") from exc
    if not isinstance(profile, dict):
        raise errors.InvalidArgument("decoding seccomp profile failed: not a JSON object")
    if "syscalls" in profile and any("names" in s or "name" in s for s in profile.get("syscalls") or []):
        syscalls = []
        for s in profile.get("syscalls") or []:
            names = s.get("names") or ([s["name"]] if s.get("name") else [])
            entry = {k: v for k, v in s.items() if k in ("action", "errnoRet", "args")}
            syscalls.append({"names": names, **entry})
        arches = profile.get("architectures") or []
        for m in profile.get("archMap") or []:
            arches += [m.get("architecture"), *(m.get("subArchitectures") or [])]
        out: dict[str, object] = {"defaultAction": profile.get("defaultAction", "SCMP_ACT_ALLOW"),
                                  "architectures": [a for a in arches if a], "syscalls": syscalls}
        if profile.get("defaultErrnoRet") is not None:
            out["defaultErrnoRet"] = profile["defaultErrnoRet"]
        return out
    return profile


def host_devices(root: str = "/dev") -> list[dict[str, object]]:
    """Every character and block device directly in the host's /dev (privileged containers)."""
    out: list[dict[str, object]] = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return out
    for name in entries:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) or name in ("console", "ptmx", "tty"):
            continue
        out.append({
            "path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
        })
    return out
