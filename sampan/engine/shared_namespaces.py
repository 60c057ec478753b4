"""``container:<name|id>`` modes: a container that joins another one's network, PID or IPC namespace.

``docker run --network container:web``, ``--pid container:web`` and ``--ipc container:web`` put
the new container into the namespaces of a running container ``web``, as a sidecar does:

* at create, ``validate`` checks the modes (Docker's wording: ``invalid PID mode``, ``conflicting
  options: ...``) and that each named container exists;
* at start, ``resolve`` finds each target's pid 1 (it must be running) and records it in
  ``Container.joined``; the spec then joins ``/proc/<pid>/ns/<kind>`` instead of creating a
  namespace.  A container on another's network also uses that container's hostname, /etc/hosts
  and /etc/resolv.conf (Docker's behaviour).  One in another's IPC namespace shares its System V
  IPC and POSIX message queues; its /dev/shm stays its own tmpfs (Docker's donor /dev/shm lives
  on the host; sampan's lives inside the container's mount namespace, which the kernel does not
  let another namespace bind from).

Nothing is torn down when such a container stops: it owns none of the namespaces it joined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sampan import errors
from sampan.engine import lifecycle, links

if TYPE_CHECKING:
    from sampan.engine.model import Container, ContainerSpec, HostSpec

Lookup = Callable[[str], "Container"]

#: OCI namespace type -> the file under /proc/<pid>/ns/
NS_FILES = {"network": "net", "pid": "pid", "ipc": "ipc"}
IPC_MODES = ("", "none", "private", "shareable", "host")
_WHAT = {"network": "network", "pid": "PID", "ipc": "IPC"}


def target(mode: str) -> str:
    """The container named by a ``container:<name|id>`` mode, or "" for any other mode."""
    return mode.partition(":")[2] if mode.startswith("container:") else ""


def ns_path(pid: int, kind: str) -> str:
    return f"/proc/{pid}/ns/{NS_FILES[kind]}"


def _modes(host: HostSpec) -> dict[str, str]:
    return {"network": host.network_mode, "pid": host.pid_mode, "ipc": host.ipc_mode}


def validate(spec: ContainerSpec, host: HostSpec, lookup: Lookup) -> None:
    """Docker's checks of ``--network``/``--pid``/``--ipc`` container modes, before the image's config merges in."""
    if host.pid_mode not in ("", "host") and not target(host.pid_mode):
        raise errors.InvalidArgument(f"invalid PID mode: {host.pid_mode}")
    if host.ipc_mode not in IPC_MODES and not target(host.ipc_mode):
        raise errors.InvalidArgument(f"invalid IPC mode: {host.ipc_mode}")
    net = host.network_mode
    if net == "container:" or (net.startswith("container:") and not target(net)):
        raise errors.InvalidArgument("Invalid network mode: invalid container format container:<name|id>")
    if target(net):
        conflicts = (
            (spec.hostname, "conflicting options: hostname and the network mode"),
            (host.dns, "conflicting options: dns and the network mode"),
            (host.extra_hosts, "conflicting options: custom host-to-IP mapping and the network mode"),
            (host.port_bindings or host.publish_all_ports,
             "conflicting options: port publishing and the container type network mode"),
            (spec.exposed_ports, "conflicting options: port exposing and the container type network mode"),
        )
        for given, message in conflicts:
            if given:
                raise errors.InvalidArgument(message)
    for mode in _modes(host).values():
        if target(mode):
            links.existing(lookup, target(mode))


def resolve(c: Container, lookup: Lookup) -> dict[str, int]:
    """OCI namespace type -> pid of the running container whose namespace ``c`` joins."""
    joined: dict[str, int] = {}
    for kind, mode in _modes(c.host).items():
        name = target(mode)
        if not name:
            continue
        other = lookup(name)
        if other.id == c.id:
            raise errors.InvalidArgument(f"cannot join own {_WHAT[kind]}")
        if other.state.status not in (lifecycle.RUNNING, lifecycle.PAUSED) or not other.state.pid:
            raise errors.Conflict(f"cannot join {_WHAT[kind]} of a non running container: {other.id}")
        joined[kind] = other.state.pid
    return joined


def share_etc_files(c: Container, lookup: Lookup) -> None:
    """On another container's network: use its hostname, /etc/hosts and /etc/resolv.conf."""
    name = target(c.host.network_mode)
    if not name:
        return
    other = lookup(name)
    c.hostname_path, c.hosts_path, c.resolv_conf_path = other.hostname_path, other.hosts_path, other.resolv_conf_path
    c.spec.hostname = other.spec.hostname or other.short_id
    c.spec.domainname = other.spec.domainname
