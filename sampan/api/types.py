"""Docker's wire JSON (swagger v1.51): every PascalCase field of the Engine API lives here.

Each function turns an engine dataclass into the dict Docker sends, shaped for the API version
the request was negotiated at (fields that Docker added or dropped at some version are gated
with :func:`sampan.api.versions.before` / ``at_least``).  Parsing of wire inputs that are
Docker-specific (the ``filters`` query parameter) is here too.
"""

from __future__ import annotations

import json
from typing import Any

from sampan import errors
from sampan.api.versions import at_least, before
from sampan.engine.events import Event
from sampan.engine.images import familiar_name, image_labels, unix_time
from sampan.engine.system import SystemInfo, VersionInfo
from sampan.image.store import HistoryEntry, Image, ImagesUsage

ZERO_TIME = "0001-01-01T00:00:00Z"
JSONDict = dict[str, Any]


# ---------------------------------------------------------------------- inputs


def parse_filters(text: str | None) -> dict[str, list[str]]:
    """The ``filters`` query parameter: ``{"k": ["v"]}`` or ``{"k": {"v": true}}``."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter: {text!r} is not JSON") from None
    if not isinstance(raw, dict):
        raise errors.InvalidArgument(f"invalid filter: {text!r} is not a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[str(key)] = [str(v) for v, on in value.items() if on]
        elif isinstance(value, list):
            out[str(key)] = [str(v) for v in value]
        elif isinstance(value, str):
            out[str(key)] = [value]
        else:
            raise errors.InvalidArgument(f"invalid filter {key!r}: {value!r}")
    return out


def query_bool(value: str | None) -> bool:
    """Docker's ``httputils.BoolValue``: absent, "", "0", "no", "false", "none" are false."""
    if value is None:
        return False
    return value.strip().lower() not in ("", "0", "no", "false", "none")


# ---------------------------------------------------------------------- system


def version_json(v: VersionInfo) -> JSONDict:
    details = {
        "ApiVersion": v.api_version,
        "Arch": v.arch,
        "BuildTime": v.build_time,
        "Experimental": "false",
        "GitCommit": v.git_commit,
        "GoVersion": v.python_version,
        "KernelVersion": v.kernel_version,
        "MinAPIVersion": v.min_api_version,
        "Os": v.os,
    }
    return {
        "Platform": {"Name": "sampan"},
        "Components": [{"Name": "Engine", "Version": v.version, "Details": details}],
        "Version": v.version,
        "ApiVersion": v.api_version,
        "MinAPIVersion": v.min_api_version,
        "GitCommit": v.git_commit,
        "GoVersion": v.python_version,
        "Os": v.os,
        "Arch": v.arch,
        "KernelVersion": v.kernel_version,
        "BuildTime": v.build_time,
    }


def info_json(i: SystemInfo, api_version: str) -> JSONDict:
    out: JSONDict = {
        "ID": i.id,
        "Containers": i.containers,
        "ContainersRunning": i.containers_running,
        "ContainersPaused": i.containers_paused,
        "ContainersStopped": i.containers_stopped,
        "Images": i.images,
        "Driver": i.driver,
        "DriverStatus": [list(kv) for kv in i.driver_status],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": i.memory_limit,
        "SwapLimit": i.swap_limit,
        "CpuCfsPeriod": i.cpu_cfs,
        "CpuCfsQuota": i.cpu_cfs,
        "CPUShares": i.cpu_shares,
        "CPUSet": i.cpuset,
        "PidsLimit": i.pids_limit,
        "OomKillDisable": i.oom_kill_disable,
        "IPv4Forwarding": i.ipv4_forwarding,
        "Debug": i.debug,
        "NFd": i.open_fds,
        "NGoroutines": i.threads,
        "SystemTime": i.system_time,
        "LoggingDriver": i.logging_driver,
        "CgroupDriver": i.cgroup_driver,
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": i.event_listeners,
        "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system,
        "OSVersion": i.os_version,
        "OSType": i.os_type,
        "Architecture": i.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": None,
            "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
            "IndexConfigs": {
                "docker.io": {
                    "Name": "docker.io",
                    "Mirrors": [],
                    "Secure": True,
                    "Official": True,
                }
            },
            "Mirrors": [],
        },
        "NCPU": i.ncpu,
        "MemTotal": i.mem_total,
        "GenericResources": None,
        "DockerRootDir": i.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": i.name,
        "Labels": list(i.labels),
        "ExperimentalBuild": False,
        "ServerVersion": i.server_version,
        "Runtimes": {name: {"path": path} for name, path in i.runtimes.items()},
        "DefaultRuntime": i.default_runtime,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": i.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": list(i.security_options),
        "Warnings": list(i.warnings) or None,
    }
    if at_least(api_version, "1.46"):
        out["CDISpecDirs"] = []
    if at_least(api_version, "1.49"):  # Docker 28's shape: the driver and its facts as pairs
        fw = dict(i.firewall_backend)
        out["FirewallBackend"] = {"Driver": fw.pop("FirewallBackend", "nftables"), "Info": [[k, v] for k, v in fw.items()]}
    if at_least(api_version, "1.50"):
        out["DiscoveredDevices"] = []
    return out


def event_json(e: Event, api_version: str) -> JSONDict:
    out: JSONDict = {
        "Type": e.type,
        "Action": e.action,
        "Actor": {"ID": e.actor_id, "Attributes": dict(e.attributes)},
        "scope": e.scope,
        "time": e.time,
        "timeNano": e.time_nano,
    }
    if before(api_version, "1.52"):
        out["status"] = e.action
        out["id"] = e.actor_id
        if "image" in e.attributes:
            out["from"] = e.attributes["image"]
    return out


# ---------------------------------------------------------------------- images


def _labels(image: Image) -> dict[str, str] | None:
    return image_labels(image) or None


def image_summary(image: Image, api_version: str, *, shared_size: int = -1, containers: int = -1) -> JSONDict:
    out: JSONDict = {
        "Id": image.id,
        "ParentId": image.parent or "",
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Created": unix_time(image.created),
        "Size": image.size,
        "SharedSize": shared_size,
        "Labels": _labels(image) or {},
        "Containers": containers,
    }
    if before(api_version, "1.44"):
        out["VirtualSize"] = image.size
    return out


_CONFIG_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "Shell",
)


def image_config(config: dict[str, Any], api_version: str) -> JSONDict:
    """The image's ``config`` section in Docker's ImageConfig / ContainerConfig shape."""
    out: JSONDict = {}
    if before(api_version, "1.50"):
        out.update(
            Hostname="",
            Domainname="",
            AttachStdin=False,
            AttachStdout=False,
            AttachStderr=False,
            Tty=False,
            OpenStdin=False,
            StdinOnce=False,
            Image="",
        )
    defaults: JSONDict = {"User": "", "Env": None, "Cmd": None, "Volumes": None, "WorkingDir": "",
                          "Entrypoint": None, "OnBuild": None, "Labels": None}
    for key in _CONFIG_KEYS:
        if key in config:
            out[key] = config[key]
        elif key in defaults:
            out[key] = defaults[key]
    return out


def image_inspect(
    image: Image, api_version: str, *, driver: str, graph_data: dict[str, str] | None = None
) -> JSONDict:
    cfg = image.config
    out: JSONDict = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent or "",
        "Comment": image.comment or cfg.get("comment", ""),
        "Created": image.created or cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": image_config(cfg.get("config") or {}, api_version),
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "GraphDriver": {"Name": driver, "Data": dict(graph_data or {})},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    if cfg.get("os.version"):
        out["OsVersion"] = cfg["os.version"]
    if before(api_version, "1.45"):
        out["Container"] = cfg.get("container", "")
        out["ContainerConfig"] = image_config(cfg.get("container_config") or {}, api_version)
    if before(api_version, "1.44"):
        out["VirtualSize"] = image.size
    return out


def history_json(entries: list[HistoryEntry]) -> list[JSONDict]:
    return [
        {
            "Id": e.id,
            "Created": e.created,
            "CreatedBy": e.created_by,
            "Tags": list(e.tags) or None,
            "Size": e.size,
            "Comment": e.comment,
        }
        for e in entries
    ]


def disk_usage_json(
    usage: ImagesUsage,
    api_version: str,
    types: list[str],
    *,
    containers: list[JSONDict] | None = None,
    volumes: list[JSONDict] | None = None,
    build_cache: list[JSONDict] | None = None,
) -> JSONDict:
    want = set(types) or {"container", "image", "volume", "build-cache"}
    out: JSONDict = {}
    if "image" in want:
        out["LayersSize"] = usage.layers_size
        out["Images"] = [
            image_summary(u.image, api_version, shared_size=u.shared_size, containers=u.containers)
            for u in usage.images
        ]
    if "container" in want:
        out["Containers"] = containers or []
    if "volume" in want:
        out["Volumes"] = volumes or []
    if "build-cache" in want:
        out["BuildCache"] = build_cache or []
    return out


def build_cache_json(records: list[Any]) -> list[JSONDict]:
    """``engine.builds.CacheRecord`` items as Docker's BuildCache records."""
    from datetime import UTC, datetime

    def when(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return [
        {"ID": r.id, "Parent": r.parent[7:] if r.parent else "", "Parents": [r.parent[7:]] if r.parent else None,
         "Type": "regular", "Description": r.description, "InUse": False, "Shared": False,
         "Size": r.size, "CreatedAt": when(r.created), "LastUsedAt": when(r.last_used), "UsageCount": 1}
        for r in records
    ]


def event_matches(e: Event, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: type, event, image, container, label, scope, and object names."""
    def any_of(key: str, values: set[str]) -> bool:
        return key not in filters or bool(values & set(filters[key]))

    if not any_of("type", {e.type}) or not any_of("event", {e.action}) or not any_of("scope", {e.scope}):
        return False
    ids = {e.actor_id, e.attributes.get("name", "")}
    ids |= {familiar_name(i) for i in ids if i} | {i[7:] for i in ids if i.startswith("sha256:")}
    for key in ("image", "container", "network", "volume", "plugin", "daemon", "node", "service",
                "secret", "config"):
        if key in filters:
            if e.type != key and not (key == "image" and "image" in e.attributes):
                return False
            names = ids if e.type == key else {e.attributes["image"], familiar_name(e.attributes["image"])}
            if not (names & set(filters[key]) or any(i.startswith(v) for i in names for v in filters[key] if v)):
                return False
    if "label" in filters:
        for item in filters["label"]:
            k, sep, v = item.partition("=")
            if k not in e.attributes or (sep and e.attributes[k] != v):
                return False
    return True
