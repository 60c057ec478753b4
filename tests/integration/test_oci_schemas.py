"""What sampan writes, validated against the OCI JSON Schemas (tests/oci_schema.py).

Image spec v1.1.1: the OCI layout of ``GET /images/get`` and ``sampan save`` (oci-layout,
index.json, every manifest and config it reaches), the configs of imported, built and committed
images, manifests as ``sampan registry serve`` stores and serves them after a push (Docker
schema2 from the daemon, OCI from a zstd push) and the index of its referrers API, and the
output of ``distribution/``'s writers called directly.  Docker-format documents
(``application/vnd.docker...``) are not OCI; they are validated against the OCI schema of the
same shape (the config schema for Docker's config, which image-spec calls compatible; the
manifest schema for schema2, whose structure is the OCI manifest's).

Runtime spec v1.3.0: the ``config.json`` the daemon writes into each container's bundle, for
containers with many options (limits, mounts, tmpfs, devices, caps, privileged, read-only,
init, user, env, healthcheck, host/none/bridge networks, container: namespaces), the
``process.json`` of an exec, ``sampan-runtime state`` (created, running, paused, stopped; runc's
beside it for paused) and ``sampan-runtime features``.

Allow-list (:data:`ALLOWED`: where the schema is stricter than the spec's prose and the
conforming form would be refused by peer tools, or the peers say the same): layers [] of an
image without layers, and the 'paused' status.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pull_push_support import local_engine
from registry_harness import Server, sha, start_server

from sampan.distribution import ocilayout
from sampan.distribution.copy import Descriptor
from sampan.distribution.dockerarchive import save_archive
from sampan.distribution.push import push_image
from sampan.image import reference as refs
from sampan.oci.defaults import default_config
from sampan.storage.testing import build_tar
from tests.daemon_fixture import REPO
from tests.integration import container_daemon
from tests.integration.container_daemon import Api
from tests.oci_schema import RUNTIME, document_errors, image_errors, layout_errors

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]

# the module's sampand with busybox, and its per-test leak check (autouse)
api = container_daemon.api
leak_check = container_daemon.leak_check

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

DOCKERFILE = """\
FROM busybox
ARG VERSION=1
ENV A=1 B="two words" EMPTY=
LABEL org.example.k=v other="x y"
EXPOSE 80 53/udp
VOLUME /data
WORKDIR /app
RUN echo $VERSION > /app/v
USER 1000:1000
HEALTHCHECK --interval=5s --timeout=2s CMD true
STOPSIGNAL SIGINT
ONBUILD RUN true
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"""


#: Schema violations kept on purpose, each with the reason.
ALLOWED = {
    "image-manifest-schema.json: layers: [] should be non-empty": (
        "an image without layers (FROM scratch with metadata only, as dockerd's builder makes "
        "them) has a manifest with layers []: the schema says minItems 1 but manifest.md only "
        "says 'for portability, layers SHOULD have at least one entry'. The conforming forms "
        "are refused or change the image: the empty descriptor as a layer makes len(layers) != "
        "len(rootfs.diff_ids), which containerd's unpacker and moby's docker load refuse "
        "('layers length mismatch'); an empty tar layer adds a diff_id, so the config and the "
        "image ID change and a save/load round trip gives another image. skopeo copy and umoci "
        "accept layers [] (checked by hand on this machine)."
    ),
    "state-schema.json: status: 'paused' is not one of": (
        "sampan-runtime state says 'paused' for a frozen container, as runc and crun do (the "
        "test checks them): containerd's go-runc and sampand read that word to know a container "
        "is paused; the schema's enum (creating, created, running, stopped) would make a paused "
        "container look running to them."
    ),
}


def _kept(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(allowed in e for allowed in ALLOWED)]


def _tar_files(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                out[member.name.lstrip("./")] = f.read()
    return out


def _check_layout(files: dict[str, bytes]) -> Counter[str]:
    counts: Counter[str] = Counter()
    errors = _kept(layout_errors(lambda path: files[path], counts))
    assert not errors, "\n".join(errors)
    # Docker's manifest.json (docker-archive) is not OCI; the configs it names must pass.
    for entry in json.loads(files.get("manifest.json", b"[]")):
        config = json.loads(files[entry["Config"]])
        assert not (e := image_errors(OCI_CONFIG, config)), e
    return counts


def _blob(api: Api, digest: str) -> Any:
    return json.loads((api.d.data_root / "content" / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def _config_of(api: Api, name: str) -> dict[str, Any]:
    config: dict[str, Any] = _blob(api, api.call("GET", f"/images/{name}/json", status=200)["Id"])
    return config


def _build(api: Api, tag: str, dockerfile: str, files: dict[str, bytes | str | None] | None = None) -> None:
    context = build_tar({"Dockerfile": dockerfile.encode(), **(files or {})})
    r = api.d.request("POST", f"/build?t={tag}&rm=1", context, {"Content-Type": "application/x-tar"}, timeout=120)
    assert r.status == 200, r.body
    assert b"errorDetail" not in r.body, r.body


def _cli(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAMPAN_HOST": api.d.url, "PYTHONPATH": str(REPO), "SAMPAN_CONFIG": str(api.d.dir / "cfg")}
    return subprocess.run([sys.executable, "-m", "sampan.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(api: Api) -> list[str]:
    """Images of every origin: imported (busybox), built (a rich Dockerfile, FROM scratch with
    a file, FROM scratch with metadata only) and committed (with changes, author, comment)."""
    _build(api, "schema/built:1", DOCKERFILE)
    _build(api, "schema/scratch:1", "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", {"f": b"x"})
    _build(api, "schema/labels:1", "FROM scratch\nLABEL only=metadata\n")
    cid = api.run(["sh", "-c", "echo committed > /c"], Env=["NOEQ", "EQ=1"])
    api.wait(cid)
    changes = "&".join(f"changes={c}" for c in ("ENV%20C%3D3", "EXPOSE%208080", "VOLUME%20%2Fv", "USER%20nobody"))
    api.call("POST", f"/commit?container={cid}&repo=schema/committed&tag=1&author=me&comment=why&{changes}",
             status=201)
    api.call("DELETE", f"/containers/{cid}", status=204)
    return ["busybox:latest", "schema/built:1", "schema/scratch:1", "schema/labels:1", "schema/committed:1"]


def test_image_configs(api: Api, images: list[str]) -> None:
    """The config blob of every image in the store (its ID is the config's digest)."""
    for name in images:
        config = _config_of(api, name)
        assert not (e := image_errors(OCI_CONFIG, config)), (name, e)
    built = _config_of(api, "schema/built:1")
    assert built["config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]  # the walk saw the rich one
    # a bare NAME in the container's Env (Docker's "unset NAME") is not carried into the image
    assert _config_of(api, "schema/committed:1")["config"]["Env"] == ["EQ=1", "C=3"]


def test_saved_layout(api: Api, images: list[str]) -> None:
    """``GET /images/get`` of every image (Docker 25+ docker-archive: an OCI layout inside)."""
    query = "&".join(f"names={n}" for n in images)
    r = api.d.request("GET", f"/images/get?{query}", timeout=120)
    assert r.status == 200, r.body[:300]
    counts = _check_layout(_tar_files(r.body))
    assert counts["index.json"] == 1 and counts[OCI_MANIFEST] == len(images), counts
    assert counts[OCI_CONFIG] == len(images), counts


def test_cli_save(api: Api, images: list[str], tmp_path: Path) -> None:
    out = tmp_path / "saved.tar"
    r = _cli(api, "save", "-o", str(out), "schema/built:1")
    assert r.returncode == 0, r.stderr
    counts = _check_layout(_tar_files(out.read_bytes()))
    assert counts[OCI_MANIFEST] == 1 and counts[OCI_CONFIG] == 1, counts


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "reg")
    try:
        yield server
    finally:
        server.stop()


def _served(registry: Server, name: str, ref: str) -> tuple[str, Any]:
    accept = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST,
                        "application/vnd.docker.distribution.manifest.list.v2+json"))
    r = registry.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": accept})
    assert r.status == 200, r.body
    return r.headers["content-type"], json.loads(r.body)


def _blob_of(registry: Server, name: str, digest: str) -> Any:
    r = registry.request("GET", f"/v2/{name}/blobs/{digest}")
    assert r.status == 200, r.body[:200]
    return json.loads(r.body)


def test_pushed_manifests(api: Api, images: list[str], registry: Server) -> None:
    """The daemon pushes Docker schema2 (as dockerd does): the manifest as stored and served
    has the OCI manifest's shape, and its config passes the OCI config schema."""
    for name in ("busybox:latest", "schema/built:1", "schema/scratch:1", "schema/labels:1"):
        target = f"{registry.addr}/pushed/{name.replace('schema/', '')}"
        api.call("POST", f"/images/{name}/tag?repo={target.rsplit(':', 1)[0]}&tag={target.rsplit(':', 1)[1]}",
                 status=201)
        r = api.d.request("POST", f"/images/{target}/push", headers={"X-Registry-Auth": "e30="}, timeout=120)
        assert r.status == 200 and b"errorDetail" not in r.body, r.body
        repo, tag = target.split("/", 1)[1].rsplit(":", 1)
        media_type, manifest = _served(registry, repo, tag)
        assert media_type == manifest["mediaType"] == DOCKER_MANIFEST
        assert not (e := _kept(document_errors(media_type, manifest))), (name, e)
        config = _blob_of(registry, repo, manifest["config"]["digest"])
        assert not (e := image_errors(OCI_CONFIG, config)), (name, e)


def test_distribution_writers(tmp_path: Path, busybox_rootfs_tar: Path, registry: Server) -> None:
    """distribution/'s writers called directly on a store of the test's own: save_archive, the
    OCI layout's index and header, a zstd push (OCI media types) and a gzip push (Docker's) as
    the registry stores and serves them, and the registry's referrers index."""
    engine = local_engine(tmp_path / "engine")
    try:
        with open(busybox_rootfs_tar, "rb") as f:
            image = engine.store.import_rootfs(f, reference="busybox:latest", changes=['CMD ["sh"]', "ENV A=1"])
        out = io.BytesIO()
        save_archive(engine.store, ["busybox:latest", image.id], out)
        counts = _check_layout(_tar_files(out.getvalue()))
        assert counts[OCI_MANIFEST] == 1 and counts[OCI_CONFIG] == 1, counts

        desc = Descriptor(OCI_MANIFEST, image.id, 10)
        index = json.loads(ocilayout.index_bytes([(desc, ["busybox:latest", "example.com/a/b:2"]), (desc, [])]))
        assert len(index["manifests"]) == 3
        assert not (e := image_errors(OCI_INDEX, index)), e
        assert not (e := document_errors("application/vnd.oci.layout.header.v1+json",
                                         json.loads(ocilayout.layout_bytes()))), e

        served: dict[str, tuple[str, dict[str, Any]]] = {}
        for compression, tag in (("zstd", "zstd"), ("gzip", "gzip")):
            ref = refs.parse(f"{registry.addr}/dist/busybox:{tag}")
            engine.store.tag("busybox:latest", str(ref))
            repo = engine.dist.repository(ref, None, mirrors=False)
            result = push_image(engine.store, repo, ref, compression=compression)
            media_type, manifest = _served(registry, "dist/busybox", result.digest)
            assert not (e := _kept(document_errors(media_type, manifest))), (tag, e)
            config_type = manifest["config"]["mediaType"]
            config = _blob_of(registry, "dist/busybox", manifest["config"]["digest"])
            assert not (e := document_errors(config_type, config)), (tag, e)
            served[tag] = media_type, manifest
        assert served["zstd"][0] == OCI_MANIFEST and served["gzip"][0] == DOCKER_MANIFEST
        assert {d["mediaType"] for d in served["zstd"][1]["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}

        # an artifact whose subject is the OCI manifest: the referrers API answers with an index
        subject_digest, subject_size = _head(registry, "dist/busybox", "zstd")
        empty = registry.push_blob("dist/busybox", b"{}")
        artifact = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size},
            "annotations": {"org.example": "yes"},
        }
        assert registry.push_manifest("dist/busybox", "sig", artifact).status == 201
        for digest, expected in ((subject_digest, 1), (sha(b"nothing"), 0)):
            r = registry.request("GET", f"/v2/dist/busybox/referrers/{digest}")
            assert r.status == 200 and r.headers["content-type"] == OCI_INDEX, r.body
            referrers = json.loads(r.body)
            assert len(referrers["manifests"]) == expected, referrers
            assert not (e := image_errors(OCI_INDEX, referrers)), e
    finally:
        engine.close()


def _head(registry: Server, name: str, tag: str) -> tuple[str, int]:
    r = registry.request("HEAD", f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200
    return r.headers["docker-content-digest"], int(r.headers["content-length"])


def _bundle_config(api: Api, cid: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((api.d.data_root / "containers" / cid / "config.json").read_text())
    return config


def _runtime(api: Api, *args: str, runtime: str = "sampan") -> Any:
    root = api.d.exec_root / "runtime" / runtime
    binary = "sampan-runtime" if runtime == "sampan" else runtime
    r = subprocess.run([binary, "--root", str(root), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _check_container(api: Api, cid: str) -> dict[str, Any]:
    config = _bundle_config(api, cid)
    assert not (e := RUNTIME.errors("config-schema.json", config)), "\n".join(e)
    state = _runtime(api, "state", cid)
    assert state["id"] == cid
    assert not (e := RUNTIME.errors("state-schema.json", state)), e
    return config


CONTAINERS: dict[str, dict[str, Any]] = {
    "limits": {"HostConfig": {
        "Memory": 64 << 20, "MemoryReservation": 32 << 20, "MemorySwap": 128 << 20, "CpuShares": 512,
        "CpuQuota": 50000, "CpuPeriod": 100000, "CpusetCpus": "0", "CpusetMems": "0", "PidsLimit": 64,
        "BlkioWeight": 300, "ShmSize": 8 << 20, "OomScoreAdj": 100, "MemorySwappiness": 10,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 100, "Hard": 200}],
    }},
    "nano-cpus": {"HostConfig": {"NanoCpus": 500_000_000, "OomKillDisable": True, "Memory": 32 << 20}},
    "mounts": {"Volumes": {"/anon": {}}, "HostConfig": {
        "Binds": ["{tmp}:/bind-rw", "{tmp}:/bind-ro:ro", "named-vol:/named"],
        "Tmpfs": {"/run/t1": "rw,size=1m,mode=1777", "/run/t2": ""},
        "Mounts": [{"Type": "tmpfs", "Target": "/run/t3", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}},
                   {"Type": "bind", "Source": "{tmp}", "Target": "/bind-m", "ReadOnly": True,
                    "BindOptions": {"Propagation": "rslave"}},
                   {"Type": "volume", "Source": "other-vol", "Target": "/vol-m"}],
    }},
    "devices-caps": {"HostConfig": {
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"}],
        "DeviceCgroupRules": ["c 1:3 mr"], "CapAdd": ["NET_ADMIN", "SYS_TIME"], "CapDrop": ["CHOWN", "MKNOD"],
        "SecurityOpt": ["no-new-privileges"], "Sysctls": {"net.ipv4.ip_forward": "1"},
    }},
    "unlimited": {"HostConfig": {
        "MemorySwap": -1, "Memory": 64 << 20, "CpuQuota": -1, "PidsLimit": -1,
        "DeviceCgroupRules": ["c *:* m", "b 7:* rmw", "a *:* r"], "CapAdd": ["ALL"], "CapDrop": ["NET_RAW"],
        "IpcMode": "none", "ShmSize": 0,
    }},
    "privileged": {"HostConfig": {"Privileged": True}},
    "read-only-init-user": {"User": "1000:1000", "Env": ["X=1", "EMPTY="], "WorkingDir": "/tmp",
                            "Hostname": "h", "Domainname": "example.org", "Tty": True, "OpenStdin": True,
                            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000},
                            "HostConfig": {"ReadonlyRootfs": True, "Init": True, "GroupAdd": ["10", "20"],
                                           "SecurityOpt": ["seccomp=unconfined"],
                                           "ExtraHosts": ["a:10.0.0.1"], "Dns": ["10.0.0.2"]}},
    "host": {"HostConfig": {"NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host"}},
    "none": {"HostConfig": {"NetworkMode": "none", "IpcMode": "shareable"}},
}


@pytest.mark.parametrize("case", sorted(CONTAINERS))
def test_bundle_config(api: Api, case: str, tmp_path: Path) -> None:
    body = json.loads(json.dumps(CONTAINERS[case]).replace("{tmp}", str(tmp_path)))
    cid = api.run(["sleep", "30"], **body)
    config = _check_container(api, cid)
    assert config["process"]["args"][-2:] == ["sleep", "30"]


def test_bundle_config_unlimited_ulimits(api: Api) -> None:
    """Docker's -1 (unlimited) is written as the spec's uint64 2**64-1 (as dockerd writes it; runc
    refuses -1), and sampan-runtime gives the process an unlimited limit."""
    # core: its hard limit is unlimited already (raising one needs CAP_SYS_RESOURCE, which this
    # machine's root lacks); the soft one is raised from 0
    cid = api.run(["sh", "-c", "ulimit -c; sleep 30"], host={"Ulimits": [{"Name": "core", "Soft": -1, "Hard": -1}]})
    config = _check_container(api, cid)
    assert [(r["soft"], r["hard"]) for r in config["process"]["rlimits"]] == [((1 << 64) - 1, (1 << 64) - 1)]
    assert api.until(lambda: api.output(cid).split() == ["unlimited"]), api.output(cid)


def test_exec_process_json(api: Api) -> None:
    """The process.json the daemon hands to ``<runtime> exec --process`` (a runtime-spec
    ``process``: validated inside a minimal config); its env holds only NAME=value entries (a
    bare NAME, Docker's "unset NAME", used to be passed on: runc refused such an exec, and
    sampan-runtime gave the process NOEQ=)."""
    cid = api.run(["sleep", "30"])
    execs = {
        "plain": {"Cmd": ["sleep", "20"]},
        "rich": {"Cmd": ["sleep", "21"], "User": "1000:1000", "Env": ["E=1", "NOEQ"], "WorkingDir": "/tmp",
                 "Privileged": True, "Tty": True},
    }
    for name, body in execs.items():
        eid = api.call("POST", f"/containers/{cid}/exec", body, status=201)["Id"]
        api.call("POST", f"/exec/{eid}/start", {"Detach": True, "Tty": body.get("Tty", False)}, status=200)
        found = api.until(lambda eid=eid: [p for p in api.d.exec_root.rglob("process.json") if p.parent.name.startswith(eid[:12])])
        assert found, f"no process.json of exec {name}"
        process = json.loads(found[0].read_text())
        assert process["args"] == body["Cmd"]
        assert all("=" in v for v in process["env"]), process["env"]  # runc refuses a bare NAME
        wrapped = {"ociVersion": "1.1.0", "process": process}
        assert not (e := RUNTIME.errors("config-schema.json", wrapped)), (name, e)


def test_bundle_config_joined_namespaces(api: Api) -> None:
    """container:<id> network, pid and ipc namespaces (paths to another container's)."""
    first = api.run(["sleep", "30"], host={"IpcMode": "shareable"})
    second = api.run(["sleep", "30"], host={"NetworkMode": f"container:{first}", "PidMode": f"container:{first}",
                                            "IpcMode": f"container:{first}"})
    config = _check_container(api, second)
    joined = {ns["type"]: ns.get("path", "") for ns in config["linux"]["namespaces"]}
    assert joined["network"] and joined["pid"] and joined["ipc"], joined


def test_bundle_config_bridge_network(api: Api) -> None:
    net = api.call("POST", "/networks/create", {"Name": "schema-br", "Driver": "bridge"}, status=201)["Id"]
    try:
        cid = api.run(["sleep", "30"], host={"NetworkMode": "schema-br", "PortBindings": {"80/tcp": [{"HostPort": ""}]}},
                      ExposedPorts={"80/tcp": {}})
        config = _check_container(api, cid)
        assert any(ns["type"] == "network" and ns.get("path") for ns in config["linux"]["namespaces"])
        api.call("DELETE", f"/containers/{cid}?force=1", status=204)
    finally:
        api.d.request("DELETE", f"/networks/{net}")


@pytest.mark.parametrize("runtime", ["sampan", "runc"])
def test_runtime_state_paused(api: Api, runtime: str) -> None:
    """A paused container's state passes but for 'paused' (ALLOWED), which runc says too (crun
    does as well, but cannot run containers on this host's hybrid cgroups)."""
    if runtime != "sampan" and shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    cid = api.run(["sleep", "30"], host={"Runtime": runtime})
    api.call("POST", f"/containers/{cid}/pause", status=204)
    try:
        state = _runtime(api, "state", cid, runtime=runtime)
        assert state["status"] == "paused"
        assert not (e := _kept(RUNTIME.errors("state-schema.json", state))), e
    finally:
        api.call("POST", f"/containers/{cid}/unpause", status=204)


def test_runtime_states_created_running_stopped(tmp_path: Path, busybox_rootfs_tar: Path) -> None:
    """``sampan-runtime state`` through a container's life, on a bundle of sampan.oci.defaults
    (Docker's default config, which is validated too)."""
    bundle, root, cid = tmp_path / "bundle", tmp_path / "root", f"s2oci-{os.getpid()}"
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-xf", str(busybox_rootfs_tar)], check=True)
    config = default_config(["sleep", "30"])
    assert not (e := RUNTIME.errors("config-schema.json", config)), e
    (bundle / "config.json").write_text(json.dumps(config))

    def runtime(*args: str) -> str:
        r = subprocess.run(["sampan-runtime", "--root", str(root), *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    with open(tmp_path / "create.log", "wb") as log:  # the container's stdio: not a pipe run() waits on
        r = subprocess.run(["sampan-runtime", "--root", str(root), "create", "--bundle", str(bundle), cid],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=30)
    assert r.returncode == 0, (tmp_path / "create.log").read_text()
    try:
        statuses = []
        for step in ("created", "start", "kill"):
            if step != "created":
                runtime(step, cid, *(["KILL"] if step == "kill" else []))
            deadline = time.monotonic() + 5
            while True:
                state = json.loads(runtime("state", cid))
                if step != "kill" or state["status"] == "stopped" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert not (e := RUNTIME.errors("state-schema.json", state)), (step, e)
            statuses.append(state["status"])
        assert statuses == ["created", "running", "stopped"]
    finally:
        subprocess.run(["sampan-runtime", "--root", str(root), "delete", "--force", cid], capture_output=True, timeout=30)


def test_runtime_features(api: Api) -> None:
    features = _runtime(api, "features")
    assert not (e := RUNTIME.errors("features-schema.json", features)), e
    assert features["linux"]["namespaces"]
