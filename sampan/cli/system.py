"""``sampan version``, ``sampan info`` and ``sampan system df``.

``version`` is the CLI's speed benchmark: it imports the client, ``json`` and nothing heavier
unless ``--format`` is given, and makes exactly one request (``GET /version``).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)
TABLE_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)

VERSION = Spec(
    "version", "[OPTIONS]", "Show the sampan version information",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    max_args=0,
)
INFO = Spec(
    "info", "[OPTIONS]", "Display system-wide information",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    aliases=("system info", "info"), max_args=0,
)
DF = Spec(
    "system df", "[OPTIONS]", "Show sampan disk usage",
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("verbose", "v", help="Show detailed information on space usage"),
    max_args=0,
)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


def go_arch() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def client_version() -> dict[str, Any]:
    from sampan import API_VERSION, __version__

    return {
        "Platform": {"Name": ""},
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + sys.version.split()[0],
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    }


def _aligned(lines: list[tuple[str, str]]) -> str:
    """Lines of (label, value) as docker version's tabwriter (minwidth 20, padding 1) shows them."""
    out = []
    for label, value in lines:
        out.append(label if value is None else f"{label.ljust(max(19, len(label)))} {value}".rstrip())
    return "\n".join(out) + "\n"


def _lang_label(value: str) -> str:
    return "Python version:" if value.startswith("python") else "Go version:"


def _client_section(c: dict[str, Any]) -> list[tuple[str, Any]]:
    name = c["Platform"]["Name"]
    lines: list[tuple[str, Any]] = [("Client:" + (f" {name}" if name else ""), None)]
    lines += [(" Version:", c["Version"]), (" API version:", c["ApiVersion"])]
    lines.append((" " + _lang_label(c["GoVersion"]), c["GoVersion"]))
    if c["GitCommit"]:
        lines.append((" Git commit:", c["GitCommit"]))
    if c["BuildTime"]:
        lines.append((" Built:", c["BuildTime"]))
    lines += [(" OS/Arch:", f"{c['Os']}/{c['Arch']}"), (" Context:", c["Context"])]
    return lines


def _server_section(s: dict[str, Any]) -> list[tuple[str, Any]]:
    name = (s.get("Platform") or {}).get("Name", "")
    lines: list[tuple[str, Any]] = [("", None), ("Server:" + (f" {name}" if name else ""), None)]
    components = s.get("Components") or [
        {"Name": "Engine", "Version": s.get("Version", ""), "Details": s}
    ]
    for comp in components:
        details = comp.get("Details") or {}
        lines.append((f" {comp.get('Name', '')}:", None))
        lines.append(("  Version:", comp.get("Version", "")))
        if comp.get("Name") == "Engine":
            api = details.get("ApiVersion", s.get("ApiVersion", ""))
            minimum = details.get("MinAPIVersion", s.get("MinAPIVersion", ""))
            go = details.get("GoVersion", s.get("GoVersion", ""))
            lines.append(("  API version:", f"{api} (minimum version {minimum})"))
            lines.append(("  " + _lang_label(str(go)), go))
            for label, key in (("Git commit:", "GitCommit"), ("Built:", "BuildTime")):
                value = details.get(key, s.get(key, ""))
                if value:
                    lines.append((f"  {label}", value))
            arch = f"{details.get('Os', s.get('Os', ''))}/{details.get('Arch', s.get('Arch', ''))}"
            lines.append(("  OS/Arch:", arch))
            lines.append(("  Experimental:", str(details.get("Experimental", s.get("Experimental", False))).lower()))
        else:
            for key in sorted(details):
                lines.append((f"  {key}:", details[key]))
    return lines


def version(ctx: Context, opts: Options, args: list[str]) -> int:
    fmt = str(opts["format"])
    client_info = client_version()
    if fmt:
        from sampan.cli.template import Template

        server: Any = None
        error = None
        try:
            server = ctx.client().version()
        except Exception as exc:  # print what we have, then the error, as docker does
            error = exc
        template = Template("{{json .}}" if fmt == "json" else fmt)
        ctx.stdout.write(template.render({"Client": client_info, "Server": server}) + "\n")
        if error is not None:
            raise error
        return 0
    ctx.stdout.write(_aligned(_client_section(client_info)))
    ctx.stdout.flush()
    server = ctx.client().version()
    ctx.stdout.write(_aligned(_server_section(server)))
    return 0


# ---------------------------------------------------------------- info


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("7.763GiB")."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    value = float(size)
    i = 0
    while value >= 1024.0 and i < len(units) - 1:
        value /= 1024.0
        i += 1
    return f"{value:.4g}{units[i]}"


def _info_lines(info: dict[str, Any]) -> list[str]:
    g = info.get
    out = [
        "Server:",
        f" Containers: {g('Containers', 0)}",
        f"  Running: {g('ContainersRunning', 0)}",
        f"  Paused: {g('ContainersPaused', 0)}",
        f"  Stopped: {g('ContainersStopped', 0)}",
        f" Images: {g('Images', 0)}",
        f" Server Version: {g('ServerVersion', '')}",
        f" Storage Driver: {g('Driver', '')}",
    ]
    out += [f"  {k}: {v}" for k, v in (g("DriverStatus") or [])]
    out.append(f" Logging Driver: {g('LoggingDriver', '')}")
    out.append(f" Cgroup Driver: {g('CgroupDriver', '')}")
    out.append(f" Cgroup Version: {g('CgroupVersion', '')}")
    plugins = g("Plugins") or {}
    if plugins:
        out.append(" Plugins:")
        out += [f"  {kind}: {' '.join(names)}" for kind, names in plugins.items() if names]
    swarm = (g("Swarm") or {}).get("LocalNodeState")
    if swarm:
        out.append(f" Swarm: {swarm}")
    runtimes = g("Runtimes") or {}
    if runtimes:
        out.append(" Runtimes: " + " ".join(runtimes))
    if g("DefaultRuntime"):
        out.append(f" Default Runtime: {g('DefaultRuntime')}")
    security = g("SecurityOptions") or []
    if security:
        out.append(" Security Options:")
        for opt in security:
            fields = dict(part.split("=", 1) for part in str(opt).split(",") if "=" in part)
            out.append(f"  {fields.pop('name', opt)}")
            out += [f"   {k.title()}: {v}" for k, v in fields.items()]
    out += [
        f" Kernel Version: {g('KernelVersion', '')}",
        f" Operating System: {g('OperatingSystem', '')}",
        f" OSType: {g('OSType', '')}",
        f" Architecture: {g('Architecture', '')}",
        f" CPUs: {g('NCPU', 0)}",
        f" Total Memory: {bytes_size(g('MemTotal', 0) or 0)}",
        f" Name: {g('Name', '')}",
        f" ID: {g('ID', '')}",
        f" Docker Root Dir: {g('DockerRootDir', '')}",
        f" Debug Mode: {str(bool(g('Debug', False))).lower()}",
        f" Experimental: {str(bool(g('ExperimentalBuild', False))).lower()}",
    ]
    registries = (g("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    if registries:
        out.append(" Insecure Registries:")
        out += [f"  {r}" for r in registries]
    out.append(f" Live Restore Enabled: {str(bool(g('LiveRestoreEnabled', False))).lower()}")
    return out


def info(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan import __version__

    client_info = {"Version": __version__, "Context": "default", "Debug": ctx.options.debug, "Plugins": []}
    fmt = str(opts["format"])
    if fmt:
        from sampan.cli.template import Template

        data = dict(ctx.client().info())
        data["ClientInfo"] = client_info
        ctx.stdout.write(Template("{{json .}}" if fmt == "json" else fmt).render(data) + "\n")
        return 0
    debug = str(ctx.options.debug).lower()
    ctx.stdout.write(f"Client:\n Version:    {__version__}\n Context:    default\n Debug Mode: {debug}\n\n")
    ctx.stdout.flush()
    data = ctx.client().info()
    ctx.stdout.write("\n".join(_info_lines(data)) + "\n")
    warnings = data.get("Warnings") or []
    if warnings:
        ctx.stdout.flush()
        ctx.stderr.write("".join(f"{w}\n" for w in warnings))
    return 0


# ---------------------------------------------------------------- system df


def df_rows(usage: dict[str, Any]) -> list[dict[str, str]]:
    """The four summary rows of ``system df`` (docker's diskUsage contexts)."""
    from sampan.cli.output import human_size

    def reclaim(total: int, reclaimable: int) -> str:
        text = human_size(reclaimable)
        return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text

    images = usage.get("Images") or []
    layers = int(usage.get("LayersSize") or 0)
    used = 0
    for img in images:
        if img.get("Containers", 0) not in (0, None):
            size, shared = img.get("Size", -1), img.get("SharedSize", -1)
            if size != -1 and shared != -1:
                used += size - shared
    containers = usage.get("Containers") or []
    c_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") not in ("running", "paused"))
    volumes = usage.get("Volumes") or []
    v_size = v_reclaim = 0
    for vol in volumes:
        data = vol.get("UsageData") or {}
        size = int(data.get("Size", -1))
        if size != -1:
            v_size += size
            if int(data.get("RefCount", 0)) == 0:
                v_reclaim += size
    cache = usage.get("BuildCache") or []
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    b_reclaim = sum(int(b.get("Size") or 0) for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if i.get("Containers", 0) not in (0, None))),
         "Size": human_size(layers), "Reclaimable": reclaim(layers, layers - used)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(sum(1 for c in containers if c.get("State") in ("running", "paused"))),
         "Size": human_size(c_size), "Reclaimable": reclaim(c_size, c_reclaim)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(sum(1 for v in volumes if int((v.get("UsageData") or {}).get("RefCount", 0)) > 0)),
         "Size": human_size(v_size), "Reclaimable": reclaim(v_size, v_reclaim)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for b in cache if b.get("InUse"))),
         "Size": human_size(b_size), "Reclaimable": human_size(b_reclaim)},
    ]


DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
DF_DEFAULT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def df(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.output import write_formatted

    usage = ctx.client().system_df()
    fmt = str(opts["format"])
    if opts["verbose"] and not fmt:
        write_verbose(ctx.stdout, usage)
        return 0
    write_formatted(ctx.stdout, fmt, df_rows(usage), default=DF_DEFAULT, headers=DF_HEADERS)
    return 0


def write_verbose(out: TextIO, usage: dict[str, Any]) -> None:
    """``system df -v``: one table per kind of object."""
    from sampan.cli.images import IMAGE_HEADERS, image_rows
    from sampan.cli.output import human_size, short_id, since, write_formatted

    out.write("Images space usage:\n\n")
    images = [  # docker shows each image once, under its first tag
        {**img, "RepoTags": (img.get("RepoTags") or [])[:1], "RepoDigests": []} for img in usage.get("Images") or []
    ]
    write_formatted(
        out, "", image_rows(images), headers=IMAGE_HEADERS,
        default="table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        "\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
    )
    out.write("\nContainers space usage:\n\n")
    rows = []
    for c in usage.get("Containers") or []:
        names = ",".join(n.lstrip("/") for n in c.get("Names") or [])
        command = str(c.get("Command", ""))
        rows.append({
            "ID": short_id(str(c.get("Id", ""))), "Image": str(c.get("Image", "")),
            "Command": f'"{command if len(command) <= 20 else command[:19] + "…"}"',
            "LocalVolumes": str((c.get("Mounts") and len(c["Mounts"])) or 0),
            "Size": human_size(int(c.get("SizeRw") or 0)), "RunningFor": since(float(c.get("Created", 0))),
            "Status": str(c.get("Status", "")), "Names": names,
        })
    write_formatted(
        out, "", rows,
        headers={"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
                 "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"},
        default="table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}"
        "\t{{.Status}}\t{{.Names}}",
    )
    out.write("\nLocal Volumes space usage:\n\n")
    vols = []
    for v in usage.get("Volumes") or []:
        data = v.get("UsageData") or {}
        size = int(data.get("Size", -1))
        vols.append({"Name": str(v.get("Name", "")), "Links": str(data.get("RefCount", 0)),
                     "Size": human_size(size) if size != -1 else "N/A"})
    write_formatted(out, "", vols, headers={"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"},
                    default="table {{.Name}}\t{{.Links}}\t{{.Size}}")
    cache = usage.get("BuildCache") or []
    total = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    out.write(f"\nBuild cache usage: {human_size(total)}\n\n")
    entries = [{
        "ID": str(b.get("ID", ""))[:12], "CacheType": str(b.get("Type", "")),
        "Size": human_size(int(b.get("Size") or 0)), "CreatedSince": _since_text(b.get("CreatedAt")),
        "LastUsedSince": _since_text(b.get("LastUsedAt")), "UsageCount": str(b.get("UsageCount", 0)),
        "Shared": str(bool(b.get("Shared"))).lower(),
    } for b in cache]
    write_formatted(
        out, "", entries,
        headers={"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
                 "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"},
        default="table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}"
        "\t{{.UsageCount}}\t{{.Shared}}",
    )


def _since_text(value: Any) -> str:
    from sampan.cli.output import parse_rfc3339, since

    ts = parse_rfc3339(str(value or ""))
    return since(ts) if ts is not None else ""
