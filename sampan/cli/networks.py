"""``network create|ls|inspect|rm|prune|connect|disconnect``: docker's flags and output
(the ID on create, ``NETWORK ID  NAME  DRIVER  SCOPE`` table, names on rm, "Deleted Networks:").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec
from sampan.cli.system import FORMAT_HELP, TABLE_FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

CREATE = Spec(
    "network create", "[OPTIONS] NETWORK", "Create a network",
    Flag("attachable", help="Enable manual container attachment"),
    Flag("aux-address", kind="list", metavar="map", help="Auxiliary IPv4 or IPv6 addresses used by Network driver"),
    Flag("driver", "d", kind="string", default="bridge", help="Driver to manage the Network"),
    Flag("gateway", kind="list", metavar="strings", help="IPv4 or IPv6 Gateway for the master subnet"),
    Flag("internal", help="Restrict external access to the network"),
    Flag("ip-range", kind="list", metavar="strings", help="Allocate container ip from a sub-range"),
    Flag("ipam-driver", kind="string", default="default", help="IP Address Management Driver"),
    Flag("ipv6", help="Enable IPv6 networking"),
    Flag("label", kind="list", help="Set metadata on a network"),
    Flag("opt", "o", kind="list", metavar="map", help="Set driver specific options"),
    Flag("subnet", kind="list", metavar="strings", help="Subnet in CIDR format that represents a network segment"),
    min_args=1, max_args=1,
)
LS = Spec(
    "network ls", "[OPTIONS]", "List networks",
    Flag("filter", "f", kind="list", metavar="filter", help="Provide filter values (e.g. 'driver=bridge')"),
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("no-trunc", help="Do not truncate the output"),
    Flag("quiet", "q", help="Only display network IDs"),
    aliases=("network ls", "network list"), max_args=0,
)
INSPECT = Spec(
    "network inspect", "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    Flag("verbose", "v", help="Verbose output for diagnostics"), min_args=1,
)
RM = Spec(
    "network rm", "[OPTIONS] NETWORK [NETWORK...]", "Remove one or more networks",
    Flag("force", "f", help="Do not error if the network does not exist"),
    aliases=("network rm", "network remove"), min_args=1,
)
PRUNE = Spec(
    "network prune", "[OPTIONS]", "Remove all unused networks",
    Flag("filter", kind="list", metavar="filter", help='Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
    max_args=0,
)
CONNECT = Spec(
    "network connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network",
    Flag("alias", kind="list", metavar="strings", help="Add network-scoped alias for the container"),
    Flag("ip", kind="string", help="IPv4 address (e.g., \"172.30.100.104\")"),
    Flag("ip6", kind="string", help="IPv6 address (e.g., \"2001:db8::33\")"),
    min_args=2, max_args=2,
)
DISCONNECT = Spec(
    "network disconnect", "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network",
    Flag("force", "f", help="Force the container to disconnect from a network"),
    min_args=2, max_args=2,
)

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
           "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def _configs(opts: Options) -> list[dict[str, str]]:
    """``--subnet``/``--gateway``/``--ip-range`` as IPAM configs, each gateway and range with the
    subnet that holds it (the docker CLI's pairing; one IPv4 and one IPv6 subnet with ``--ipv6``)."""
    subnets: list[str] = list(opts["subnet"])  # type: ignore[call-overload]
    configs = [{"Subnet": s} for s in subnets]
    for key, flag in (("Gateway", "gateway"), ("IPRange", "ip_range")):
        for value in list(opts[flag]):  # type: ignore[call-overload]
            if not configs:
                raise errors.InvalidArgument("every ip-range or gateway must have a corresponding subnet")
            target = _holder(configs, str(value), key)
            if target is None:
                what = "gateway" if key == "Gateway" else "range"
                raise errors.InvalidArgument(f"no matching subnet for {what} {value}")
            if key in target:
                raise errors.InvalidArgument(f"cannot configure multiple {'gateways' if key == 'Gateway' else 'ranges'} ({value}, {target[key]}) for the same subnet ({target['Subnet']})")
            target[key] = str(value)
    return configs


def _holder(configs: list[dict[str, str]], value: str, key: str) -> dict[str, str] | None:
    import ipaddress

    if len(configs) == 1 and not _parses(value):
        return configs[0]  # the daemon names the bad value
    for c in configs:
        try:
            net = ipaddress.ip_network(c["Subnet"], strict=False)
            inner = ipaddress.ip_network(value, strict=False) if key == "IPRange" else ipaddress.ip_address(value)
        except ValueError:
            continue
        if (isinstance(inner, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and inner.version == net.version
                and inner.subnet_of(net)) or (  # type: ignore[arg-type]
                isinstance(inner, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and inner in net):
            return c
    return None


def _parses(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    if opts["aux_address"]:
        raise errors.NotImplementedFeature("--aux-address")
    configs = _configs(opts)
    body = {
        "Name": args[0], "Driver": str(opts["driver"]) or "bridge", "Internal": bool(opts["internal"]),
        "Attachable": bool(opts["attachable"]), "EnableIPv6": bool(opts["ipv6"]), "CheckDuplicate": True,
        "IPAM": {"Driver": str(opts["ipam_driver"]) or "default", "Config": configs, "Options": {}},
        "Options": _pairs(list(opts["opt"])), "Labels": _pairs(list(opts["label"])),  # type: ignore[call-overload]
    }
    result = ctx.client().json("POST", "/networks/create", body=body) or {}
    ctx.stdout.write(f"{result.get('Id', '')}\n")
    return 0


def network_rows(networks: list[dict[str, Any]], *, trunc: bool) -> list[dict[str, str]]:
    return [{
        "ID": str(n.get("Id", ""))[:12] if trunc else str(n.get("Id", "")), "Name": str(n.get("Name", "")),
        "Driver": str(n.get("Driver", "")), "Scope": str(n.get("Scope", "local")),
        "IPv6": str(bool(n.get("EnableIPv6"))).lower(), "Internal": str(bool(n.get("Internal"))).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
        "CreatedAt": str(n.get("Created", "")),
    } for n in networks]


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import parse_filters
    from sampan.cli.output import write_formatted
    from sampan.client.client import encode_filters

    filters = parse_filters(opts["filter"])  # type: ignore[arg-type]
    found = ctx.client().json("GET", "/networks", query={"filters": encode_filters(filters)}) or []
    found = sorted(found, key=lambda n: str(n.get("Name", "")))
    fmt = "{{.ID}}" if opts["quiet"] else str(opts["format"])
    write_formatted(ctx.stdout, fmt, network_rows(found, trunc=not opts["no_trunc"]), default=TABLE, headers=HEADERS)
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import inspect_named

    return inspect_named(ctx, str(opts["format"]), args, "/networks/{}")


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.containers import for_each
    from sampan.client.client import Client

    def action(client: Client, name: str) -> object:
        try:
            return client.request("DELETE", f"/networks/{name}").read()
        except errors.NotFound:
            if opts["force"]:
                return None
            raise

    return for_each(ctx, args, action)


PRUNE_WARNING = "WARNING! This will remove all custom networks not used by at least one container."


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import confirm, parse_filters
    from sampan.client.client import encode_filters

    filters = parse_filters(opts["filter"], "--filter")  # type: ignore[arg-type]
    if not opts["force"] and not confirm(ctx, PRUNE_WARNING):
        return 0
    report = ctx.client().json("POST", "/networks/prune", query={"filters": encode_filters(filters)}) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        ctx.stdout.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted))
    return 0


def connect(ctx: Context, opts: Options, args: list[str]) -> int:
    endpoint: dict[str, Any] = {"Aliases": list(opts["alias"])}  # type: ignore[call-overload]
    if opts["ip"] or opts["ip6"]:
        endpoint["IPAMConfig"] = {k: str(v) for k, v in (("IPv4Address", opts["ip"]), ("IPv6Address", opts["ip6"])) if v}
    _post(ctx, f"/networks/{args[0]}/connect", {"Container": args[1], "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: Context, opts: Options, args: list[str]) -> int:
    _post(ctx, f"/networks/{args[0]}/disconnect", {"Container": args[1], "Force": bool(opts["force"])})
    return 0


def _post(ctx: Context, path: str, body: dict[str, Any]) -> None:
    import json

    ctx.client().request("POST", path, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"}).read()
