"""mounts: Docker's default mounts, then /etc files, binds, volumes and tmpfs, then --read-only.

User mounts replace a default mount at the same destination (``--tmpfs /dev/shm``...) and are
ordered parents first, so that ``-v /a`` then ``-v /a/b`` mount in that order.
"""

from __future__ import annotations

import os

from sampan import errors
from sampan.engine.specgen import ResolvedMount, Spec, SpecContext
from sampan.oci import defaults

DEFAULT_SHM_SIZE = 64 << 20
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


def with_mounts(spec: Spec, ctx: SpecContext) -> None:
    c = ctx.container
    host = c.host
    user_targets = {os.path.normpath(m.target) for m in ctx.mounts}
    out: list[dict[str, object]] = []
    for m in defaults.DEFAULT_MOUNTS:
        if m["destination"] in user_targets or (m["destination"] == "/dev/shm" and host.ipc_mode == "none"):
            continue
        entry = dict(m, options=list(m["options"]))
        if m["destination"] == "/dev/shm":
            size = host.shm_size or DEFAULT_SHM_SIZE
            entry["options"] = [o for o in entry["options"] if not str(o).startswith("size=")] + [f"size={size // 1024}k"]
        if host.privileged and m["destination"] in ("/sys", "/sys/fs/cgroup"):
            entry["options"] = [o for o in entry["options"] if o != "ro"] + ["rw"]
        if host.network_mode == "host" and m["destination"] == "/sys":
            entry = {"destination": "/sys", "type": "bind", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro" if not host.privileged else "rw"]}
        out.append(entry)
    for target, source in (("/etc/resolv.conf", c.resolv_conf_path), ("/etc/hostname", c.hostname_path),
                           ("/etc/hosts", c.hosts_path)):
        if source and target not in user_targets:
            opts = ["rbind"] + (["ro"] if host.readonly_rootfs else [])
            out.append({"destination": target, "type": "bind", "source": source, "options": opts})
    for um in sorted(ctx.mounts, key=lambda m: os.path.normpath(m.target).count("/")):
        out.append(mount_entry(um))
    spec["mounts"] = out
    spec["root"]["readonly"] = host.readonly_rootfs


def mount_entry(m: ResolvedMount) -> dict[str, object]:
    if not m.target.startswith("/"):
        raise errors.InvalidArgument(f"invalid mount config: mount path must be absolute: {m.target}")
    if m.type == "tmpfs":
        opts = ["nosuid", "nodev", "noexec", *m.options]
        if m.read_only:
            opts.append("ro")
        return {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}
    if m.type not in ("bind", "volume"):
        raise errors.InvalidArgument(f"invalid mount config: unknown mount type {m.type!r}")
    if not m.source:
        raise errors.InvalidArgument(f"invalid mount config for {m.target}: no source")
    # rprivate is what the container's mount namespace gives a bind anyway: only a different
    # propagation is asked for explicitly
    propagation = m.propagation or "rprivate"
    if propagation not in PROPAGATIONS:
        raise errors.InvalidArgument(f"invalid propagation mode: {propagation}")
    opts = ["rbind", *([propagation] if propagation != "rprivate" else []), *m.options]
    if m.read_only:
        opts.append("ro")
    return {"destination": m.target, "type": "bind", "source": m.source, "options": opts}
