"""A container's networking, between the container service and the network service.

* at create, ``check_mode`` normalizes ``--network`` (``default`` and empty mean ``bridge``; a
  user-defined network must exist); ``container:<id>`` joins another container's network
  namespace (``shared_namespaces``) and needs no sandbox of its own;
* at start, ``network_up`` creates the sandbox (netns, endpoints, published ports, DNS), writes
  ``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` into the bundle, records
  ``NetworkSettings`` on the container, and returns the netns path the OCI spec joins;
* when the container exits or is removed, ``network_down`` undoes it;
* ``connect``/``disconnect`` (``network connect|disconnect``) act at once on a running container
  and change a stopped one's record, which its next start attaches (Docker's behaviour).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.engine.model import Container, EndpointState, HostSpec, PublishedPort
from sampan.engine.network_model import PortBinding
from sampan.engine.network_sandbox import AttachRequest
from sampan.network import ipam

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sampan.engine.containers import ContainerService
    from sampan.engine.networks import NetworkService

NO_SANDBOX = ("none", "host")


def check_mode(networks: NetworkService, host: HostSpec) -> list[str]:
    """Normalize ``host.network_mode``; return warnings for the create response."""
    warnings = []
    mode = host.network_mode or "default"
    if mode == "default":  # a daemon started with --bridge=none has no default network
        mode = "bridge" if networks.cfg.bridge_enabled else "none"
    elif mode == "bridge" and not networks.cfg.bridge_enabled:
        warnings.append("sampan: this daemon has no default bridge (--bridge=none); the container runs with --network none")
        mode = "none"
    if mode.startswith("container:"):
        host.endpoints_config.clear()
        return warnings
    if mode not in NO_SANDBOX:
        n = networks.get(mode)
        if n.driver != "bridge":
            raise errors.InvalidArgument(f"network {mode} cannot be used as a container's network mode")
    for alias in ("default", host.network_mode):  # the CLI names the first network as given
        if alias and alias != mode and alias in host.endpoints_config:
            host.endpoints_config[mode] = host.endpoints_config.pop(alias)
    host.network_mode = mode
    if mode in NO_SANDBOX:
        host.endpoints_config.pop(mode, None)
    for name, cfg in host.endpoints_config.items():  # --ip6: refused at create, not at start
        if cfg.get("ipv6"):
            check_ipv6(networks, name or mode, str(cfg["ipv6"]))
    return warnings


def check_ipv6(networks: NetworkService, network: str, address: str) -> None:
    """``--ip6`` on ``network``: an IPv6 address of its IPv6 subnet (an ``--ipv6`` network)."""
    n = networks.get(network)
    c6 = n.ipam6
    if c6 is None:
        raise errors.InvalidArgument(f"invalid IPv6 address {address}: network {n.name} has no IPv6 subnet (create it with --ipv6)")
    addr = ipam.parse_address6(address, "IPv6 address")
    if addr not in ipam.parse_network6(c6.subnet):
        raise errors.InvalidArgument(f"invalid address {addr}: it does not belong to the network's subnet {c6.subnet}")


def port_requests(host: HostSpec, exposed: list[str]) -> list[PortBinding]:
    """``PortBindings`` (and ``-P``: every exposed port on a random host port) as requests.

    Ranges as Docker's: ``80-82/tcp`` bound to ``8000-8002`` maps one to one; one container
    port bound to a host range takes the range's first free port at start.
    """
    out: list[PortBinding] = []
    bound: set[tuple[int, str]] = set()
    for key, bindings in sorted(host.port_bindings.items()):
        ports, proto = _port_key(key)
        bound.update((p, proto) for p in ports)
        for b in bindings:
            host_ports = _host_range(b.get("HostPort", ""), key)
            if len(ports) > 1 and host_ports and len(host_ports) != len(ports):
                raise errors.InvalidArgument(f"invalid port range: host {b.get('HostPort')} for {key}")
            if len(ports) == 1:
                first, last = (host_ports[0], host_ports[-1]) if host_ports else (0, 0)
                out.append(PortBinding(ports[0], proto, b.get("HostIp", ""), first, last if last != first else 0))
                continue
            for i, port in enumerate(ports):
                out.append(PortBinding(port, proto, b.get("HostIp", ""), host_ports[i] if host_ports else 0))
    if host.publish_all_ports:
        for key in sorted(exposed):
            ports, proto = _port_key(key)
            out.extend(PortBinding(p, proto, "", 0) for p in ports if (p, proto) not in bound)
    return out


def _host_range(text: str, key: str) -> list[int]:
    if not text:
        return []
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise errors.InvalidArgument(f"invalid host port {text!r} for {key}") from None
    if not 0 < lo <= hi <= 65535:
        raise errors.InvalidArgument(f"invalid host port {text!r} for {key}")
    return list(range(lo, hi + 1))


def _port_key(key: str) -> tuple[list[int], str]:
    port, _, proto = key.partition("/")
    first, _, last = port.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise errors.InvalidArgument(f"invalid container port {key!r}") from None
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp") or not 0 < lo <= hi < 65536:
        raise errors.InvalidArgument(f"invalid container port {key!r}")
    return list(range(lo, hi + 1)), proto


def network_up(networks: NetworkService, c: Container, link_hosts: Sequence[str] = ()) -> str:
    """Attach ``c`` to its networks; return the netns path ("" for none and host).

    ``link_hosts`` are /etc/hosts entries (``name:ip``) for its legacy links.
    """
    mode = c.host.network_mode
    if mode in NO_SANDBOX or mode.startswith("container:"):
        return ""
    configs = c.host.endpoints_config
    first = configs.get(mode) or configs.get("") or {}
    requests = [AttachRequest(mode, tuple(first.get("aliases") or ()), str(first.get("ipv4") or ""),
                              str(first.get("mac") or ""), str(first.get("ipv6") or ""))]
    for name, ep in configs.items():
        if name and name != mode:
            requests.append(AttachRequest(name, tuple(ep.get("aliases") or ()), str(ep.get("ipv4") or ""),
                                          str(ep.get("mac") or ""), str(ep.get("ipv6") or "")))
    sandbox = networks.setup(c.id, name=c.name, requests=requests, ports=port_requests(c.host, c.spec.exposed_ports))
    try:
        networks.write_files(c.id, Path(c.bundle_dir), hostname=c.spec.hostname or c.short_id,
                             domainname=c.spec.domainname, dns=c.host.dns, dns_search=c.host.dns_search,
                             dns_options=c.host.dns_options, extra_hosts=[*c.host.extra_hosts, *link_hosts])
    except BaseException:
        networks.teardown(c.id)
        raise
    c.sandbox_key = str(sandbox.netns)
    record_endpoints(networks, c)
    return str(sandbox.netns)


def record_endpoints(networks: NetworkService, c: Container) -> None:
    """Copy the container's endpoints and published ports into its record (``inspect``)."""
    eps = networks.endpoints_of(c.id)
    c.endpoints = [EndpointState(network=networks.get(ep.network_id).name, network_id=ep.network_id, endpoint_id=ep.id,
                                 ip_address=ep.address, prefixlen=ep.prefixlen, gateway=ep.gateway,
                                 mac_address=ep.mac, aliases=list(ep.aliases), ipv6_address=ep.address6,
                                 ipv6_prefixlen=ep.prefixlen6, ipv6_gateway=ep.gateway6) for ep in eps]
    c.ports = [PublishedPort(f"{p.container_port}/{p.proto}", p.host_ip or "0.0.0.0", str(p.host_port))
               for ep in eps for p in ep.ports]


def network_down(networks: NetworkService, c: Container) -> None:
    if (c.host.network_mode in NO_SANDBOX or c.host.network_mode.startswith("container:")) and not c.sandbox_key:
        return
    networks.teardown(c.id)
    c.sandbox_key = ""
    c.endpoints = []
    c.ports = []


def connect(containers: ContainerService, networks: NetworkService, network: str, container: str,
            settings: dict[str, Any] | None = None) -> None:
    """``network connect``: a running container is attached at once; a stopped one is attached at its next start.

    ``settings`` are the endpoint's (``aliases``, ``ipv4``, ``mac``, ``links``, ``driver_opts``): kept on the
    container either way, so that inspect shows them and a restart attaches the network again (Docker's)."""
    settings = dict(settings or {})
    aliases: list[str] = list(settings.get("aliases") or [])
    ipv4 = str(settings.get("ipv4") or "")
    c = containers.get(container)
    mode = c.host.network_mode
    if mode == "host" or mode.startswith("container:"):
        raise errors.Conflict("container sharing network namespace with another container or host cannot be connected to any other network")
    if mode == "none":
        raise errors.Conflict("container cannot be connected to multiple networks with one of the networks in private (none) mode")
    with containers.operation(c.id):
        if c.state.running:
            ep = networks.connect(network, c.id, aliases=aliases, ipv4=ipv4, mac=str(settings.get("mac") or ""),
                                  ipv6=str(settings.get("ipv6") or ""))
            c.host.endpoints_config[networks.get(ep.network_id).name] = settings
            containers.save(c)
            if networks.get(ep.network_id).name != "bridge":
                use_embedded_dns(networks, c)
            return
        n = networks.get(network)
        if n.driver != "bridge":
            raise errors.InvalidArgument(f"network {n.name} cannot be connected to")
        if n.name == mode or n.name in c.host.endpoints_config:
            raise errors.Conflict(f"endpoint with name {c.name} already exists in network {n.name}")
        c.host.endpoints_config[n.name] = settings
        containers.save(c)


def use_embedded_dns(networks: NetworkService, c: Container) -> None:
    """Point a running container's resolv.conf at the embedded DNS server once it joined a user
    network (it started on the default bridge with the host's servers), as Docker rebuilds it
    when the sandbox gets its resolver: names on the new network resolve from then on.

    The file is rewritten in place: it is bind-mounted into the container, which would keep
    seeing the old file if a new one were renamed over it."""
    import tempfile

    target = Path(c.resolv_conf_path or Path(c.bundle_dir) / "resolv.conf")
    try:
        with tempfile.TemporaryDirectory(dir=c.bundle_dir) as tmp:
            networks.write_files(c.id, Path(tmp), hostname=c.spec.hostname or c.short_id,
                                 domainname=c.spec.domainname, dns=c.host.dns, dns_search=c.host.dns_search,
                                 dns_options=c.host.dns_options)
            text = (Path(tmp) / "resolv.conf").read_text()
        with open(target, "r+") as f:
            if f.read() == text:
                return
            f.seek(0)
            f.write(text)
            f.truncate()
    except OSError as exc:
        raise errors.from_oserror(exc, f"rewrite {target}") from exc


def disconnect(containers: ContainerService, networks: NetworkService, network: str, container: str, *,
               force: bool = False) -> None:
    """``network disconnect``: from a running container at once; a stopped one forgets the network."""
    try:
        c = containers.get(container)
    except errors.NotFound:
        if not force:
            raise
        networks.disconnect(network, container, force=True)  # an endpoint whose container is gone
        return
    with containers.operation(c.id):
        if c.state.running:
            networks.disconnect(network, c.id, force=force)
            name = networks.get(network).name
            if name != c.host.network_mode and c.host.endpoints_config.pop(name, None) is not None:
                containers.save(c)
            return
        n = networks.get(network)
        if n.name == c.host.network_mode:
            raise errors.Conflict(f"container {c.name} is stopped: its network mode {n.name} can only change by re-creating it")
        if c.host.endpoints_config.pop(n.name, None) is None:
            raise errors.Conflict(f"container {container} is not connected to network {n.name}")
        containers.save(c)
