"""Docker's create/update request bodies (PascalCase) -> the engine's container dataclasses.

Each field is type-checked; a wrong type is a 400 naming the field, as Docker's JSON decoder
reports it.  Fields sampan ignores (Windows, swarm, cgroup-parent...) are accepted silently
unless they would change behaviour and are unsupported, which is an explicit error.
"""

from __future__ import annotations

from typing import Any

from sampan import errors
from sampan.engine.model import (
    ContainerSpec,
    DeviceMapping,
    HealthConfig,
    HostSpec,
    LogConfig,
    MountSpec,
    RestartPolicy,
    Ulimit,
)

JSONDict = dict[str, Any]


def _get(body: JSONDict, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) and kind is int:
        raise errors.InvalidArgument(f"json: cannot unmarshal bool into Go struct field .{key} of type int64")
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else kind[0].__name__
        raise errors.InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field .{key} of type {want}"
        )
    return value


def _strs(body: JSONDict, key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str):  # Docker's StrSlice accepts a single string
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument(f"json: cannot unmarshal {key}: expected a list of strings")
    return list(value)


def _str_map(body: JSONDict, key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"json: cannot unmarshal {key}: expected an object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def container_spec(body: JSONDict) -> ContainerSpec:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("container config must be a JSON object")
    hc = body.get("Healthcheck")
    health = None
    if isinstance(hc, dict):
        health = HealthConfig(
            test=_strs(hc, "Test"), interval_ns=_get(hc, "Interval", int, 0),
            timeout_ns=_get(hc, "Timeout", int, 0), start_period_ns=_get(hc, "StartPeriod", int, 0),
            start_interval_ns=_get(hc, "StartInterval", int, 0), retries=_get(hc, "Retries", int, 0),
        )
    image = _get(body, "Image", str, "")
    if not image:
        raise errors.InvalidArgument("config cannot be empty in order to create a container")
    return ContainerSpec(
        image=image,
        cmd=_strs(body, "Cmd"),
        entrypoint=_strs(body, "Entrypoint"),
        env=_strs(body, "Env"),
        working_dir=_get(body, "WorkingDir", str, ""),
        user=_get(body, "User", str, ""),
        hostname=_get(body, "Hostname", str, ""),
        domainname=_get(body, "Domainname", str, ""),
        labels=_str_map(body, "Labels"),
        tty=bool(body.get("Tty")),
        open_stdin=bool(body.get("OpenStdin")),
        stdin_once=bool(body.get("StdinOnce")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
        exposed_ports=list((body.get("ExposedPorts") or {}).keys()),
        volumes=list((body.get("Volumes") or {}).keys()),
        stop_signal=_get(body, "StopSignal", str, ""),
        stop_timeout=_get(body, "StopTimeout", int, None),
        healthcheck=health,
    )


def _mounts(raw: Any) -> list[MountSpec]:
    out = []
    for i, m in enumerate(raw or []):
        if not isinstance(m, dict):
            raise errors.InvalidArgument(f"HostConfig.Mounts[{i}] must be an object")
        kind = _get(m, "Type", str, "")
        target = _get(m, "Target", str, "") or _get(m, "Destination", str, "")
        if not target:
            raise errors.InvalidArgument(f'invalid mount config for type "{kind}": field Target must not be empty')
        spec = MountSpec(type=kind, target=target, source=_get(m, "Source", str, ""),
                         read_only=bool(m.get("ReadOnly")))
        if isinstance(m.get("BindOptions"), dict):
            spec.propagation = _get(m["BindOptions"], "Propagation", str, "")
        if isinstance(m.get("VolumeOptions"), dict):
            vo = m["VolumeOptions"]
            spec.no_copy = bool(vo.get("NoCopy"))
            spec.labels = _str_map(vo, "Labels")
            driver = (vo.get("DriverConfig") or {}).get("Name") if isinstance(vo.get("DriverConfig"), dict) else None
            if driver and driver != "local":
                raise errors.NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if isinstance(m.get("TmpfsOptions"), dict):
            to = m["TmpfsOptions"]
            size = _get(to, "SizeBytes", int, 0)
            mode = _get(to, "Mode", int, 0)
            if size:
                spec.options.append(f"size={size}")
            if mode:
                spec.options.append(f"mode={mode:o}")
        if kind == "tmpfs" and spec.source:
            raise errors.InvalidArgument('invalid mount config for type "tmpfs": field Source must not be specified')
        out.append(spec)
    return out


def host_spec(raw: Any) -> HostSpec:
    h: JSONDict = raw if isinstance(raw, dict) else {}
    rp: JSONDict = h["RestartPolicy"] if isinstance(h.get("RestartPolicy"), dict) else {}
    lc: JSONDict = h["LogConfig"] if isinstance(h.get("LogConfig"), dict) else {}
    log_type = _get(lc, "Type", str, "") or "json-file"
    if log_type not in ("json-file", "local", "none"):
        raise errors.InvalidArgument(f"logger: no log driver named '{log_type}' is registered")
    console = h.get("ConsoleSize") or [0, 0]
    return HostSpec(
        binds=_strs(h, "Binds"),
        mounts=_mounts(h.get("Mounts")),
        tmpfs=_str_map(h, "Tmpfs"),
        readonly_rootfs=bool(h.get("ReadonlyRootfs")),
        privileged=bool(h.get("Privileged")),
        cap_add=_strs(h, "CapAdd"),
        cap_drop=_strs(h, "CapDrop"),
        security_opt=_strs(h, "SecurityOpt"),
        ulimits=[Ulimit(str(u.get("Name")), int(u.get("Soft") or 0), int(u.get("Hard") or 0))
                 for u in h.get("Ulimits") or [] if isinstance(u, dict)],
        init=bool(h.get("Init")),
        auto_remove=bool(h.get("AutoRemove")),
        restart_policy=RestartPolicy(_get(rp, "Name", str, "") or "no", _get(rp, "MaximumRetryCount", int, 0)),
        network_mode=_get(h, "NetworkMode", str, ""),
        memory=_get(h, "Memory", int, 0),
        memory_reservation=_get(h, "MemoryReservation", int, 0),
        memory_swap=_get(h, "MemorySwap", int, 0),
        memory_swappiness=_swappiness(_get(h, "MemorySwappiness", int, -1)),
        cpu_shares=_get(h, "CpuShares", int, 0),
        nano_cpus=_get(h, "NanoCpus", int, 0),
        cpu_quota=_get(h, "CpuQuota", int, 0),
        cpu_period=_get(h, "CpuPeriod", int, 0),
        cpuset_cpus=_get(h, "CpusetCpus", str, ""),
        cpuset_mems=_get(h, "CpusetMems", str, ""),
        pids_limit=_get(h, "PidsLimit", int, 0) if (h.get("PidsLimit") or 0) > 0 else 0,
        blkio_weight=_get(h, "BlkioWeight", int, 0),
        shm_size=_get(h, "ShmSize", int, 0),
        log_config=LogConfig(log_type, _str_map(lc, "Config")),
        runtime=runtime_name(_get(h, "Runtime", str, "")),
        oom_score_adj=_get(h, "OomScoreAdj", int, 0),
        oom_kill_disable=bool(h.get("OomKillDisable")),
        sysctls=_str_map(h, "Sysctls"),
        devices=[DeviceMapping(str(d.get("PathOnHost") or ""), str(d.get("PathInContainer") or ""),
                               str(d.get("CgroupPermissions") or "rwm"))
                 for d in h.get("Devices") or [] if isinstance(d, dict)],
        console_size=[int(x or 0) for x in console][:2] if isinstance(console, list) else [0, 0],
        group_add=_strs(h, "GroupAdd"),
        extra_hosts=_strs(h, "ExtraHosts"),
        links=_strs(h, "Links"),
        dns=_strs(h, "Dns"),
        dns_search=_strs(h, "DnsSearch"),
        dns_options=_strs(h, "DnsOptions"),
        ipc_mode=_get(h, "IpcMode", str, "") or "private",
        pid_mode=_get(h, "PidMode", str, ""),
        uts_mode=_get(h, "UTSMode", str, ""),
        isolation=_get(h, "Isolation", str, ""),
        volumes_from=_strs(h, "VolumesFrom"),
        device_cgroup_rules=_strs(h, "DeviceCgroupRules"),
        port_bindings=_port_bindings(h.get("PortBindings")),
        publish_all_ports=bool(h.get("PublishAllPorts")),
    )


def _port_bindings(raw: Any) -> dict[str, list[dict[str, str]]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise errors.InvalidArgument("HostConfig.PortBindings must be an object")
    out: dict[str, list[dict[str, str]]] = {}
    for port, bindings in raw.items():
        out[str(port)] = [{"HostIp": str(b.get("HostIp") or ""), "HostPort": str(b.get("HostPort") or "")}
                          for b in bindings or [] if isinstance(b, dict)] or [{"HostIp": "", "HostPort": ""}]
    return out


def endpoints_config(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``NetworkingConfig.EndpointsConfig`` (and the older top-level ``MacAddress``) by network."""
    raw = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if not isinstance(raw, dict):
        raise errors.InvalidArgument("NetworkingConfig.EndpointsConfig must be an object")
    out: dict[str, dict[str, Any]] = {}
    for name, ep in raw.items():
        out[str(name)] = endpoint_settings(ep)
    mac = str(body.get("MacAddress") or "")  # API < 1.44: for the container's first network
    if mac and not out:
        out[""] = {"aliases": [], "ipv4": "", "mac": mac}
    elif mac:
        for ep in out.values():
            ep["mac"] = ep["mac"] or mac
    return out


def endpoint_settings(ep: Any) -> dict[str, Any]:
    """One ``EndpointSettings`` (create's ``EndpointsConfig`` entry, connect's ``EndpointConfig``)."""
    ep = ep if isinstance(ep, dict) else {}
    ipam = ep.get("IPAMConfig") or {}
    opts = ep.get("DriverOpts") or {}
    return {"aliases": [str(a) for a in ep.get("Aliases") or []],
            "ipv4": str(ipam.get("IPv4Address") or "") if isinstance(ipam, dict) else "",
            "ipv6": str(ipam.get("IPv6Address") or "") if isinstance(ipam, dict) else "",
            "mac": str(ep.get("MacAddress") or ""),
            "links": [str(link) for link in ep.get("Links") or []],
            "driver_opts": {str(k): str(v) for k, v in opts.items()} if isinstance(opts, dict) else {}}


def _swappiness(value: int) -> int | None:
    if value == -1:
        return None
    if not 0 <= value <= 100:
        raise errors.InvalidArgument(f"Invalid value: {value}, valid memory swappiness range is 0-100")
    return value


def runtime_name(name: str) -> str:
    return "sampan" if name in ("", "sampan", "sampan-runtime", "io.containerd.runc.v2") else name


#: update body field -> HostSpec field (Docker's UpdateConfig: Resources + RestartPolicy)
UPDATE_FIELDS = {
    "Memory": "memory", "MemoryReservation": "memory_reservation", "MemorySwap": "memory_swap",
    "CpuShares": "cpu_shares", "NanoCpus": "nano_cpus", "CpuQuota": "cpu_quota",
    "CpuPeriod": "cpu_period", "CpusetCpus": "cpuset_cpus", "CpusetMems": "cpuset_mems",
    "PidsLimit": "pids_limit", "BlkioWeight": "blkio_weight",
}


def update_changes(body: JSONDict) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("update body must be a JSON object")
    changes: dict[str, Any] = {}
    for key, field in UPDATE_FIELDS.items():
        if body.get(key) not in (None, 0, ""):
            changes[field] = _get(body, key, str if field.startswith("cpuset") else int)
    if body.get("KernelMemory"):
        raise errors.InvalidArgument("kernel memory limits are not supported")
    rp = body.get("RestartPolicy")
    if isinstance(rp, dict) and rp.get("Name") is not None:
        changes["restart_policy"] = RestartPolicy(_get(rp, "Name", str, "") or "no", _get(rp, "MaximumRetryCount", int, 0))
    return changes
