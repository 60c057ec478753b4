"""The daemon's HTTP client for registries: blocking ``http.client`` with pooled connections.

The copy routine (``copy.py``) is blocking and moves blobs in worker threads, so this client
is too: one keep-alive connection per thread and endpoint, taken from and returned to a pool.

Where a registry host is reached (:meth:`RegistryClient.endpoints`):

* a *secure* host gets ``https`` with verification against the system CAs plus every
  ``*.crt`` in ``<certs-dir>/<host:port>/`` (Docker's certs.d layout; a ``client.cert`` /
  ``client.key`` pair there is presented as a client certificate);
* an *insecure* host (listed in ``insecure-registries`` by ``host[:port]`` or by a CIDR that
  holds its address; 127.0.0.0/8 and ::1 always) gets ``https`` without verification first,
  then plain ``http`` (as dockerd); the first that answers is remembered.

Responses stream: :class:`Response` reads the body as the caller asks and gives the connection
back to the pool once the body was read to its end.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sampan.errors import InvalidArgument, Unavailable

DEFAULT_CERTS_DIR = Path("/etc/sampan/certs.d")
TIMEOUT = 60.0
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
USER_AGENT = "sampan/registry-client"


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a registry: ``https://host:port`` or ``http://host:port``."""

    scheme: str
    host: str  # host[:port] as in references
    verify: bool = True

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"


@dataclass
class RegistryOptions:
    """The daemon's registry settings (``daemon.json`` keys); passed down by the wiring."""

    mirrors: list[str] = field(default_factory=list)  # "URL" (every registry) or "HOST=URL"
    insecure: list[str] = field(default_factory=list)  # host[:port] or CIDR
    certs_dir: Path = DEFAULT_CERTS_DIR
    max_downloads: int = 3
    max_uploads: int = 5
    chunk_size: int = 0  # > 0: upload blobs in PATCH chunks of this size

    def validate(self) -> None:
        for item in self.insecure:
            if "/" in item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise InvalidArgument(f"insecure-registries: {item!r} is not a host[:port] or CIDR") from None
        for item in self.mirrors:
            url = item.partition("=")[2] if "=" in item.split("://", 1)[0] else item
            if not url.startswith(("http://", "https://")):
                raise InvalidArgument(f"registry-mirrors: {item!r}: a mirror is an http:// or https:// URL")
        if self.max_downloads < 1 or self.max_uploads < 1:
            raise InvalidArgument("max-concurrent-downloads and max-concurrent-uploads must be at least 1")


def split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


class Response:
    """A registry's answer; the body streams from the socket."""

    def __init__(self, raw: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 release: Any, url: str) -> None:
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.url = url
        self._conn = conn
        self._release = release
        self._done = False

    def header(self, name: str, default: str = "") -> str:
        return str(self.headers.get(name, default))

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.raw.read() if size < 0 else self.raw.read(size)
        except (OSError, http.client.HTTPException) as exc:
            self.close(reuse=False)
            raise Unavailable(f"{self.url}: connection broken while reading: {exc or type(exc).__name__}") from None
        if size < 0 or (size > 0 and not data):
            self.close()
        return data

    def readinto(self, buffer: memoryview) -> int:
        try:
            n = self.raw.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            self.close(reuse=False)
            raise Unavailable(f"{self.url}: connection broken while reading: {exc or type(exc).__name__}") from None
        if n == 0 and len(buffer):
            self.close()
        return n

    def json(self) -> Any:
        import json

        body = self.read()
        try:
            return json.loads(body)
        except ValueError:
            raise InvalidArgument(f"{self.url}: the registry answered malformed JSON") from None

    def close(self, *, reuse: bool = True) -> None:
        if self._done:
            return
        self._done = True
        ok = reuse and self.raw.isclosed() and not self.raw.will_close
        if not ok and not self.raw.isclosed() and reuse:
            # drain a small rest so the connection can be reused; else drop it
            length = self.raw.length
            if length is not None and length <= 65536:
                try:
                    self.raw.read()
                    ok = not self.raw.will_close
                except (OSError, http.client.HTTPException):
                    ok = False
        self._release(self._conn, ok)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryClient:
    """HTTP to registries with TLS, certs.d, insecure hosts and pooled connections."""

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self._pool: dict[tuple[str, str, bool], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._working: dict[str, Endpoint] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    # ------------------------------------------------------------------ where

    def is_insecure(self, host: str) -> bool:
        name, _ = split_host(host)
        listed = set(self.options.insecure)
        if host in listed or name in listed:
            return True
        try:
            addrs = [ipaddress.ip_address(name)]
        except ValueError:
            if name == "localhost":
                return True
            nets = [n for n in listed if "/" in n]
            if not nets:
                return False
            try:
                addrs = [ipaddress.ip_address(i[4][0]) for i in socket.getaddrinfo(name, None)]
            except (OSError, ValueError):
                return False
        nets_all = [ipaddress.ip_network(n, strict=False) for n in listed if "/" in n] + list(_LOOPBACK)
        return any(a in n for a in addrs for n in nets_all if a.version == n.version)

    def endpoints(self, host: str) -> list[Endpoint]:
        """How to reach ``host``, the one known to work first."""
        known = self._working.get(host)
        if self.is_insecure(host):
            found = [Endpoint("https", host, verify=False), Endpoint("http", host, verify=False)]
        else:
            found = [Endpoint("https", host)]
        if known is not None and known in found:
            found.remove(known)
            found.insert(0, known)
        return found

    def endpoint_from_url(self, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument(f"invalid registry URL {url!r}")
        return Endpoint(parts.scheme, parts.netloc, verify=not self.is_insecure(parts.netloc))

    def worked(self, endpoint: Endpoint) -> None:
        self._working[endpoint.host] = endpoint

    def ssl_context(self, host: str, verify: bool) -> ssl.SSLContext:
        key = (host, verify)
        ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        if verify:
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        certs = self.options.certs_dir / host.replace("[", "").replace("]", "")
        if certs.is_dir():
            for entry in sorted(certs.iterdir()):
                try:
                    if entry.suffix == ".crt" and verify:
                        ctx.load_verify_locations(cafile=str(entry))
                    elif entry.suffix == ".cert":
                        keyfile = entry.with_suffix(".key")
                        ctx.load_cert_chain(str(entry), str(keyfile) if keyfile.exists() else None)
                except (OSError, ssl.SSLError) as exc:
                    raise InvalidArgument(f"certificate {entry}: {exc}") from None
        self._contexts[key] = ctx
        return ctx

    # ------------------------------------------------------------------ requests

    def _connect(self, ep: Endpoint) -> http.client.HTTPConnection:
        name, port = split_host(ep.host)
        with self._lock:
            idle = self._pool.get((ep.scheme, ep.host, ep.verify))
            if idle:
                return idle.pop()
        if ep.scheme == "https":
            return http.client.HTTPSConnection(
                name, port, timeout=TIMEOUT, context=self.ssl_context(ep.host, ep.verify), blocksize=1 << 20
            )
        return http.client.HTTPConnection(name, port, timeout=TIMEOUT, blocksize=1 << 20)

    def _drop_idle(self, ep: Endpoint) -> None:
        with self._lock:
            idle = self._pool.pop((ep.scheme, ep.host, ep.verify), [])
        for conn in idle:
            conn.close()

    def _releaser(self, ep: Endpoint) -> Any:
        def release(conn: http.client.HTTPConnection, reuse: bool) -> None:
            if not reuse:
                conn.close()
                return
            with self._lock:
                idle = self._pool.setdefault((ep.scheme, ep.host, ep.verify), [])
                if len(idle) < 16:
                    idle.append(conn)
                    return
            conn.close()

        return release

    def request(
        self,
        ep: Endpoint,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | BinaryIO | Iterable[bytes] | None = None,
        length: int | None = None,
    ) -> Response:
        """Send one request to ``ep`` (``target`` is a path or an absolute URL on that host).

        A connection error is :class:`Unavailable` naming the URL.  A stale pooled connection
        is retried once on a fresh one (only for bodies that can be sent again), and the
        endpoint's other idle connections are dropped with it: after a registry restart every
        one of them is stale, and a retry on the next of them would fail again.
        """
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            ep = Endpoint(parts.scheme, parts.netloc, verify=ep.verify if parts.netloc == ep.host else
                          not self.is_insecure(parts.netloc))
            target = parts.path + ("?" + parts.query if parts.query else "")
        url = ep.base + target
        h = {"User-Agent": USER_AGENT, **(headers or {})}
        if body is not None and length is not None:
            h["Content-Length"] = str(length)
        elif isinstance(body, bytes):
            h["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT", "PATCH"):
            h["Content-Length"] = "0"
        for attempt in range(2):
            conn = self._connect(ep)
            reused = conn.sock is not None
            try:
                conn.request(method, target, body=body, headers=h,  # type: ignore[arg-type]
                             encode_chunked=body is not None and not isinstance(body, bytes) and length is None)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and attempt == 0 and (body is None or isinstance(body, bytes)):
                    # the registry closed it (e.g. restarted): its other idle ones are as stale
                    self._drop_idle(ep)
                    continue
                raise Unavailable(f"{url}: {_describe(exc)}") from None
            if method == "HEAD":
                raw.read()
            return Response(raw, conn, self._releaser(ep), url)
        raise Unavailable(f"{url}: no connection")  # not reached

    def close(self) -> None:
        with self._lock:
            for conns in self._pool.values():
                for conn in conns:
                    conn.close()
            self._pool.clear()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"x509: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"no such host ({exc.strerror})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
