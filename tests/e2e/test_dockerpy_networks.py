"""sampan's port of docker-py's api_network_test.py and models_networks_test.py, and of the
networking tests of api_container_test.py and models_containers_test.py (links, published
ports, MAC address, ``network=``/``networking_config``, ``network_mode="container:<id>"``),
run with docker-py against a real sampand that has a bridge of its own.

Written for sampan from reading docker-py's tests (tests/integration/ in docker/docker-py); the
tests not ported are listed with their reason in docs/docker-py-tests.md.  Every network gets
its bridge name and subnet from this module's names (tests/e2e/dockerpy_netd.py), and ports
are published on 127.0.0.1 only: nothing of the host's network is touched.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest

from tests.conftest import Names
from tests.e2e.dockerpy_netd import api, bridge_opt, mod_names, net_ids, networks_removed, quarters  # noqa: F401
from tests.integration.container_daemon import Api, leak_check  # noqa: F401

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

BUSYBOX = "busybox"
_seq = iter(range(10**6))


def mknet(client: Any, names: Names, **kwargs: Any) -> tuple[str, str]:
    """A network named after the test module's tag, its bridge named after it too."""
    name = f"dockerpy-{names.tag}-{next(_seq)}"
    options = {**bridge_opt(names), **kwargs.pop("options", {})}
    return name, str(client.create_network(name, options=options, **kwargs)["Id"])


def start(client: Any, *args: Any, **kwargs: Any) -> str:
    cid = str(client.create_container(BUSYBOX, *args, **kwargs)["Id"])
    client.start(cid)
    return cid


def top(client: Any, **kwargs: Any) -> str:
    return start(client, ["sleep", "60"], stop_signal="SIGKILL", **kwargs)


def ipam_pool(names: Names) -> tuple[Any, dict[str, Any]]:
    """Upstream's 172.28.0.0/16 pool, scaled down into the module's own last /26."""
    net = quarters(names)[3]
    rng = list(net.subnets(new_prefix=27))[1]
    want = {"Subnet": str(net), "IPRange": str(rng), "Gateway": str(rng[-2]),
            "AuxiliaryAddresses": {"a": str(net[5]), "b": str(net[6]), "c": str(net[7])}}
    pool = docker.types.IPAMPool(subnet=want["Subnet"], iprange=want["IPRange"], gateway=want["Gateway"],
                                 aux_addresses=want["AuxiliaryAddresses"])
    return docker.types.IPAMConfig(driver="default", pool_configs=[pool]), want


# ------------------------------------------------------------------ TestNetworks (api_network_test.py)


def test_list_networks(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, net_id = mknet(client, mod_names)
    assert net_id in net_ids(client.networks())
    assert net_ids(client.networks(names=[net_name])) == [net_id]
    assert net_ids(client.networks(ids=[net_id[:8]])) == [net_id]


def test_inspect_network(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, net_id = mknet(client, mod_names)
    net = client.inspect_network(net_id)
    assert (net["Id"], net["Name"], net["Driver"], net["Scope"]) == (net_id, net_name, "bridge", "local")
    assert net["IPAM"]["Driver"] == "default"
    assert ipaddress.IPv4Network(net["IPAM"]["Config"][0]["Subnet"]).subnet_of(quarters(mod_names)[1])


def test_create_network_with_ipam_config(client: Any, mod_names: Names) -> None:  # noqa: F811
    ipam, want = ipam_pool(mod_names)
    _, net_id = mknet(client, mod_names, ipam=ipam)
    got = client.inspect_network(net_id)["IPAM"]
    assert got.pop("Options", None) is None
    assert got["Driver"] == "default"
    assert got["Config"] == [want]


def test_create_network_with_host_driver_fails(client: Any, mod_names: Names) -> None:  # noqa: F811
    with pytest.raises(docker.errors.APIError):
        client.create_network(f"dockerpy-{mod_names.tag}-host", driver="host")


def test_remove_network(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, net_id = mknet(client, mod_names)
    assert net_name in [n["Name"] for n in client.networks()]
    client.remove_network(net_id)
    assert net_name not in [n["Name"] for n in client.networks()]


@pytest.mark.parametrize("force", [False, True])
def test_connect_and_disconnect_container(client: Any, mod_names: Names, force: bool) -> None:  # noqa: F811
    _, net_id = mknet(client, mod_names)
    container = top(client)
    assert not client.inspect_network(net_id).get("Containers")
    client.connect_container_to_network(container, net_id)
    assert list(client.inspect_network(net_id)["Containers"]) == [container]
    with pytest.raises(docker.errors.APIError):
        client.connect_container_to_network(container, net_id)
    client.disconnect_container_from_network(container, net_id, force=force)
    assert not client.inspect_network(net_id).get("Containers")
    with pytest.raises(docker.errors.APIError):
        client.disconnect_container_from_network(container, net_id, force=force)


def test_connect_with_aliases(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, net_id = mknet(client, mod_names)
    container = top(client)
    client.connect_container_to_network(container, net_id, aliases=["foo", "bar"])
    aliases = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]["Aliases"]
    assert "foo" in aliases and "bar" in aliases


def test_connect_on_container_create(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, net_id = mknet(client, mod_names)
    container = top(client, host_config=client.create_host_config(network_mode=net_name))
    assert list(client.inspect_network(net_id)["Containers"]) == [container]
    client.disconnect_container_from_network(container, net_id)
    assert not client.inspect_network(net_id).get("Containers")


def test_create_with_aliases(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, _ = mknet(client, mod_names)
    container = top(client, host_config=client.create_host_config(network_mode=net_name),
                    networking_config=client.create_networking_config({
                        net_name: client.create_endpoint_config(aliases=["foo", "bar"])}))
    aliases = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]["Aliases"]
    assert "foo" in aliases and "bar" in aliases


def test_create_with_ipv4_address(client: Any, mod_names: Names) -> None:  # noqa: F811
    subnet = quarters(mod_names)[2]
    net_name, _ = mknet(client, mod_names, ipam=docker.types.IPAMConfig(
        driver="default", pool_configs=[docker.types.IPAMPool(subnet=str(subnet))]))
    address = str(subnet[23])
    container = top(client, host_config=client.create_host_config(network_mode=net_name),
                    networking_config=client.create_networking_config({
                        net_name: client.create_endpoint_config(ipv4_address=address)}))
    net = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]
    assert net["IPAMConfig"]["IPv4Address"] == address
    assert net["IPAddress"] == address


def test_create_with_driveropt(client: Any) -> None:
    container = top(client, host_config=client.create_host_config(network_mode="bridge"),
                    networking_config=client.create_networking_config({
                        "bridge": client.create_endpoint_config(driver_opt={"com.docker-py.setting": "on"})}))
    net_cfg = client.inspect_container(container)["NetworkSettings"]["Networks"]["bridge"]
    assert net_cfg["DriverOpts"] == {"com.docker-py.setting": "on"}


@pytest.mark.parametrize("how", ["create", "connect"])
def test_links_on_a_user_network(client: Any, mod_names: Names, how: str) -> None:  # noqa: F811
    """test_create_with_links and test_connect_with_links: a link on a user network is a DNS
    alias, shown in the endpoint's Links, resolvable once the target runs."""
    net_name, _ = mknet(client, mod_names)
    upstream = f"dockerpy-upstream-{mod_names.tag}"
    if how == "create":
        container = top(client, host_config=client.create_host_config(network_mode=net_name),
                        networking_config=client.create_networking_config({
                            net_name: client.create_endpoint_config(links=[(upstream, "bar")])}))
    else:
        container = top(client, host_config=client.create_host_config(network_mode=net_name))
        client.disconnect_container_from_network(container, net_name)
        client.connect_container_to_network(container, net_name, links=[(upstream, "bar")])
    links = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]["Links"]
    assert links == [f"{upstream}:bar"]
    top(client, name=upstream, host_config=client.create_host_config(network_mode=net_name))
    exec_id = client.exec_create(container, ["nslookup", "bar"])
    out = client.exec_start(exec_id)
    assert client.exec_inspect(exec_id)["ExitCode"] == 0, out


def test_connect_with_ipv4_address(client: Any, mod_names: Names) -> None:  # noqa: F811
    ipam, want = ipam_pool(mod_names)
    net_name, _ = mknet(client, mod_names, ipam=ipam)
    container = top(client, host_config=client.create_host_config(network_mode=net_name))
    client.disconnect_container_from_network(container, net_name)
    address = str(ipaddress.IPv4Network(want["IPRange"])[24 % 32])
    client.connect_container_to_network(container, net_name, ipv4_address=address)
    net = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]
    assert net["IPAMConfig"]["IPv4Address"] == address


def _v6(names: Names) -> ipaddress.IPv6Network:
    """The module's own ULA /64 (upstream uses 2001:389::/64)."""
    return ipaddress.IPv6Network(f"fd5a:{names.tag[:4]}:{names.tag[4:8]}:e2e::/64")


def _range96(names: Names) -> str:
    return str(next(_v6(names).subnets(new_prefix=96)))


def _ipv6_disabled() -> bool:
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as f:
            return f.read().strip() == "1"
    except OSError:
        return True


needs_ipv6 = pytest.mark.skipif(_ipv6_disabled(), reason="IPv6 is disabled on this host")


def _v6net(client: Any, names: Names, **pool: str) -> str:
    # internal: upstream's networks are not, but an internal one keeps the host's IPv6 forwarding
    # setting as it is (this module runs in the host's network namespace)
    return mknet(client, names, enable_ipv6=True, internal=True, ipam=docker.types.IPAMConfig(
        driver="default", pool_configs=[docker.types.IPAMPool(subnet=str(_v6(names)), **pool)]))[0]


@needs_ipv6
def test_create_with_ipv6_address(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name = _v6net(client, mod_names)
    address = str(_v6(mod_names)[0xf00d])
    container = top(client, host_config=client.create_host_config(network_mode=net_name),
                    networking_config=client.create_networking_config({
                        net_name: client.create_endpoint_config(ipv6_address=address)}))
    net = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]
    assert net["IPAMConfig"]["IPv6Address"] == address
    assert net["GlobalIPv6Address"] == address


@needs_ipv6
def test_connect_with_ipv6_address(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name = _v6net(client, mod_names, iprange=_range96(mod_names),
                      gateway=str(_v6(mod_names)[0xffff]))
    container = top(client, host_config=client.create_host_config(network_mode=net_name))
    client.disconnect_container_from_network(container, net_name)
    address = str(_v6(mod_names)[0x11])
    client.connect_container_to_network(container, net_name, ipv6_address=address)
    net = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]
    assert net["IPAMConfig"]["IPv6Address"] == address
    assert net["GlobalIPv6Address"] == address and net["IPv6Gateway"] == str(_v6(mod_names)[0xffff])


@needs_ipv6
def test_create_network_ipv6_enabled(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name = _v6net(client, mod_names, iprange=_range96(mod_names),
                      gateway=str(_v6(mod_names)[0xffff]))
    net = client.inspect_network(net_name)
    assert net["EnableIPv6"] is True
    v6 = [c for c in net["IPAM"]["Config"] if ":" in c["Subnet"]]
    assert v6 == [{"Subnet": str(_v6(mod_names)), "IPRange": _range96(mod_names),
                   "Gateway": str(_v6(mod_names)[0xffff])}]
    with pytest.raises(docker.errors.APIError, match="IPv6 has not been enabled for this network"):
        mknet(client, mod_names, ipam=docker.types.IPAMConfig(
            driver="default", pool_configs=[docker.types.IPAMPool(subnet=str(_v6(mod_names)))]))


def test_connect_with_mac_address(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, _ = mknet(client, mod_names)
    container = client.create_container(BUSYBOX, ["sleep", "60"])
    client.connect_container_to_network(container, net_name, mac_address="02:42:ac:11:00:02")
    net = client.inspect_container(container)["NetworkSettings"]["Networks"][net_name]
    assert net["MacAddress"] == "02:42:ac:11:00:02"


def test_create_internal_networks_labels_check_duplicate(client: Any, mod_names: Names) -> None:  # noqa: F811
    _, net_id = mknet(client, mod_names, internal=True)
    assert client.inspect_network(net_id)["Internal"] is True
    net_name, net_id = mknet(client, mod_names, labels={"com.docker.py.test": "label"})
    assert client.inspect_network(net_id)["Labels"] == {"com.docker.py.test": "label"}
    with pytest.raises(docker.errors.APIError):
        client.create_network(net_name, check_duplicate=True)
    with pytest.raises(TypeError):  # docker-py's own check, kept as upstream has it
        mknet(client, mod_names, labels=["com.docker.py.test=label"])


def test_create_network_attachable(client: Any, mod_names: Names) -> None:  # noqa: F811
    """Upstream's is an overlay network in a swarm; a local bridge keeps the flag as dockerd does."""
    _, net_id = mknet(client, mod_names, attachable=True)
    assert client.inspect_network(net_id)["Attachable"] is True


def test_prune_networks(client: Any, mod_names: Names) -> None:  # noqa: F811
    net_name, _ = mknet(client, mod_names)
    assert net_name in client.prune_networks()["NetworksDeleted"]


def test_create_remove_network_with_space_in_name(client: Any, mod_names: Names) -> None:  # noqa: F811
    name = f"test {mod_names.tag}"
    client.create_network(name, options=bridge_opt(mod_names))
    assert client.inspect_network(name)
    assert client.remove_network(name) is None


# ------------------------------------------------------------------ models_networks_test.py


def test_models_create_get_list_remove(client: Any, mod_names: Names) -> None:  # noqa: F811
    dc = models(client)
    name = f"dockerpy-{mod_names.tag}-models"
    network = dc.networks.create(name, labels={"foo": "bar"}, options=bridge_opt(mod_names))
    assert network.name == name and network.attrs["Labels"]["foo"] == "bar"
    assert dc.networks.get(network.id).name == name
    assert network.id in [n.id for n in dc.networks.list()]
    assert network.id not in [n.id for n in dc.networks.list(ids=["fdhjklfdfdshjkfds"])]
    assert network.id in [n.id for n in dc.networks.list(ids=[network.id])]
    assert network.id not in [n.id for n in dc.networks.list(names=["fdshjklfdsjhkl"])]
    assert network.id in [n.id for n in dc.networks.list(names=[name])]
    network.remove()
    assert network.id not in [n.id for n in dc.networks.list()]


def test_models_connect_disconnect(client: Any, mod_names: Names) -> None:  # noqa: F811
    dc = models(client)
    network = dc.networks.create(f"dockerpy-{mod_names.tag}-cd", options=bridge_opt(mod_names))
    container = dc.containers.create(BUSYBOX, "sleep 300", stop_signal="SIGKILL")
    assert network.containers == []
    network.connect(container)
    container.start()
    assert dc.networks.get(network.id).containers == [container]
    assert [c for net in dc.networks.list(ids=[network.id], greedy=True) for c in net.containers] == [container]
    network.disconnect(container)
    assert network.containers == []
    assert dc.networks.get(network.id).containers == []


def models(client: Any) -> Any:
    """A docker-py ``DockerClient`` sharing the test's ``APIClient`` (same daemon)."""
    dc = docker.DockerClient.__new__(docker.DockerClient)
    dc.api = client
    return dc


# ------------------------------------------------------------------ containers: links, ports, MAC, network modes


def test_create_with_links(client: Any, api: Api) -> None:  # noqa: F811
    """api_container_test.py CreateContainerTest.test_create_with_links (default bridge)."""
    c1 = start(client, "cat", stdin_open=True, environment={"FOO": "1"})
    c2 = start(client, "cat", stdin_open=True, environment={"FOO": "1"})
    path1 = client.inspect_container(c1)["Name"][1:]
    path2 = client.inspect_container(c2)["Name"][1:]
    c3 = start(client, "env", host_config=client.create_host_config(
        links={path1: "mylink1", path2: "mylink2"}, network_mode="bridge"))
    assert client.wait(c3)["StatusCode"] == 0
    logs = client.logs(c3).decode()
    for prefix in ("MYLINK1", "MYLINK2"):
        assert f"{prefix}_NAME=" in logs and f"{prefix}_ENV_FOO=1" in logs


def test_remove_link(client: Any) -> None:
    """api_container_test.py LinkTest.test_remove_link: DELETE /containers/<name>/<alias>?link=1."""
    c1 = start(client, "cat", stdin_open=True)
    link_path = client.inspect_container(c1)["Name"][1:]
    c2 = start(client, "cat", stdin_open=True, host_config=client.create_host_config(links={link_path: "mylink"}))
    linked_name = client.inspect_container(c2)["Name"][1:]
    assert client.inspect_container(c2)["HostConfig"]["Links"] == [f"/{link_path}:/{linked_name}/mylink"]
    link_name = f"{linked_name}/mylink"
    client.remove_container(link_name, link=True)
    containers = client.containers(all=True)
    assert not [x for x in containers if link_name in x["Names"]]
    assert len([x for x in containers if x["Id"] in (c1, c2)]) == 2
    assert not client.inspect_container(c2)["HostConfig"]["Links"]
    with pytest.raises(docker.errors.NotFound):
        client.remove_container(link_name, link=True)


def test_port(client: Any, mod_names: Names) -> None:  # noqa: F811
    """api_container_test.py PortTest.test_port, on free loopback ports."""
    ports = [mod_names.free_port() for _ in range(3)]
    bindings = {"1111": ("127.0.0.1", str(ports[0])), "2222": ("127.0.0.1", str(ports[1])),
                "3333/udp": ("127.0.0.1", str(ports[2]))}
    container = client.create_container(BUSYBOX, ["sleep", "60"], ports=[1111, 2222, (3333, "udp")],
                                        host_config=client.create_host_config(port_bindings=bindings, network_mode="bridge"))
    client.start(container)
    for key, (ip, host_port) in bindings.items():
        port, _, protocol = key.partition("/")
        [got] = client.port(container, port if not protocol else key)
        assert (got["HostIp"], got["HostPort"]) == (ip, host_port)
    client.kill(container)


def test_create_with_mac_address(client: Any) -> None:
    """api_container_test.py CreateContainerTest.test_create_with_mac_address."""
    mac = "02:42:ac:11:00:0a"
    container = client.create_container(BUSYBOX, ["sleep", "60"], mac_address=mac)
    client.start(container)
    assert client.inspect_container(container)["NetworkSettings"]["MacAddress"] == mac
    exec_id = client.exec_create(container, ["cat", "/sys/class/net/eth0/address"])
    assert client.exec_start(exec_id).decode().strip() == mac
    client.kill(container)


@pytest.mark.parametrize("kind", ["none", "tuple", "list"])
def test_models_ports_target(client: Any, mod_names: Names, kind: str) -> None:  # noqa: F811
    """models_containers_test.py test_ports_target_none/_tuple/_list, on loopback and free ports
    (upstream's ``None`` and bare ports publish on every address of the host)."""
    dc = models(client)
    free = [mod_names.free_port() for _ in range(2)]
    ports: Any = {"none": ("127.0.0.1",), "tuple": ("127.0.0.1", free[0]),
                  "list": [("127.0.0.1", free[0]), ("127.0.0.1", free[1])]}[kind]
    container = dc.containers.run(BUSYBOX, "sleep 100", detach=True, ports={"2222/tcp": ports}, stop_signal="SIGKILL")
    container.reload()
    actual = container.ports
    assert sorted(actual) == ["2222/tcp"]
    assert len(actual["2222/tcp"]) == (2 if kind == "list" else 1)
    for binding in actual["2222/tcp"]:
        assert sorted(binding) == ["HostIp", "HostPort"] and int(binding["HostPort"]) > 0
        assert binding["HostIp"] == "127.0.0.1"
    if kind != "none":
        assert sorted(int(b["HostPort"]) for b in actual["2222/tcp"]) == sorted(free[: len(actual["2222/tcp"])])


def test_models_run_with_network(client: Any, mod_names: Names) -> None:  # noqa: F811
    dc = models(client)
    net_name, _ = mknet(client, mod_names)
    container = dc.containers.run(BUSYBOX, "echo hello world", network=net_name, detach=True)
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [net_name]


def test_models_run_with_networking_config(client: Any, mod_names: Names) -> None:  # noqa: F811
    dc = models(client)
    net_name, _ = mknet(client, mod_names)
    config = {net_name: client.create_endpoint_config(aliases=["hello"], driver_opt={"key1": "a"})}
    container = dc.containers.run(BUSYBOX, "sleep 60", network=net_name, networking_config=config, detach=True,
                                  stop_signal="SIGKILL")
    attrs = container.attrs["NetworkSettings"]["Networks"]
    assert list(attrs) == [net_name]
    assert attrs[net_name]["Aliases"] == ["hello"]
    assert attrs[net_name]["DriverOpts"] == {"key1": "a"}
    bad = {**config, "bar": client.create_endpoint_config(aliases=["test"], driver_opt={"key2": "b"})}
    with pytest.raises(docker.errors.APIError):
        dc.containers.run(BUSYBOX, "echo hello world", network=net_name, networking_config=bad, detach=True)
    only_other = {"bar": client.create_endpoint_config(aliases=["hello"], driver_opt={"key1": "a"})}
    container = dc.containers.run(BUSYBOX, "echo hello world", network=net_name, networking_config=only_other, detach=True)
    attrs = container.attrs["NetworkSettings"]["Networks"]
    assert list(attrs) == [net_name]
    assert attrs[net_name]["Aliases"] is None and attrs[net_name]["DriverOpts"] is None


def test_models_network_mode_container(client: Any) -> None:
    """``network_mode="container:<id>"``: the second container sees the first one's interface."""
    dc = models(client)
    first = dc.containers.run(BUSYBOX, "sleep 60", detach=True, stop_signal="SIGKILL")
    mac = first.exec_run(["cat", "/sys/class/net/eth0/address"]).output
    out = dc.containers.run(BUSYBOX, ["cat", "/sys/class/net/eth0/address"], network_mode=f"container:{first.id}")
    assert out == mac and mac.strip()
    second = dc.containers.create(BUSYBOX, "true", network_mode=f"container:{first.id}")
    assert second.attrs["HostConfig"]["NetworkMode"] == f"container:{first.id}"
    assert client.inspect_container(second.id)["NetworkSettings"]["Networks"] == {}
