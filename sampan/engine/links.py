"""Legacy container links: ``docker run --link db:database app``.

Docker's links predate user-defined networks; old tutorials and scripts still use them.  A link
gives the new container, at each start:

* /etc/hosts lines naming the linked container by its alias, its name and its short ID;
* on the default ``bridge`` network, Docker's link variables (``DATABASE_NAME=/app/database``,
  ``DATABASE_PORT=tcp://172.17.0.2:5432``, ``DATABASE_PORT_5432_TCP[_ADDR|_PORT|_PROTO]`` for each
  exposed port, and ``DATABASE_ENV_<name>`` for each of the linked container's own variables).

The linked container must be running and on the container's network.  ``HostConfig.Links`` is
kept as given (``name:alias``); inspect shows it as Docker does (``/db:/app/database``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sampan import errors
from sampan.engine import lifecycle

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService
    from sampan.engine.model import Container, HostSpec

Lookup = Callable[[str], "Container"]
_SKIPPED_ENV = ("HOME", "HOSTNAME", "PATH")


def parse(link: str) -> tuple[str, str]:
    """``name[:alias]`` -> (name, alias); the alias defaults to the name."""
    name, _, alias = link.partition(":")
    name, alias = name.lstrip("/"), (alias or name).lstrip("/")
    if not name or not alias or "/" in alias:
        raise errors.InvalidArgument(f"invalid link: {link!r} (want name:alias)")
    return name, alias


def validate(host: HostSpec, lookup: Lookup) -> None:
    """At create: Docker's conflicts, and every linked container exists."""
    if not host.links:
        return
    mode = host.network_mode
    if mode == "host":
        raise errors.InvalidArgument("conflicting options: host type networking can't be used with links. "
                                     "This would result in undefined behavior")
    if mode.startswith("container:"):
        raise errors.InvalidArgument("conflicting options: container type network can't be used with links. "
                                     "This would result in undefined behavior")
    for link in host.links:
        existing(lookup, parse(link)[0])


def existing(lookup: Lookup, name: str) -> Container:
    """The container ``name``; a 400 naming it when missing (a 404 would make clients pull the image)."""
    try:
        return lookup(name)
    except errors.NoSuchContainer as exc:
        raise errors.InvalidArgument(f"could not get container for {name}: {exc}") from None


@dataclass
class Resolved:
    hosts: list[str] = field(default_factory=list)  # "name:ip", as --add-host takes them
    env: list[str] = field(default_factory=list)


def resolve(c: Container, lookup: Lookup) -> Resolved:
    """At start, once the linked containers' addresses are known."""
    out = Resolved()
    network = c.host.network_mode
    for link in c.host.links:
        name, alias = parse(link)
        other = lookup(name)
        if other.state.status not in (lifecycle.RUNNING, lifecycle.PAUSED):
            raise errors.Conflict(f"Cannot link to a non running container: /{other.name} AS /{c.name}/{alias}")
        ip = next((ep.ip_address for ep in other.endpoints if ep.network == network and ep.ip_address), "")
        if not ip:
            raise errors.InvalidArgument(f"Cannot link to /{other.name}, as it does not belong to the network {network}")
        out.hosts += [f"{alias}:{ip}", f"{other.short_id}:{ip}", f"{other.name}:{ip}"]
        if network == "bridge":
            out.env += link_env(alias, f"/{c.name}/{alias}", ip, other.spec.exposed_ports, other.spec.env)
    return out


def link_env(alias: str, full_name: str, ip: str, exposed: list[str], env: list[str]) -> list[str]:
    """Docker's legacy link variables for one link."""
    prefix = re.sub(r"[^A-Za-z0-9]", "_", alias).upper()
    out = [f"{prefix}_NAME={full_name}"]
    ports = sorted(_ports(exposed))
    for i, (port, proto) in enumerate(ports):
        base = f"{prefix}_PORT_{port}_{proto.upper()}"
        if i == 0:
            out.append(f"{prefix}_PORT={proto}://{ip}:{port}")
        out += [f"{base}={proto}://{ip}:{port}", f"{base}_ADDR={ip}", f"{base}_PORT={port}", f"{base}_PROTO={proto}"]
    for item in env:
        key, eq, value = item.partition("=")
        if eq and key not in _SKIPPED_ENV:
            out.append(f"{prefix}_ENV_{key}={value}")
    return out


def _ports(exposed: list[str]) -> list[tuple[int, str]]:
    out = []
    for key in exposed:
        port, _, proto = key.partition("/")
        first, _, last = port.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            out += [(p, proto or "tcp") for p in range(int(first), int(last or first) + 1)]
    return out


def remove_link(containers: ContainerService, link_name: str) -> None:
    """``DELETE /containers/<parent>/<alias>?link=1`` (``docker rm --link``): the parent forgets the
    link (HostConfig.Links); both containers stay.  Takes effect in the parent's files at its next start."""
    parent_name, _, alias = link_name.strip("/").rpartition("/")
    if not parent_name:
        raise errors.Conflict("Conflict, cannot remove the default link name of the container")
    try:
        parent = containers.get(parent_name)
    except errors.NotFound:
        raise errors.InvalidArgument(f"Cannot get parent /{parent_name} for link name /{link_name.strip('/')}") from None
    with containers.operation(parent.id):
        kept = [link for link in parent.host.links if parse(link)[1] != alias]
        if len(kept) == len(parent.host.links):
            raise errors.NotFound(f"Could not find entity for /{link_name.strip('/')}")
        parent.host.links = kept
        containers.save(parent)
