"""The registry server's configuration, parsed once from a JSON document.

Keys (all optional)::

    {
      "addr": "127.0.0.1:5000",
      "storage": "/var/lib/sampan-registry",
      "readonly": false,
      "blob_transfer": "auto",            (sendfile to remote peers, a copy to loopback ones)
      "tls": {"certificate": "cert.pem", "key": "key.pem"},
      "auth": {"htpasswd": {"path": "htpasswd", "realm": "sampan"}}
         or  {"token": {"realm": "http://127.0.0.1:5000/token", "service": "sampan-registry",
                        "issuer": "sampan", "secret": "...",
                        "users": {"alice": {"password": "$2y$...",
                                            "access": [{"name": "alice/*", "actions": ["pull", "push"]}]},
                                  "anonymous": {"access": [{"name": "*", "actions": ["pull"]}]}}}}
    }

Relative paths are relative to the configuration file's directory.  Command-line flags
(``--addr``, ``--storage``) override the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sampan.distribution.server import auth
from sampan.errors import InvalidConfig


@dataclass
class RegistryConfig:
    host: str = "127.0.0.1"
    port: int = 5000
    storage: Path = Path("/var/lib/sampan-registry")
    readonly: bool = False
    blob_transfer: str = "auto"  # auto | sendfile | copy (see blobs.py)
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    authorizer: auth.Authorizer = field(default_factory=auth.OpenAuthorizer)
    token: auth.TokenAuthorizer | None = None  # set in token mode: serves /token


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidConfig("addr", f"{addr!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _section(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidConfig(f"{where}{key}", "must be an object")
    return value


def build(doc: dict[str, Any], *, base: Path, addr: str | None = None, storage: str | None = None) -> RegistryConfig:
    """A RegistryConfig from a parsed JSON document and the command-line overrides."""
    if not isinstance(doc, dict):
        raise InvalidConfig("config", "must be a JSON object")
    unknown = set(doc) - {"addr", "storage", "readonly", "tls", "auth", "blob_transfer"}
    if unknown:
        raise InvalidConfig(sorted(unknown)[0], "unknown configuration key")
    cfg = RegistryConfig()
    cfg.host, cfg.port = parse_addr(addr or str(doc.get("addr", "127.0.0.1:5000")))
    store = storage or doc.get("storage")
    if store:
        cfg.storage = (base / str(store)).resolve()
    readonly = doc.get("readonly", False)
    if not isinstance(readonly, bool):
        raise InvalidConfig("readonly", "must be true or false")
    cfg.readonly = readonly
    transfer = doc.get("blob_transfer", "auto")
    if transfer not in ("auto", "sendfile", "copy"):
        raise InvalidConfig("blob_transfer", "must be auto, sendfile or copy")
    cfg.blob_transfer = transfer
    tls = _section(doc, "tls", "")
    if tls:
        if not tls.get("certificate") or not tls.get("key"):
            raise InvalidConfig("tls", "needs both certificate and key")
        cfg.tls_certificate = base / str(tls["certificate"])
        cfg.tls_key = base / str(tls["key"])
    section = _section(doc, "auth", "")
    if len(section) > 1:
        raise InvalidConfig("auth", "choose one of htpasswd and token")
    if "htpasswd" in section:
        ht = _section(section, "htpasswd", "auth.")
        if not ht.get("path"):
            raise InvalidConfig("auth.htpasswd.path", "is required")
        users = auth.load_htpasswd(base / str(ht["path"]))
        cfg.authorizer = auth.HtpasswdAuthorizer(users, str(ht.get("realm", "sampan-registry")))
    elif "token" in section:
        tk = _section(section, "token", "auth.")
        for key in ("realm", "service", "secret"):
            if not isinstance(tk.get(key), str) or not tk[key]:
                raise InvalidConfig(f"auth.token.{key}", "is required (a string)")
        cfg.token = auth.TokenAuthorizer(
            realm=tk["realm"], service=tk["service"], issuer=str(tk.get("issuer", "sampan-registry")),
            secret=tk["secret"].encode(), users=auth.token_users(tk.get("users", {})),
        )
        cfg.authorizer = cfg.token
    elif section:
        raise InvalidConfig("auth", f"unknown auth kind {next(iter(section))!r}")
    return cfg
