"""The daemon's configuration: Docker's dockerd flags merged with a daemon.json-style file.

Rules (as dockerd): a key set in the file and by a flag is an error naming both values; a key
the file does not know is an error naming the key; a value of the wrong type names its key.
``--config-file`` defaults to ``/etc/sampan/daemon.json``, which may be absent; a file named
explicitly must exist.  Configuration enters here and is passed down explicitly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sampan.errors import InvalidArgument, InvalidConfig

DEFAULT_CONFIG_FILE = Path("/etc/sampan/daemon.json")
DEFAULT_DATA_ROOT = Path("/var/lib/sampan")
DEFAULT_EXEC_ROOT = Path("/run/sampan")
DEFAULT_SOCKET = "/run/sampan/sampan.sock"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
STORAGE_DRIVERS = ("overlay", "overlay2", "native")

#: daemon.json key -> (attribute, type)
KEYS: dict[str, tuple[str, type]] = {
    "data-root": ("data_root", str),
    "exec-root": ("exec_root", str),
    "hosts": ("hosts", list),
    "pidfile": ("pidfile", str),
    "debug": ("debug", bool),
    "log-level": ("log_level", str),
    "storage-driver": ("storage_driver", str),
    "tls": ("tls", bool),
    "tlsverify": ("tlsverify", bool),
    "tlscacert": ("tlscacert", str),
    "tlscert": ("tlscert", str),
    "tlskey": ("tlskey", str),
    "registry-mirrors": ("registry_mirrors", list),
    "insecure-registries": ("insecure_registries", list),
    "max-concurrent-downloads": ("max_concurrent_downloads", int),
    "max-concurrent-uploads": ("max_concurrent_uploads", int),
    "registry-certs-dir": ("registry_certs_dir", str),
    "bridge": ("bridge", str),
    "bip": ("bip", str),
    "ipv6": ("ipv6", bool),
    "fixed-cidr-v6": ("fixed_cidr_v6", str),
    "nft": ("nft", bool),
    "nft-table": ("nft_table", str),
    "default-address-pools": ("default_address_pools", list),
    "mtu": ("mtu", int),
}


@dataclass(frozen=True)
class Listener:
    """One ``-H`` address: ``unix`` with a path, or ``tcp`` with host and port."""

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"tcp://{self.host}:{self.port}"


@dataclass
class DaemonConfig:
    data_root: Path = DEFAULT_DATA_ROOT
    exec_root: Path = DEFAULT_EXEC_ROOT
    listeners: list[Listener] = field(default_factory=lambda: [Listener("unix", DEFAULT_SOCKET)])
    pidfile: Path | None = None
    debug: bool = False
    log_level: str = "info"
    storage_driver: str | None = None
    tlscacert: Path | None = None
    tlscert: Path | None = None
    tlskey: Path | None = None
    tlsverify: bool = False
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    registry_certs_dir: Path = Path("/etc/sampan/certs.d")
    bridge: str = "sampan0"
    bip: str = ""
    ipv6: bool = False
    fixed_cidr_v6: str = ""
    nft: bool = True
    nft_table: str = "sampan"
    default_address_pools: list[str] = field(default_factory=list)
    mtu: int = 1500

    @property
    def pidfile_path(self) -> Path:
        return self.pidfile or self.exec_root / "sampand.pid"


def parse_bool(text: str) -> bool:
    """A flag value as dockerd's ``--iptables=false``."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"invalid boolean value {text!r}")


def parse_host(text: str) -> Listener:
    """``unix:///run/x.sock``, ``tcp://127.0.0.1:2376`` (as dockerd's -H)."""
    if text.startswith("unix://"):
        path = text[len("unix://") :] or DEFAULT_SOCKET
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid host {text!r}: a unix socket path must be absolute")
        return Listener("unix", path=path)
    if text.startswith("tcp://"):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise InvalidArgument(f"invalid host {text!r}: expected tcp://HOST:PORT")
        return Listener("tcp", host=parts.hostname, port=port)
    raise InvalidArgument(f"invalid host {text!r}: expected unix:///PATH or tcp://HOST:PORT")


def read_file(path: Path, *, explicit: bool) -> dict[str, Any]:
    """The settings of a daemon.json file, checked for unknown keys and types."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"unable to configure the sampan daemon with file {path}: no such file") from None
        return {}
    except OSError as exc:
        raise InvalidArgument(f"unable to configure the sampan daemon with file {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"unable to configure the sampan daemon with file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"unable to configure the sampan daemon with file {path}: not a JSON object")
    unknown = sorted(k for k in data if k not in KEYS)
    if unknown:
        raise InvalidArgument(
            f"unable to configure the sampan daemon with file {path}: the following directives "
            f"don't match any configuration option: {', '.join(unknown)}"
        )
    for key, value in data.items():
        want = KEYS[key][1]
        if (want is int and isinstance(value, bool)) or not isinstance(value, want) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            kind = {str: "a string", bool: "a boolean", list: "a list of strings", int: "an integer"}[want]
            raise InvalidConfig(key, f"must be {kind} (in {path})")
    return data


def merge(flags: dict[str, Any], file_settings: dict[str, Any], *, file: Path) -> DaemonConfig:
    """Build the configuration; ``flags`` holds only the flags given on the command line."""
    both = sorted(k for k in flags if k in file_settings)
    if both:
        detail = ", ".join(f"{k}: (from flag: {_show(flags[k])}, from file: {_show(file_settings[k])})" for k in both)
        raise InvalidArgument(
            f"unable to configure the sampan daemon with file {file}: the following directives "
            f"are specified both as a flag and in the configuration file: {detail}"
        )
    values = {**file_settings, **flags}
    cfg = DaemonConfig()
    if "data-root" in values:
        cfg.data_root = Path(values["data-root"])
    if "exec-root" in values:
        cfg.exec_root = Path(values["exec-root"])
    if values.get("hosts"):
        cfg.listeners = [parse_host(h) for h in values["hosts"]]
    if "pidfile" in values:
        cfg.pidfile = Path(values["pidfile"])
    cfg.debug = bool(values.get("debug", False))
    level = values.get("log-level", "debug" if cfg.debug else "info")
    if level == "warning":
        level = "warn"
    if level not in LOG_LEVELS:
        raise InvalidArgument(f"invalid log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    cfg.log_level = "debug" if cfg.debug else level
    driver = values.get("storage-driver")
    if driver is not None and driver not in STORAGE_DRIVERS:
        raise InvalidArgument(f"unknown storage driver {driver!r}: expected overlay or native")
    cfg.storage_driver = "overlay" if driver == "overlay2" else driver
    for key in ("tlscacert", "tlscert", "tlskey"):
        if values.get(key):
            setattr(cfg, key, Path(values[key]))
    cfg.tlsverify = bool(values.get("tlsverify", False))
    cfg.registry_mirrors = list(values.get("registry-mirrors") or [])
    cfg.insecure_registries = list(values.get("insecure-registries") or [])
    for key in ("max-concurrent-downloads", "max-concurrent-uploads"):
        if values.get(key) is not None:
            if int(values[key]) < 1:
                raise InvalidConfig(key, "must be at least 1")
            setattr(cfg, KEYS[key][0], int(values[key]))
    if values.get("registry-certs-dir"):
        cfg.registry_certs_dir = Path(values["registry-certs-dir"])
    cfg.ipv6 = bool(values.get("ipv6", False))
    for key in ("bridge", "bip", "nft-table", "fixed-cidr-v6"):
        if values.get(key):
            setattr(cfg, KEYS[key][0], str(values[key]))
    if values.get("nft") is not None:
        cfg.nft = bool(values["nft"])
    cfg.default_address_pools = list(values.get("default-address-pools") or [])
    if values.get("mtu") is not None:
        cfg.mtu = int(values["mtu"])
    for path in (cfg.data_root, cfg.exec_root):
        if not path.is_absolute():
            raise InvalidArgument(f"{path}: data and exec roots must be absolute paths")
    _check_tls(cfg)
    return cfg


def _check_tls(cfg: DaemonConfig) -> None:
    tcp = [str(lis) for lis in cfg.listeners if lis.scheme == "tcp"]
    if not tcp:
        return
    missing = [f"--{k}" for k in ("tlscacert", "tlscert", "tlskey") if getattr(cfg, k) is None]
    if not cfg.tlsverify or missing:
        need = "--tlsverify" if not cfg.tlsverify else ", ".join(missing)
        raise InvalidArgument(
            f"refusing to listen on {', '.join(tcp)} without mutual TLS: {need} missing "
            "(tcp:// needs --tlsverify --tlscacert --tlscert --tlskey)"
        )


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)
