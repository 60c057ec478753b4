"""Where the daemon listens: ``unix:///path`` or ``tcp://host:port`` (Docker's ``-H`` syntax).

The CLI parses ``-H``/``SAMPAN_HOST`` into an :class:`Address` and hands it, with the optional
:class:`TLSConfig`, to :class:`sampan.client.transport.SocketTransport`.
"""

from __future__ import annotations

from sampan import errors

DEFAULT_SOCKET = "/run/sampan/sampan.sock"
DEFAULT_HOST = "unix://" + DEFAULT_SOCKET


class Address:
    """A parsed daemon address.  ``scheme`` is ``unix`` (``path`` set) or ``tcp`` (``host``, ``port``)."""

    __slots__ = ("host", "path", "port", "scheme")

    def __init__(self, scheme: str, *, path: str = "", host: str = "", port: int = 0) -> None:
        self.scheme = scheme
        self.path = path
        self.host = host
        self.port = port

    def __str__(self) -> str:
        if self.scheme == "unix":
            return "unix://" + self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def is_default(self) -> bool:
        return self.scheme == "unix" and self.path == DEFAULT_SOCKET


class TLSConfig:
    """Client TLS settings from ``--tls``, ``--tlsverify``, ``--tlscacert``, ``--tlscert``, ``--tlskey``."""

    __slots__ = ("cacert", "cert", "key", "verify")

    def __init__(
        self, *, verify: bool = False, cacert: str = "", cert: str = "", key: str = ""
    ) -> None:
        self.verify = verify
        self.cacert = cacert
        self.cert = cert
        self.key = key


def parse_host(text: str) -> Address:
    """Parse Docker's ``-H`` forms: ``unix:///p``, ``/p`` (a socket path), ``tcp://h:p``, ``h:p``."""
    value = text.strip()
    if not value:
        return parse_host(DEFAULT_HOST)
    if value.startswith("unix://"):
        path = value[len("unix://") :]
        if not path.startswith("/"):
            raise errors.InvalidArgument(f"invalid daemon address {text!r}: unix socket path must be absolute")
        return Address("unix", path=path)
    if value.startswith("/"):
        return Address("unix", path=value)
    if "://" in value:
        scheme, _, rest = value.partition("://")
        if scheme not in ("tcp", "http", "https"):
            raise errors.InvalidArgument(f"invalid daemon address {text!r}: unsupported scheme {scheme!r}")
        value = rest
    value = value.rstrip("/")
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise errors.InvalidArgument(f"invalid daemon address {text!r}: a port is required")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise errors.InvalidArgument(f"invalid daemon address {text!r}: a port is required")
    if not host:
        host = "127.0.0.1"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise errors.InvalidArgument(f"invalid daemon address {text!r}: invalid port {port_text!r}")
    return Address("tcp", host=host, port=int(port_text))
