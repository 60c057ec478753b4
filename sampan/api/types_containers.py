"""Docker's wire JSON for containers and volumes: inspect, summary (``ps``), wait, volumes.

The engine's dataclasses come in; PascalCase dicts go out, shaped as moby v28 sends them.
"""

from __future__ import annotations

import time
from typing import Any

from sampan.engine import links
from sampan.engine.images import unix_time
from sampan.engine.model import Container, HealthConfig, HostSpec, MountPoint
from sampan.engine.volumes import Volume
from sampan.units import human_duration

JSONDict = dict[str, Any]


def _since(rfc3339: str, now: float) -> float:
    frac = 0.0
    if "." in rfc3339:
        digits = rfc3339.split(".", 1)[1].rstrip("Zz")[:9]
        frac = float("0." + digits) if digits.isdigit() else 0.0
    return max(0.0, now - (unix_time(rfc3339) + frac))


def status_text(c: Container, now: float | None = None) -> str:
    """``ps`` STATUS: "Up 2 minutes (healthy)", "Exited (0) 3 seconds ago", "Created"..."""
    now = time.time() if now is None else now
    s = c.state
    if s.status == "running" or s.status == "paused":
        text = "Up " + human_duration(_since(s.started_at, now))
        if s.status == "paused":
            return text + " (Paused)"
        if s.health is not None:
            return text + (" (health: starting)" if s.health.status == "starting" else f" ({s.health.status})")
        return text
    if s.status == "restarting":
        return f"Restarting ({s.exit_code}) {human_duration(_since(s.finished_at, now))} ago"
    if s.status == "removing":
        return "Removal In Progress"
    if s.status == "dead":
        return "Dead"
    if s.status == "exited" and c.has_been_started:
        return f"Exited ({s.exit_code}) {human_duration(_since(s.finished_at, now))} ago"
    return "Created"


def command_text(c: Container) -> str:
    """``Command`` as dockerd's container view writes it: arguments that contain a space are
    wrapped in single quotes (nothing is escaped), then joined with the path by spaces."""
    if not c.args:
        return c.path
    return " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)])


def mount_json(m: MountPoint) -> JSONDict:
    out: JSONDict = {"Type": m.type}
    if m.type == "volume":
        out["Name"] = m.name
    out["Source"] = m.source
    out["Destination"] = m.destination
    if m.type == "volume":
        out["Driver"] = m.driver or "local"
    out["Mode"] = m.mode
    out["RW"] = m.rw
    out["Propagation"] = m.propagation if m.type == "bind" else ""
    return out


def container_summary(c: Container, api_version: str) -> JSONDict:
    out: JSONDict = {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image_name or c.image_id,
        "ImageID": c.image_id,
        "Command": command_text(c),
        "Created": unix_time(c.created),
        "Ports": _port_list(c),
        "Labels": dict(c.spec.labels),
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host.network_mode},
        "NetworkSettings": {"Networks": _networks(c)},
        "Mounts": [mount_json(m) for m in c.mount_points],
    }
    if c.size_rw is not None:
        out["SizeRw"] = c.size_rw
        out["SizeRootFs"] = c.size_root_fs or 0
    return out


def _configured(c: Container, network: str) -> JSONDict:
    """The endpoint settings the container was created or connected with (Docker keeps them)."""
    cfg = c.host.endpoints_config.get(network) or (c.host.endpoints_config.get("") if network == c.host.network_mode else None) or {}
    ipv4, ipv6 = str(cfg.get("ipv4") or ""), str(cfg.get("ipv6") or "")
    ipam = {k: v for k, v in (("IPv4Address", ipv4), ("IPv6Address", ipv6)) if v}
    return {"IPAMConfig": ipam or None, "Links": list(cfg.get("links") or []) or None,
            "DriverOpts": dict(cfg.get("driver_opts") or {}) or None, "MacAddress": str(cfg.get("mac") or "")}


def _networks(c: Container) -> JSONDict:
    if c.endpoints:
        return {ep.network: {
            **_configured(c, ep.network), "Aliases": ep.aliases or None, "MacAddress": ep.mac_address,
            "NetworkID": ep.network_id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
            "IPAddress": ep.ip_address, "IPPrefixLen": ep.prefixlen, "IPv6Gateway": ep.ipv6_gateway,
            "GlobalIPv6Address": ep.ipv6_address, "GlobalIPv6PrefixLen": ep.ipv6_prefixlen, "DNSNames": [c.name, c.short_id, *ep.aliases] if ep.network != "bridge" else None,
        } for ep in c.endpoints}
    mode = c.host.network_mode
    if mode.startswith("container:"):  # it has no network of its own
        return {}
    # not running: the networks it will join at start (``--network``, ``network connect``)
    names = [mode, *(n for n in c.host.endpoints_config if n and n != mode)]
    return {name: {
        **_configured(c, name), "Aliases": (c.host.endpoints_config.get(name) or {}).get("aliases") or None,
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None,
    } for name in names}


def _network_settings(c: Container) -> JSONDict:
    """Docker's top-level fields describe the default ``bridge`` network's endpoint."""
    ep = next((e for e in c.endpoints if e.network == "bridge"), None)
    ports: dict[str, list[dict[str, str]] | None] = {p: None for p in c.spec.exposed_ports} if c.endpoints else {}
    for p in c.ports:
        ports.setdefault(p.container_port, [])
        ports[p.container_port] = [*(ports[p.container_port] or []), {"HostIp": p.host_ip, "HostPort": p.host_port}]
    return {
        "Bridge": "", "SandboxID": c.id if c.sandbox_key else "", "SandboxKey": c.sandbox_key, "Ports": ports,
        "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None, "EndpointID": ep.endpoint_id if ep else "", "Gateway": ep.gateway if ep else "",
        "GlobalIPv6Address": ep.ipv6_address if ep else "", "GlobalIPv6PrefixLen": ep.ipv6_prefixlen if ep else 0,
        "IPAddress": ep.ip_address if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0, "IPv6Gateway": ep.ipv6_gateway if ep else "", "MacAddress": ep.mac_address if ep else "",
        "Networks": _networks(c),
    }


def _port_list(c: Container) -> list[JSONDict]:
    """``ps``'s Ports: published ones with their host side, exposed ones without."""
    out: list[JSONDict] = []
    published = set()
    for p in c.ports:
        number, _, proto = p.container_port.partition("/")
        published.add(p.container_port)
        out.append({"IP": p.host_ip, "PrivatePort": int(number), "PublicPort": int(p.host_port), "Type": proto})
    for key in c.spec.exposed_ports:
        if key not in published:
            number, _, proto = key.partition("/")
            out.append({"PrivatePort": int(number), "Type": proto or "tcp"})
    return out


def _health_config(h: HealthConfig | None) -> JSONDict | None:
    if h is None:
        return None
    out: JSONDict = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval_ns), ("Timeout", h.timeout_ns), ("StartPeriod", h.start_period_ns),
                       ("StartInterval", h.start_interval_ns), ("Retries", h.retries)):
        if value:
            out[key] = value
    return out


def config_json(c: Container) -> JSONDict:
    s = c.spec
    out: JSONDict = {
        "Hostname": s.hostname or c.id[:12],
        "Domainname": s.domainname,
        "User": s.user,
        "AttachStdin": s.attach_stdin,
        "AttachStdout": s.attach_stdout,
        "AttachStderr": s.attach_stderr,
        "Tty": s.tty,
        "OpenStdin": s.open_stdin,
        "StdinOnce": s.stdin_once,
        "Env": list(s.env) or None,
        "Cmd": list(s.cmd) or None,
        "Image": c.image_name,
        "Volumes": {v: {} for v in s.volumes} or None,
        "WorkingDir": s.working_dir,
        "Entrypoint": list(s.entrypoint) or None,
        "OnBuild": list(s.on_build) or None,
        "Labels": dict(s.labels),
    }
    if s.exposed_ports:
        out["ExposedPorts"] = {p: {} for p in s.exposed_ports}
    if s.healthcheck is not None:
        out["Healthcheck"] = _health_config(s.healthcheck)
    if s.stop_signal:
        out["StopSignal"] = s.stop_signal
    if s.stop_timeout is not None:
        out["StopTimeout"] = s.stop_timeout
    if s.shell:
        out["Shell"] = list(s.shell)
    return out


def host_config_json(h: HostSpec, name: str = "") -> JSONDict:
    out: JSONDict = {
        "Binds": list(h.binds) or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": h.log_config.type, "Config": dict(h.log_config.config)},
        "NetworkMode": h.network_mode,
        "PortBindings": h.port_bindings or {},
        "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": list(h.volumes_from) or None,
        "ConsoleSize": list(h.console_size),
        "CapAdd": list(h.cap_add) or None,
        "CapDrop": list(h.cap_drop) or None,
        "CgroupnsMode": "private",
        "Dns": list(h.dns),
        "DnsOptions": list(h.dns_options),
        "DnsSearch": list(h.dns_search),
        "ExtraHosts": list(h.extra_hosts) or None,
        "GroupAdd": list(h.group_add) or None,
        "IpcMode": h.ipc_mode,
        "Cgroup": "",
        "Links": [f"/{n}:/{name}/{a}" for n, a in map(links.parse, h.links)] or None,
        "OomScoreAdj": h.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.readonly_rootfs,
        "SecurityOpt": list(h.security_opt) or None,
        "UTSMode": h.uts_mode,
        "UsernsMode": "",
        "ShmSize": h.shm_size or 64 << 20,
        "Runtime": h.runtime,
        "Isolation": h.isolation,
        "CpuShares": h.cpu_shares,
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": h.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": h.cpu_period,
        "CpuQuota": h.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": h.cpuset_cpus,
        "CpusetMems": h.cpuset_mems,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                     "CgroupPermissions": d.cgroup_permissions} for d in h.devices],
        "DeviceCgroupRules": list(h.device_cgroup_rules) or None,
        "DeviceRequests": None,
        "MemoryReservation": h.memory_reservation,
        "MemorySwap": h.memory_swap if h.memory_swap else (h.memory * 2 if h.memory else 0),
        "MemorySwappiness": h.memory_swappiness,
        "OomKillDisable": h.oom_kill_disable,
        "PidsLimit": h.pids_limit or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in h.ulimits] or None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": None if h.privileged else _masked(),
        "ReadonlyPaths": None if h.privileged else _readonly(),
    }
    # `omitempty` in moby's HostConfig: absent when unset (swagger.yaml has no null for them)
    if h.tmpfs:
        out["Tmpfs"] = dict(h.tmpfs)
    if h.sysctls:
        out["Sysctls"] = dict(h.sysctls)
    if h.mounts:
        out["Mounts"] = [_mount_spec_json(m) for m in h.mounts]
    if h.init:
        out["Init"] = True
    return out


def _masked() -> list[str]:
    from sampan.oci.defaults import MASKED_PATHS

    return list(MASKED_PATHS)


def _readonly() -> list[str]:
    from sampan.oci.defaults import READONLY_PATHS

    return list(READONLY_PATHS)


def _mount_spec_json(m: Any) -> JSONDict:
    out: JSONDict = {"Type": m.type, "Source": m.source, "Target": m.target}
    if m.read_only:
        out["ReadOnly"] = True
    if m.propagation:
        out["BindOptions"] = {"Propagation": m.propagation}
    if m.type == "volume" and (m.no_copy or m.labels):
        out["VolumeOptions"] = {"NoCopy": m.no_copy, "Labels": dict(m.labels)}
    return out


def _health_json(c: Container) -> JSONDict | None:
    h = c.state.health
    if h is None:
        return None
    return {"Status": h.status, "FailingStreak": h.failing_streak,
            "Log": [{"Start": e.start, "End": e.end, "ExitCode": e.exit_code, "Output": e.output} for e in h.log]}


def container_inspect(c: Container, api_version: str, *, graph_data: dict[str, str] | None = None) -> JSONDict:
    s = c.state
    state: JSONDict = {
        "Status": s.status, "Running": s.running, "Paused": s.paused, "Restarting": s.restarting,
        "OOMKilled": s.oom_killed, "Dead": s.dead, "Pid": s.pid, "ExitCode": s.exit_code,
        "Error": s.error, "StartedAt": s.started_at, "FinishedAt": s.finished_at,
    }
    health = _health_json(c)
    if health is not None:
        state["Health"] = health
    out: JSONDict = {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": list(c.args),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path,
        "HostsPath": c.hosts_path,
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": c.driver,
        "Platform": c.platform,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config_json(c.host, c.name),
        "GraphDriver": {"Data": {"LowerDir": "", "WorkDir": "", **graph_data, "MergedDir": c.bundle_dir + "/rootfs"}
                        if graph_data else None, "Name": c.driver},
        "Mounts": [mount_json(m) for m in c.mount_points],
        "Config": config_json(c),
        "NetworkSettings": _network_settings(c),
    }
    if c.size_rw is not None:
        out["SizeRw"] = c.size_rw
        out["SizeRootFs"] = c.size_root_fs or 0
    return out


def volume_json(v: Volume, *, usage: bool = False) -> JSONDict:
    out: JSONDict = {
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": dict(v.labels) or None,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": dict(v.options) or None,
        "Scope": v.scope,
    }
    if usage:
        out["UsageData"] = {"Size": v.size, "RefCount": v.ref_count}
    return out
