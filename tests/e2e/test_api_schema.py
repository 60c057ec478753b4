"""sampan's Engine API responses validated against Docker's own description of them.

A real sampand (busybox imported) is driven through the main endpoints and every JSON body is
checked against the response schema of its path, method and status in moby's ``api/swagger.yaml``
for API 1.51 (``tests/oracles/``, converted by ``swagger_schema.py``): the types Docker declares,
its ``required`` fields, ``x-nullable`` as the only way to send ``null``; fields Docker does not
list are allowed, as its schema does not forbid them.

Where dockerd itself does not do what its description says, sampan follows dockerd and the
departure is listed once, with the reason, in :data:`DEPARTURES`.  Nothing else is waived.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.swagger_schema import Departure, Spec
from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401 - fixtures

pytestmark = pytest.mark.root

_NIL = ("a nil Go {go} without `omitempty` in moby v28.5.2's {where}: dockerd sends null when it "
        "is unset, swagger.yaml declares {kind} without x-nullable")


def _nil(where: str, props: str, go: str, gotype: str, kind: str = "an array") -> list[Departure]:
    return [Departure(where, p, "nullable", _NIL.format(go=go, where=gotype, kind=kind)) for p in props.split()]


#: dockerd's departures from swagger.yaml (v28.5.2), each read in moby's Go types at v28.5.2
#: (api/types/...): where dockerd sends ``null``, sampan does too, and only there.
DEPARTURES: list[Departure] = [
    # container inspect: HostConfig is stored as the client sent it (unset lists stay nil), and
    # a privileged container gets no default MaskedPaths/ReadonlyPaths (daemon/create_unix.go)
    *_nil("HostConfig", "Binds VolumesFrom CapAdd CapDrop ExtraHosts GroupAdd Links SecurityOpt "
          "MaskedPaths ReadonlyPaths", "slice", "container.HostConfig"),
    *_nil("Resources", "DeviceCgroupRules DeviceRequests Ulimits", "slice", "container.Resources"),
    *_nil("Resources", "MemorySwappiness", "pointer (*int64)", "container.Resources", "an integer"),
    *_nil("ContainerConfig", "Env Entrypoint", "slice", "container.Config"),
    *_nil("ContainerConfig", "Volumes", "map", "container.Config", "an object"),
    # image inspect: for API >= 1.50 inspect_response.go adds these keys as null when the image
    # config lacks them (legacyConfigFields["current"], moby#50134)
    *[Departure("ImageConfig", p, "nullable", "api/server/router/image/inspect_response.go "
                "legacyConfigFields[\"current\"] sends them as null when unset (moby#50134)")
      for p in ("Entrypoint", "Env", "Labels", "Volumes")],
    # image history: a layer of no image of the store is "<missing>" with nil Tags
    # (daemon/containerd/image_history.go and daemon/images/image_history.go)
    *_nil("GET /images/{name}/history 200", "[].Tags", "slice", "image.HistoryResponseItem"),
    # networks: a container's endpoint on the default/none network has no aliases, links or DNS names
    *_nil("EndpointSettings", "Links Aliases DNSNames", "slice", "network.EndpointSettings"),
    *_nil("IPAM", "Options", "map", "network.IPAM", "an object"),
    # volumes: Labels and Options are kept as the create request had them (nil when absent)
    *_nil("Volume", "Labels Options", "map", "volume.Volume (volume/service/store.go volumeWrapper)",
          "an object"),
    # system
    *_nil("SystemInfo", "GenericResources", "slice", "system.Info"),
    *_nil("PluginsInfo", "Authorization", "slice", "system.PluginsInfo"),
    # stats: on a cgroup without the blkio files the recursive lists stay nil
    *_nil("ContainerBlkioStats", "io_service_bytes_recursive", "slice", "container.BlkioStats"),
    # exec inspect: backend.ExecInspect.ExitCode is *int, null until the process has exited
    *_nil("GET /exec/{id}/json 200", "ExitCode", "pointer (*int)", "backend.ExecInspect", "an integer"),
    # prune reports: nothing pruned leaves the list nil
    *_nil("POST /containers/prune 200", "ContainersDeleted", "slice", "container.PruneReport"),
    *_nil("POST /images/prune 200", "ImagesDeleted", "slice", "image.PruneReport"),
    *_nil("POST /networks/prune 200", "NetworksDeleted", "slice", "network.PruneReport"),
    *_nil("POST /build/prune 200", "CachesDeleted", "slice", "build.CachePruneReport"),
]


@pytest.fixture(scope="module")
def spec() -> Spec:
    s = Spec.load(DEPARTURES)
    assert s.version == "1.51"
    return s


class Checker:
    """Calls the API and validates each answer; the failures are gathered and reported together."""

    def __init__(self, daemon_api: Api, spec: Spec) -> None:
        self.api = daemon_api
        self.spec = spec
        self.failures: list[str] = []
        self.checked = 0

    def call(self, method: str, path: str, schema_path: str, status: int, body: Any = None) -> Any:
        r = self.api.d.request(method, f"/v{self.spec.version}{path}", body)
        assert r.status == status, f"{method} {path}: {r.status} {r.body[:300]!r}"
        data = r.body.decode() if schema_path == "/_ping" else r.json()
        self.validate(f"{method} {path}", self.spec.errors(schema_path, method, status, data))
        return data

    def definition(self, what: str, name: str, body: Any) -> None:
        self.validate(what, self.spec.definition_errors(name, body))

    def validate(self, what: str, errors: list[str]) -> None:
        self.checked += 1
        self.failures += [f"{what}: {e}" for e in errors]

    def done(self) -> None:
        assert self.checked
        assert not self.failures, "responses not as swagger.yaml says:\n" + "\n".join(self.failures)


@pytest.fixture
def check(api: Api, spec: Spec) -> Checker:  # noqa: F811
    """Each test ends with ``check.done()``, which fails it with every mismatch found."""
    return Checker(api, spec)


def test_oracle_is_strict(spec: Spec) -> None:
    """The converted schema rejects what Docker's does (wrong types, missing required fields,
    null without x-nullable), allows fields it does not list, and allows null where it says so."""
    assert not spec.errors("/containers/{id}/wait", "post", 200, {"StatusCode": 0, "Extra": 1})
    assert spec.errors("/containers/{id}/wait", "post", 200, {"StatusCode": "0"})
    assert spec.errors("/containers/{id}/wait", "post", 200, {"Error": {"Message": "x"}})
    assert spec.errors("/containers/{id}/wait", "post", 200, {"StatusCode": 0, "Error": None})
    assert spec.errors("/containers/{id}/wait", "post", 200, {"StatusCode": 1.0})
    assert spec.errors("/containers/{id}/json", "get", 404, {})
    assert not spec.definition_errors("ImageConfig", {"OnBuild": None})  # x-nullable: true
    assert spec.definition_errors("ImageConfig", {"OnBuild": "x"})
    assert not spec.definition_errors("Resources", {"Ulimits": None})  # a departure
    raw = Spec.load()
    assert raw.definition_errors("Resources", {"Ulimits": None})  # ... not in swagger.yaml
    assert raw.definition_errors("HostConfig", {"CapAdd": None})  # through allOf
    assert raw.definition_errors("EventMessage", {"Type": "nonsense"})  # enum


def test_system(check: Checker, api: Api) -> None:  # noqa: F811
    check.call("GET", "/_ping", "/_ping", 200)
    check.call("GET", "/version", "/version", 200)
    check.call("GET", "/info", "/info", 200)
    api.call("POST", "/volumes/create", {"Name": "schema-df"}, status=201)
    cid = api.create(["true"], host={"Binds": ["schema-df:/data"]})
    check.call("GET", "/system/df", "/system/df", 200)
    api.call("DELETE", f"/containers/{cid}?v=1", status=204)
    check.done()


def test_images(check: Checker) -> None:
    check.call("GET", "/images/json", "/images/json", 200)
    check.call("GET", "/images/json?all=1&digests=1&shared-size=1", "/images/json", 200)
    check.call("GET", "/images/busybox/json", "/images/{name}/json", 200)
    check.call("GET", "/images/busybox:latest/history", "/images/{name}/history", 200)
    check.done()


def test_container_lifecycle(check: Checker, api: Api) -> None:  # noqa: F811
    created = check.call("POST", "/containers/create?name=schema-life", "/containers/create", 201, {
        "Image": "busybox", "Cmd": ["sh", "-c", "echo hi > /f; sleep 30"], "Labels": {"a": "b"},
        "Env": ["X=1"], "HostConfig": {"Binds": ["schema-life:/data"], "Memory": 64 << 20}})
    cid = created["Id"]
    check.call("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
    check.call("GET", f"/containers/{cid}/json?size=1", "/containers/{id}/json", 200)
    check.call("GET", "/containers/json?all=1&size=1", "/containers/json", 200)
    api.call("POST", f"/containers/{cid}/start", status=204)
    check.call("GET", f"/containers/{cid}/json?size=1", "/containers/{id}/json", 200)
    check.call("GET", "/containers/json", "/containers/json", 200)
    check.call("GET", "/containers/json?all=1&size=1", "/containers/json", 200)
    check.call("GET", f"/containers/{cid}/top", "/containers/{id}/top", 200)
    check.call("GET", f"/containers/{cid}/top?ps_args=aux", "/containers/{id}/top", 200)
    assert api.until(lambda: api.call("GET", f"/containers/{cid}/changes", status=200))
    check.call("GET", f"/containers/{cid}/changes", "/containers/{id}/changes", 200)
    check.call("GET", f"/containers/{cid}/stats?stream=false", "/containers/{id}/stats", 200)
    check.call("GET", f"/containers/{cid}/stats?stream=false&one-shot=true", "/containers/{id}/stats", 200)

    exec_id = api.call("POST", f"/containers/{cid}/exec", {"Cmd": ["true"], "AttachStdout": True}, status=201)["Id"]
    check.call("GET", f"/exec/{exec_id}/json", "/exec/{id}/json", 200)
    api.call("POST", f"/exec/{exec_id}/start", {"Detach": True}, status=200)
    api.until(lambda: not api.call("GET", f"/exec/{exec_id}/json", status=200)["Running"])
    check.call("GET", f"/exec/{exec_id}/json", "/exec/{id}/json", 200)

    api.call("POST", f"/containers/{cid}/stop?t=0", status=204)
    check.call("POST", f"/containers/{cid}/wait", "/containers/{id}/wait", 200)
    check.call("GET", f"/containers/{cid}/json?size=1", "/containers/{id}/json", 200)
    check.call("GET", "/containers/json?all=1&size=1", "/containers/json", 200)
    check.call("POST", "/containers/prune", "/containers/prune", 200)
    check.call("POST", "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D", "/volumes/prune", 200)
    check.done()


def test_wait_error_exit(check: Checker, api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "exit 3"])
    body = check.call("POST", f"/containers/{cid}/wait?condition=not-running", "/containers/{id}/wait", 200)
    assert body["StatusCode"] == 3
    cid = api.create(["/no/such/program"])
    api.d.request("POST", f"/containers/{cid}/start")
    check.call("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
    check.call("POST", f"/containers/{cid}/wait", "/containers/{id}/wait", 200)
    check.done()


def test_container_options(check: Checker, api: Api) -> None:  # noqa: F811
    """A container with the optional HostConfig fields set, and a privileged one."""
    cid = api.create(["sleep", "30"], Labels={"a": "b"}, Env=["A=1"], Entrypoint=["/bin/sh", "-c"],
                     Volumes={"/anon": {}}, ExposedPorts={"80/tcp": {}}, StopSignal="SIGTERM", StopTimeout=3,
                     Healthcheck={"Test": ["CMD", "true"], "Interval": 1_000_000_000},
                     host={"Tmpfs": {"/run": "size=64k"}, "Init": True, "Sysctls": {"net.ipv4.ip_forward": "1"},
                           "Mounts": [{"Type": "volume", "Source": "schema-opt", "Target": "/m"}],
                           "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"], "ExtraHosts": ["h:10.0.0.1"],
                           "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "SecurityOpt": ["no-new-privileges"],
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}, "PidsLimit": 50,
                           "MemorySwappiness": 10, "DeviceCgroupRules": ["c 1:3 mr"]})
    check.call("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
    healthy = api.run(["sleep", "30"], Healthcheck={"Test": ["CMD", "true"], "Interval": 200_000_000})
    assert api.until(lambda: (api.inspect(healthy)["State"].get("Health") or {}).get("Log"))
    check.call("GET", f"/containers/{healthy}/json", "/containers/{id}/json", 200)
    check.call("GET", "/containers/json", "/containers/json", 200)
    api.call("POST", f"/containers/{healthy}/pause", status=204)
    check.call("GET", f"/containers/{healthy}/json", "/containers/{id}/json", 200)
    api.call("POST", f"/containers/{healthy}/unpause", status=204)
    priv = api.create(["true"], host={"Privileged": True})
    check.call("GET", f"/containers/{priv}/json", "/containers/{id}/json", 200)
    check.call("GET", "/containers/json?all=1", "/containers/json", 200)
    check.done()


def test_volumes(check: Checker) -> None:
    check.call("POST", "/volumes/create", "/volumes/create", 201, {"Name": "schema-v", "Labels": {"k": "v"}})
    check.call("POST", "/volumes/create", "/volumes/create", 201, {})
    check.call("GET", "/volumes", "/volumes", 200)
    check.call("GET", "/volumes/schema-v", "/volumes/{name}", 200)
    check.call("POST", "/volumes/prune", "/volumes/prune", 200)
    check.call("POST", "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D", "/volumes/prune", 200)
    check.done()


def test_networks(check: Checker, api: Api, names: Any) -> None:  # noqa: F811
    check.call("GET", "/networks", "/networks", 200)
    for n in api.call("GET", "/networks", status=200):
        check.call("GET", f"/networks/{n['Id']}", "/networks/{id}", 200)
    created = check.call("POST", "/networks/create", "/networks/create", 201, {
        "Name": f"schema-{names.tag}", "Driver": "bridge", "Labels": {"k": "v"},
        "IPAM": {"Config": [{"Subnet": names.subnet}]},
        "Options": {"com.docker.network.bridge.name": names.bridge}})
    try:
        cid = api.create(["sleep", "30"], host={"NetworkMode": f"schema-{names.tag}"},
                         NetworkingConfig={"EndpointsConfig": {f"schema-{names.tag}": {"Aliases": ["web"]}}})
        api.call("POST", f"/containers/{cid}/start", status=204)
        check.call("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
        check.call("GET", "/containers/json", "/containers/json", 200)
        check.call("GET", f"/networks/{created['Id']}", "/networks/{id}", 200)
        check.call("GET", f"/networks/{created['Id']}?verbose=true", "/networks/{id}", 200)
        check.call("GET", "/networks", "/networks", 200)
        api.call("DELETE", f"/containers/{cid}?force=1", status=204)
    finally:
        check.call("POST", "/networks/prune", "/networks/prune", 200)
    assert api.status("GET", f"/networks/{created['Id']}")[0] == 404
    check.done()


def test_prunes(check: Checker, api: Api) -> None:  # noqa: F811
    cid = api.run(["true"])
    api.wait(cid)
    body = check.call("POST", "/containers/prune", "/containers/prune", 200)
    assert cid in body["ContainersDeleted"]
    check.call("POST", "/containers/prune", "/containers/prune", 200)
    # an image of its own, labelled, so that pruning unused images leaves busybox alone
    api.call("POST", "/commit?container=" + api.create(["true"]) + "&repo=schema-prune&tag=x",
             {"Labels": {"schema": "prune"}}, status=201)
    check.call("GET", "/images/schema-prune:x/json", "/images/{name}/json", 200)
    check.call("GET", "/images/schema-prune:x/history", "/images/{name}/history", 200)
    check.call("GET", "/images/json?all=1", "/images/json", 200)
    api.remove_all()
    check.call("POST", "/images/prune", "/images/prune", 200)
    unused = json.dumps({"dangling": ["false"], "label": ["schema=prune"]})
    body = check.call("POST", f"/images/prune?filters={quote(unused)}", "/images/prune", 200)
    assert body["ImagesDeleted"], body
    check.call("POST", "/build/prune", "/build/prune", 200)
    check.call("POST", "/networks/prune", "/networks/prune", 200)
    check.done()


def test_events(check: Checker, api: Api) -> None:  # noqa: F811
    cid = api.run(["true"])
    api.wait(cid)
    r = api.d.request("GET", f"/events?since=0&until={int(time.time()) + 1}")
    assert r.status == 200
    lines = [json.loads(line) for line in r.body.splitlines() if line.strip()]
    assert len(lines) >= 3
    for event in lines:
        check.definition(f"event {event.get('Type')} {event.get('Action')}", "EventMessage", event)
    check.done()


def test_errors(check: Checker, api: Api) -> None:  # noqa: F811
    check.call("GET", "/containers/no-such/json", "/containers/{id}/json", 404)
    check.call("GET", "/images/no-such:tag/json", "/images/{name}/json", 404)
    check.call("GET", "/volumes/no-such", "/volumes/{name}", 404)
    check.call("GET", "/networks/no-such", "/networks/{id}", 404)
    check.call("GET", "/exec/no-such/json", "/exec/{id}/json", 404)
    check.call("POST", "/containers/create", "/containers/create", 404, {"Image": "no-such:tag"})
    check.call("POST", "/containers/create", "/containers/create", 400,
               {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "bogus"}}})
    api.create(["true"], name="schema-taken")
    check.call("POST", "/containers/create?name=schema-taken", "/containers/create", 409, {"Image": "busybox"})
    cid = api.run(["sleep", "30"], host={"Binds": ["schema-busy:/v"]})
    check.call("DELETE", f"/containers/{cid}", "/containers/{id}", 409)
    check.call("DELETE", "/volumes/schema-busy", "/volumes/{name}", 409)
    check.call("DELETE", "/images/busybox", "/images/{name}", 409)
    check.done()
