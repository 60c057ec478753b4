"""Network endpoints (swagger v1.51 "Network"): list, inspect, create, connect, disconnect,
remove, prune; and the network JSON in Docker's shape (``IPAM.Config``, ``Containers``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from sampan import errors
from sampan.api import convert, types
from sampan.api.services import services
from sampan.engine import container_network
from sampan.engine.containers import ContainerService
from sampan.engine.networks import EndpointInfo, Network, NetworkService

JSONDict = dict[str, Any]


def network_service(request: web.Request) -> NetworkService:
    svc = getattr(services(request), "networks", None)
    if svc is None:
        raise errors.Unavailable("networks are not available in this daemon")
    assert isinstance(svc, NetworkService)
    return svc


def _containers(request: web.Request) -> ContainerService:
    svc = services(request).containers
    if svc is None:
        raise errors.Unavailable("containers are not available in this daemon")
    return svc


def endpoint_json(ep: EndpointInfo) -> JSONDict:
    return {"Name": ep.container_name, "EndpointID": ep.id, "MacAddress": ep.mac,
            "IPv4Address": f"{ep.address}/{ep.prefixlen}",
            "IPv6Address": f"{ep.address6}/{ep.prefixlen6}" if ep.address6 else ""}


def network_json(n: Network, *, containers: bool = True) -> JSONDict:
    config = []
    for c in n.ipam:
        item: JSONDict = {"Subnet": c.subnet, "Gateway": c.gateway}
        if c.ip_range:
            item["IPRange"] = c.ip_range
        if c.aux_addresses:
            item["AuxiliaryAddresses"] = dict(c.aux_addresses)
        config.append(item)
    return {
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": n.scope, "Driver": n.driver,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": None if n.name == "bridge" or not n.ipam else n.ipam_options,
                 "Config": config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {cid: endpoint_json(ep) for cid, ep in n.containers.items()} if containers else {},
        "Options": dict(n.options), "Labels": dict(n.labels),
    }


async def _body(request: web.Request) -> JSONDict:
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise errors.InvalidArgument("request body must be a JSON object")
    return body


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"{what} must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}


async def list_networks(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    found = await asyncio.to_thread(network_service(request).list, filters=filters)
    return web.json_response([network_json(n, containers=False) for n in found])


async def inspect(request: web.Request) -> web.Response:
    n = await asyncio.to_thread(network_service(request).inspect, request.match_info["id"])
    return web.json_response(network_json(n))


async def create(request: web.Request) -> web.Response:
    body = await _body(request)
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise errors.InvalidArgument("IPAM must be an object")
    if (ipam.get("Driver") or "default") != "default":
        raise errors.NotImplementedFeature(f"IPAM driver {ipam.get('Driver')!r}: only the default driver exists")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise errors.InvalidArgument("IPAM.Config must be a list of objects")
    # one IPv4 and one IPv6 subnet at most (as Docker's bridge driver)
    v6 = [c for c in configs if ":" in str(c.get("Subnet") or "")]
    v4 = [c for c in configs if c not in v6]
    if len(v4) > 1 or len(v6) > 1:
        raise errors.NotImplementedFeature("more than one IPAM config (subnet) per address family")
    cfg = v4[0] if v4 else {}
    cfg6 = v6[0] if v6 else {}
    n = await asyncio.to_thread(
        network_service(request).create, str(body.get("Name") or ""), driver=str(body.get("Driver") or "bridge"),
        subnet=str(cfg.get("Subnet") or ""), gateway=str(cfg.get("Gateway") or ""), ip_range=str(cfg.get("IPRange") or ""),
        aux_addresses=_strings(cfg.get("AuxiliaryAddresses"), "IPAM.Config.AuxiliaryAddresses"),
        ipam_options=None if ipam.get("Options") is None else _strings(ipam["Options"], "IPAM.Options"),
        internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
        labels=_strings(body.get("Labels"), "Labels"), options=_strings(body.get("Options"), "Options"),
        enable_ipv6=bool(body.get("EnableIPv6")), subnet6=str(cfg6.get("Subnet") or ""),
        gateway6=str(cfg6.get("Gateway") or ""), ip_range6=str(cfg6.get("IPRange") or ""),
        aux_addresses6=_strings(cfg6.get("AuxiliaryAddresses"), "IPAM.Config.AuxiliaryAddresses"),
    )
    return web.json_response({"Id": n.id, "Warning": ""}, status=201)


async def connect(request: web.Request) -> web.Response:
    body = await _body(request)
    container = str(body.get("Container") or "")
    if not container:
        raise errors.InvalidArgument("no container specified")
    settings = convert.endpoint_settings(body.get("EndpointConfig"))
    await asyncio.to_thread(container_network.connect, _containers(request), network_service(request),
                            request.match_info["id"], container, settings)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await _body(request)
    container = str(body.get("Container") or "")
    if not container:
        raise errors.InvalidArgument("no container specified")
    await asyncio.to_thread(container_network.disconnect, _containers(request), network_service(request),
                            request.match_info["id"], container, force=bool(body.get("Force")))
    return web.Response(status=200)


async def remove(request: web.Request) -> web.Response:
    await asyncio.to_thread(network_service(request).remove, request.match_info["id"])
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = types.parse_filters(request.query.get("filters"))
    removed = await asyncio.to_thread(network_service(request).prune, filters=filters)
    return web.json_response({"NetworksDeleted": removed or None})
