"""A container's ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``, as Docker writes them.

* ``hostname``: the container's hostname (its short ID by default) and a newline.
* ``hosts``: localhost lines, then the container's own address(es) with its hostname (and
  aliases on user-defined networks), then ``--add-host`` entries (``host-gateway`` is replaced
  by the daemon with the default bridge's gateway before it gets here).
* ``resolv.conf``: on the default bridge (and ``host``/``none``), the host's file with its
  loopback nameservers dropped (they do not work from inside; Docker's 8.8.8.8/8.8.4.4 when
  nothing remains); on user-defined networks ``nameserver 127.0.0.11`` (the embedded DNS
  server, ``dns.py``) with the host's search and options; ``--dns``, ``--dns-search`` and
  ``--dns-option`` replace the corresponding parts.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sampan import errors

EMBEDDED_DNS = "127.0.0.11"
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        conf = cls()
        for line in text.splitlines():
            words = line.split("#", 1)[0].split(";", 1)[0].split()
            if not words:
                continue
            if words[0] == "nameserver" and len(words) > 1:
                conf.nameservers.append(words[1])
            elif words[0] in ("search", "domain"):
                conf.search = words[1:]
            elif words[0] == "options":
                conf.options.extend(words[1:])
        return conf

    @classmethod
    def read(cls, path: Path = Path("/etc/resolv.conf")) -> ResolvConf:
        try:
            return cls.parse(path.read_text())
        except OSError:
            return cls()

    def render(self) -> str:
        lines = [f"nameserver {ns}" for ns in self.nameservers]
        if self.search:
            lines.append("search " + " ".join(self.search))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"

    def upstreams(self) -> list[str]:
        """Nameservers usable from outside a container (for the embedded server to forward to)."""
        return [ns for ns in self.nameservers if _is_ip(ns)]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
        return True
    except ValueError:
        return False


def _loopback(ns: str) -> bool:
    try:
        return ipaddress.ip_address(ns.split("%")[0]).is_loopback
    except ValueError:
        return True


def container_resolv(host: ResolvConf, *, embedded: bool, dns: Sequence[str] = (),
                     dns_search: Sequence[str] = (), dns_options: Sequence[str] = ()) -> ResolvConf:
    """The container's resolv.conf from the host's and the container's DNS settings."""
    for ns in dns:
        if not _is_ip(ns):
            raise errors.InvalidArgument(f"{ns} is not an ip address")
    search = list(dns_search) if dns_search else list(host.search)
    if search == ["."]:
        search = []
    options = list(dns_options) if dns_options else list(host.options)
    if embedded:
        if "ndots:0" not in options and not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
        return ResolvConf([EMBEDDED_DNS], search, options)
    servers = list(dns) if dns else [ns for ns in host.nameservers if not _loopback(ns)]
    return ResolvConf(servers or list(FALLBACK_DNS), search, options)


def render_hosts(hostname: str, addresses: Iterable[str], *, aliases: Iterable[str] = (),
                 extra: Iterable[tuple[str, str]] = (), domainname: str = "") -> str:
    """``/etc/hosts``: localhost, the container's addresses, then ``--add-host`` entries."""
    names = [f"{hostname}.{domainname}", hostname] if domainname else [hostname]
    names += [a for a in aliases if a and a not in names]
    out = [LOCALHOST_LINES]
    for name, ip in extra:
        if not _is_ip(ip):
            raise errors.InvalidArgument(f"invalid IP address in add-host: {ip!r}")
        out.append(f"{ip}\t{name}\n")
    for addr in addresses:
        out.append(f"{addr}\t{' '.join(names)}\n")
    return "".join(out)


def parse_add_host(text: str) -> tuple[str, str]:
    """``name:ip`` or ``name=ip`` (``host-gateway`` allowed as the ip)."""
    sep = "=" if "=" in text else ":"
    name, _, ip = text.partition(sep)
    if not name or not ip:
        raise errors.InvalidArgument(f"bad format for add-host: {text!r}")
    ip = ip.strip("[]")
    if ip != "host-gateway" and not _is_ip(ip):
        raise errors.InvalidArgument(f"invalid IP address in add-host: {ip!r}")
    return name, ip


def write_files(directory: Path, *, hostname: str, hosts: str, resolv: ResolvConf) -> dict[str, Path]:
    """Write ``hostname``, ``hosts`` and ``resolv.conf`` into the container's directory
    (atomically: write and rename) and return their paths for the bind mounts."""
    out: dict[str, Path] = {}
    for name, text in (("hostname", hostname + "\n"), ("hosts", hosts), ("resolv.conf", resolv.render())):
        path = directory / name
        tmp = directory / f".{name}.tmp"
        try:
            tmp.write_text(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            raise errors.from_oserror(exc, f"write {path}") from exc
        out[name] = path
    return out
