"""The flags of ``create``/``run`` and the ``POST /containers/create`` body they make.

Flag names, value syntaxes and field mapping follow the docker CLI's ``cli/command/container/
opts.go``: memory sizes in binary units (``100m``, ``1g``), Go durations for the health flags
(``30s``, ``1m30s``), ``-v`` specs with a colon go to ``HostConfig.Binds`` and bare container
paths to ``Config.Volumes``, ``--mount`` CSV, ``-p`` to ``ExposedPorts`` + ``PortBindings``.
A bad value is a :class:`~sampan.cli.flags.UsageError` with exit status 125, as docker's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sampan.cli.flags import Flag, UsageError
from sampan.units import parse_duration, ram_in_bytes

CREATE_FLAGS: tuple[Flag, ...] = (
    Flag("add-host", kind="list", help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("link", kind="list", help="Add link to another container (name:alias)"),
    Flag("attach", "a", kind="list", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("cap-add", kind="list", help="Add Linux capabilities"),
    Flag("cap-drop", kind="list", help="Drop Linux capabilities"),
    Flag("cpu-shares", "c", kind="int", help="CPU shares (relative weight)"),
    Flag("cpus", kind="string", metavar="decimal", help="Number of CPUs"),
    Flag("cpuset-cpus", kind="string", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("device", kind="list", help="Add a host device to the container"),
    Flag("dns", kind="list", help="Set custom DNS servers"),
    Flag("dns-option", kind="list", help="Set DNS options"),
    Flag("dns-search", kind="list", help="Set custom DNS search domains"),
    Flag("entrypoint", kind="string", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("env", "e", kind="list", help="Set environment variables"),
    Flag("env-file", kind="list", help="Read in a file of environment variables"),
    Flag("expose", kind="list", help="Expose a port or a range of ports"),
    Flag("group-add", kind="list", help="Add additional groups to join"),
    Flag("health-cmd", kind="string", help="Command to run to check health"),
    Flag("health-interval", kind="string", metavar="duration", help="Time between running the check (ms|s|m|h) (default 0s)"),
    Flag("health-retries", kind="int", help="Consecutive failures needed to report unhealthy"),
    Flag("health-start-interval", kind="string", metavar="duration", help="Time between running the check during the start period (ms|s|m|h) (default 0s)"),
    Flag("health-start-period", kind="string", metavar="duration", help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
    Flag("health-timeout", kind="string", metavar="duration", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
    Flag("hostname", "h", kind="string", help="Container host name"),
    Flag("init", help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("ip", kind="string", help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", kind="string", help="IPv6 address (e.g., 2001:db8::33)"),
    Flag("ipc", kind="string", help="IPC mode to use"),
    Flag("label", "l", kind="list", help="Set meta data on a container"),
    Flag("log-driver", kind="string", help="Logging driver for the container"),
    Flag("log-opt", kind="list", help="Log driver options"),
    Flag("mac-address", kind="string", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("memory", "m", kind="string", metavar="bytes", help="Memory limit"),
    Flag("memory-reservation", kind="string", metavar="bytes", help="Memory soft limit"),
    Flag("memory-swappiness", kind="int", metavar="int", default=-1,
         help="Tune container memory swappiness (0 to 100) (default -1)"),
    Flag("memory-swap", kind="string", metavar="bytes", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    Flag("mount", kind="list", metavar="mount", help="Attach a filesystem mount to the container"),
    Flag("name", kind="string", help="Assign a name to the container"),
    Flag("network", kind="string", metavar="network", help="Connect a container to a network"),
    Flag("network-alias", kind="list", help="Add network-scoped alias for the container"),
    Flag("oom-kill-disable", help="Disable OOM Killer"),
    Flag("pid", kind="string", help="PID namespace to use"),
    Flag("pids-limit", kind="int", help="Tune container pids limit (set -1 for unlimited)"),
    Flag("platform", kind="string", help="Set platform if server is multi-platform capable"),
    Flag("privileged", help="Give extended privileges to this container"),
    Flag("publish", "p", kind="list", help="Publish a container's port(s) to the host"),
    Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    Flag("pull", kind="string", default="missing", help='Pull image before running ("always", "missing", "never")'),
    Flag("quiet", "q", help="Suppress the pull output"),
    Flag("read-only", help="Mount the container's root filesystem as read only"),
    Flag("restart", kind="string", default="no", help="Restart policy to apply when a container exits"),
    Flag("rm", help="Automatically remove the container and its associated anonymous volumes when it exits"),
    Flag("runtime", kind="string", help="Runtime to use for this container"),
    Flag("security-opt", kind="list", help="Security Options"),
    Flag("shm-size", kind="string", metavar="bytes", help="Size of /dev/shm"),
    Flag("stop-signal", kind="string", help="Signal to stop the container"),
    Flag("stop-timeout", kind="int", default=-1, help="Timeout (in seconds) to stop a container"),
    Flag("sysctl", kind="list", metavar="map", help="Sysctl options"),
    Flag("tmpfs", kind="list", help="Mount a tmpfs directory"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag("ulimit", kind="list", metavar="ulimit", help="Ulimit options"),
    Flag("user", "u", kind="string", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("volume", "v", kind="list", help="Bind mount a volume"),
    Flag("workdir", "w", kind="string", help="Working directory inside the container"),
    Flag("no-healthcheck", help="Disable any container-specified HEALTHCHECK"),
)
CREATE_FLAGS = tuple(sorted(CREATE_FLAGS, key=lambda f: f.long))  # docker's help lists them sorted


def bad(message: str) -> UsageError:
    return UsageError(message, code=125)


def ram_bytes(text: str, flag: str) -> int:
    """go-units ``RAMInBytes``: ``512``, ``100m``, ``1.5g``, ``2GiB``, ``64kb`` (binary units)."""
    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise bad(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def duration_ns(text: str, flag: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (``1m30s``, ``500ms``, ``0``)."""
    value = text.strip()
    if value == "":
        return 0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise bad(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def parse_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise bad(f"open {path}: {exc.strerror or exc}") from None
    out = []
    for raw in lines:
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def resolve_env(entries: list[str], environ: Mapping[str, str]) -> list[str]:
    """``KEY=VALUE`` kept; a bare ``KEY`` takes the CLI's environment value, or is dropped."""
    out = []
    for entry in entries:
        key, eq, _ = entry.partition("=")
        if not key:
            raise bad(f'invalid argument "{entry}" for "-e, --env" flag: invalid environment variable: {entry}')
        if eq:
            out.append(entry)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def parse_restart(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if name not in ("", "no", "always", "on-failure", "unless-stopped"):
        raise bad(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    retries = 0
    if count:
        if name != "on-failure":
            raise bad("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        if not count.isdigit():
            raise bad("invalid restart policy format: maximum retry count must be an integer")
        retries = int(count)
    return {"Name": name if name != "no" else "no", "MaximumRetryCount": retries}


def parse_ports(publish: list[str], expose: list[str]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """``-p [ip:][hostPort:]containerPort[/proto]`` and ``--expose port[/proto]``."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        port, _, proto = spec.partition("/")
        proto = proto or "tcp"
        host_ip = host_port = ""
        if port.startswith("["):  # [::1]:8080:80
            end = port.find("]")
            host_ip, port = port[1:end], port[end + 2 :]
            host_port, _, container = port.rpartition(":")
        else:
            fields = port.split(":")
            if len(fields) == 1:
                container = fields[0]
            elif len(fields) == 2:
                host_port, container = fields
            elif len(fields) == 3:
                host_ip, host_port, container = fields
            else:
                raise bad(f"invalid published port: {spec}")
        if not container.replace("-", "").isdigit() or (host_port and not host_port.replace("-", "").isdigit()):
            raise bad(f"invalid published port: {spec}")
        key = f"{container}/{proto}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    for spec in expose:
        port, _, proto = spec.partition("/")
        if not port.replace("-", "").isdigit():
            raise bad(f"invalid range format for --expose: {spec}")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    return exposed, bindings


def parse_mount(spec: str) -> dict[str, Any]:
    """One ``--mount type=bind,source=/a,target=/b,readonly`` as a ``HostConfig.Mounts`` item."""
    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    volume: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            mount["ReadOnly"] = value.lower() in ("", "1", "true") if eq else True
            continue
        if key == "volume-nocopy" and not eq:
            volume["NoCopy"] = True
            continue
        if not eq:
            raise bad(f'invalid argument "{spec}" for "--mount" flag: invalid field \'{field}\' must be a key=value pair')
        if key == "type":
            if value not in ("bind", "volume", "tmpfs", "npipe", "cluster", "image"):
                raise bad(f'invalid argument "{spec}" for "--mount" flag: invalid mount type: {value}')
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "volume-nocopy":
            volume["NoCopy"] = value.lower() in ("", "1", "true")
        elif key == "volume-label":
            k, _, v = value.partition("=")
            volume.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_bytes(value, "--mount")
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise bad(f'invalid argument "{spec}" for "--mount" flag: invalid value for tmpfs-mode: {value}') from None
        else:
            raise bad(f'invalid argument "{spec}" for "--mount" flag: unexpected key \'{key}\' in \'{field}\'')
    if not mount.get("Target"):
        raise bad(f'invalid argument "{spec}" for "--mount" flag: target is required')
    if bind:
        mount["BindOptions"] = bind
    if volume:
        mount["VolumeOptions"] = volume
    if tmpfs:
        mount["TmpfsOptions"] = tmpfs
    return mount


def parse_ulimit(spec: str) -> dict[str, Any]:
    name, eq, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        soft_n = int(soft)
        hard_n = int(hard) if hard else soft_n
    except ValueError:
        raise bad(f'invalid argument "{spec}" for "--ulimit" flag: invalid ulimit argument: {spec}') from None
    if not eq or not name:
        raise bad(f'invalid argument "{spec}" for "--ulimit" flag: invalid ulimit argument: {spec}')
    if soft_n > hard_n:
        raise bad(f'invalid argument "{spec}" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: {soft_n} > {hard_n}')
    return {"Name": name, "Soft": soft_n, "Hard": hard_n}


def parse_security_opts(values: list[str]) -> list[str]:
    """``seccomp=FILE`` is sent inline as ``seccomp=<json>``, as the docker CLI does."""
    out = []
    for value in values:
        key, _, arg = value.partition("=") if "=" in value else value.partition(":")
        if key == "seccomp" and arg and arg != "unconfined" and not arg.lstrip().startswith("{"):
            import json

            try:
                with open(arg, encoding="utf-8") as f:
                    profile = json.load(f)
            except (OSError, ValueError) as exc:
                raise bad(f"opening seccomp profile ({arg}) failed: {exc}") from None
            value = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(value)
    return out


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def _devices(values: list[str]) -> list[dict[str, str]]:
    out = []
    for value in values:
        parts = value.split(":")
        host = parts[0]
        inner = parts[1] if len(parts) > 1 and parts[1] else host
        perms = parts[2] if len(parts) > 2 else "rwm"
        out.append({"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms})
    return out


def _healthcheck(opts: Mapping[str, Any]) -> dict[str, Any] | None:
    if opts["no_healthcheck"]:
        if opts["health_cmd"]:
            raise bad("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    if opts["health_cmd"]:
        check["Test"] = ["CMD-SHELL", opts["health_cmd"]]
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                      ("start_interval", "StartInterval")):
        text = str(opts[f"health_{flag}"])
        if text:
            ns = duration_ns(text, f"--health-{flag.replace('_', '-')}")
            if ns < 0:
                raise bad(f"--health-{flag.replace('_', '-')} cannot be negative")
            check[key] = ns
    if opts["health_retries"]:
        if int(opts["health_retries"]) < 0:
            raise bad("--health-retries cannot be negative")
        check["Retries"] = int(opts["health_retries"])
    return check or None


def create_body(
    opts: Mapping[str, Any],
    image: str,
    command: list[str],
    *,
    environ: Mapping[str, str],
    detach: bool,
    console_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The ``POST /containers/create`` JSON for ``create``/``run`` options."""
    attach = [a.lower() for a in opts["attach"]]
    for stream in attach:
        if stream not in ("stdin", "stdout", "stderr"):
            raise bad(f'invalid argument "{stream}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR')
    if detach and attach:
        raise bad("Conflicting options: -a and -d")
    if attach:
        attach_in, attach_out, attach_err = ("stdin" in attach), ("stdout" in attach), ("stderr" in attach)
    else:
        attach_in = bool(opts["interactive"]) and not detach
        attach_out = attach_err = not detach
    env: list[str] = []
    for path in opts["env_file"]:
        env += parse_env_file(path)
    env = resolve_env(env + list(opts["env"]), environ)
    exposed, bindings = parse_ports(list(opts["publish"]), list(opts["expose"]))
    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for spec in opts["volume"]:
        if ":" in spec:
            binds.append(spec)
        elif spec.startswith("/"):
            volumes[spec] = {}
        else:
            raise bad(f"invalid volume specification: '{spec}'")
    tmpfs: dict[str, str] = {}
    for spec in opts["tmpfs"]:
        path, _, options = spec.partition(":")
        tmpfs[path] = options
    config: dict[str, Any] = {
        "Hostname": opts["hostname"], "Domainname": "", "User": opts["user"],
        "AttachStdin": attach_in, "AttachStdout": attach_out, "AttachStderr": attach_err,
        "Tty": bool(opts["tty"]), "OpenStdin": bool(opts["interactive"]), "StdinOnce": attach_in,
        "Env": env, "Cmd": command or None, "Image": image, "WorkingDir": opts["workdir"],
        "Entrypoint": None, "Labels": _labels(list(opts["label"])),
    }
    if opts["entrypoint"]:
        config["Entrypoint"] = [opts["entrypoint"]]
    if exposed:
        config["ExposedPorts"] = exposed
    if volumes:
        config["Volumes"] = volumes
    health = _healthcheck(opts)
    if health:
        config["Healthcheck"] = health
    if opts["stop_signal"]:
        config["StopSignal"] = opts["stop_signal"]
    if int(opts["stop_timeout"]) >= 0:
        config["StopTimeout"] = int(opts["stop_timeout"])
    host: dict[str, Any] = {
        "Binds": binds or None, "AutoRemove": bool(opts["rm"]), "Privileged": bool(opts["privileged"]),
        "ReadonlyRootfs": bool(opts["read_only"]), "CapAdd": list(opts["cap_add"]) or None,
        "CapDrop": list(opts["cap_drop"]) or None, "SecurityOpt": parse_security_opts(list(opts["security_opt"])) or None,
        "RestartPolicy": parse_restart(str(opts["restart"])), "NetworkMode": opts["network"] or "default",
        "PortBindings": bindings, "PublishAllPorts": bool(opts["publish_all"]),
        "Mounts": [parse_mount(m) for m in opts["mount"]] or None, "Tmpfs": tmpfs or None,
        "Ulimits": [parse_ulimit(u) for u in opts["ulimit"]] or None,
        "CpuShares": int(opts["cpu_shares"]), "CpusetCpus": opts["cpuset_cpus"],
        "Devices": _devices(list(opts["device"])) or None, "Dns": list(opts["dns"]) or None,
        "DnsSearch": list(opts["dns_search"]) or None, "DnsOptions": list(opts["dns_option"]) or None,
        "ExtraHosts": list(opts["add_host"]) or None, "Links": list(opts["link"]) or None, "GroupAdd": list(opts["group_add"]) or None,
        "IpcMode": opts["ipc"], "PidMode": opts["pid"], "Runtime": opts["runtime"],
        "LogConfig": {"Type": opts["log_driver"], "Config": _labels(list(opts["log_opt"]))},
        "Sysctls": _labels(list(opts["sysctl"])) or None,
    }
    if opts["init"]:
        host["Init"] = True
    if opts["oom_kill_disable"]:
        host["OomKillDisable"] = True
    for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation"), ("shm_size", "ShmSize")):
        if opts[flag]:
            host[key] = ram_bytes(str(opts[flag]), f"--{flag.replace('_', '-')}")
    if opts["memory_swap"]:
        swap = str(opts["memory_swap"])
        host["MemorySwap"] = -1 if swap == "-1" else ram_bytes(swap, "--memory-swap")
    if opts["pids_limit"]:
        host["PidsLimit"] = int(opts["pids_limit"])
    if opts["memory_swappiness"] != -1:
        host["MemorySwappiness"] = opts["memory_swappiness"]
    if opts["cpus"]:
        try:
            host["NanoCpus"] = round(float(str(opts["cpus"])) * 1e9)
        except ValueError:
            raise bad(f'invalid argument "{opts["cpus"]}" for "--cpus" flag: failed to parse {opts["cpus"]} as a rational number') from None
    if console_size is not None:
        host["ConsoleSize"] = list(console_size)
    config["HostConfig"] = host
    network = str(opts["network"])
    endpoint: dict[str, Any] = {}
    if opts["network_alias"]:
        endpoint["Aliases"] = list(opts["network_alias"])
    if opts["ip"] or opts["ip6"]:
        endpoint["IPAMConfig"] = {k: str(v) for k, v in (("IPv4Address", opts["ip"]), ("IPv6Address", opts["ip6"])) if v}
    if opts["mac_address"]:
        endpoint["MacAddress"] = str(opts["mac_address"])
    if (network and network not in ("none", "host", "default", "bridge")) or endpoint:
        config["NetworkingConfig"] = {"EndpointsConfig": {network or "default": endpoint}}
    return config
