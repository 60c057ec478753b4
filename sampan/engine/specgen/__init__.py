"""OCI spec generation as small composable options (containerd's ``With*`` spec opts).

``generate(ctx)`` starts from an empty runtime-spec document and applies, in order, one option
per concern; each option is a function ``(spec, ctx) -> None`` that edits the document in
place and raises ``errors.InvalidArgument`` naming the bad input::

    spec = generate(SpecContext(container=c, rootfs="/d/containers/<id>/rootfs", ...))
    # = with_process, with_security, with_namespaces, with_mounts, with_resources, with_init

The options live by concern: ``process.py`` (args, env, user, cwd, tty, rlimits),
``security.py`` (capabilities, seccomp, no-new-privileges, masked/read-only paths),
``mounts.py`` (default mounts, binds, volumes, tmpfs, /etc files), ``resources.py``
(linux.resources), ``init.py`` (--init).  Nothing here touches the host except reading:
the rootfs's /etc/passwd and /etc/group, the host's capability bounding set and devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sampan.engine import shared_namespaces
from sampan.engine.model import Container

Spec = dict[str, Any]


@dataclass
class ResolvedMount:
    """A mount whose host side is known: a bind source, a volume's _data dir, or a tmpfs."""

    type: str  # bind | volume | tmpfs
    target: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""
    options: list[str] = field(default_factory=list)


@dataclass
class SpecContext:
    container: Container
    rootfs: str
    image_env: list[str] = field(default_factory=list)
    mounts: list[ResolvedMount] = field(default_factory=list)
    init_path: str = "/usr/bin/tini-static"
    netns_path: str = ""  # a network namespace to join (bridge networking, later)


SpecOpt = Callable[[Spec, SpecContext], None]

#: runtime-spec version of the generated config.json (nothing here is newer than 1.1).
OCI_VERSION = "1.1.0"


def generate(ctx: SpecContext, opts: list[SpecOpt] | None = None) -> Spec:
    from sampan.engine.specgen import init, mounts, process, resources, security

    spec: Spec = {
        # The oldest version whose fields the document uses: crun 1.8 (Debian 12's) refuses
        # a config of 1.2.x ("unknown version specified"); runc and sampan-runtime take either.
        "ociVersion": OCI_VERSION,
        "process": {},
        "root": {"path": ctx.rootfs, "readonly": False},
        "hostname": "",
        "mounts": [],
        "linux": {},
    }
    for opt in opts or [
        process.with_process,
        security.with_security,
        with_namespaces,
        mounts.with_mounts,
        resources.with_resources,
        init.with_init,
    ]:
        opt(spec, ctx)
    return spec


def with_namespaces(spec: Spec, ctx: SpecContext) -> None:
    """mount, uts, cgroup; pid, ipc and network unless ``host``, or joined (``container:<id>``, a netns path)."""
    host = ctx.container.host
    c = ctx.container
    namespaces: list[dict[str, str]] = [{"type": "mount"}]
    for kind, mode in (("pid", host.pid_mode), ("ipc", host.ipc_mode)):
        if kind in c.joined:  # container:<id>: that container's namespace
            namespaces.append({"type": kind, "path": shared_namespaces.ns_path(c.joined[kind], kind)})
        elif mode != "host":
            namespaces.append({"type": kind})
    if host.uts_mode != "host":
        namespaces.append({"type": "uts"})
        spec["hostname"] = c.spec.hostname or c.id[:12]
        if c.spec.domainname:
            spec["domainname"] = c.spec.domainname
    if not host.privileged:
        namespaces.append({"type": "cgroup"})
    if "network" in c.joined:
        namespaces.append({"type": "network", "path": shared_namespaces.ns_path(c.joined["network"], "network")})
    elif ctx.netns_path:
        namespaces.append({"type": "network", "path": ctx.netns_path})
    elif host.network_mode != "host":
        namespaces.append({"type": "network"})
    spec["linux"]["namespaces"] = namespaces
    if host.sysctls:
        spec["linux"]["sysctl"] = dict(host.sysctls)
