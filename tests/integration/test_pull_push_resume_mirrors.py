"""Acceptance tests of the registry client: mirrors for any registry, resumed downloads,
parallel layers, platform selection from an index, digest checks."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pull_push_support import CountingProxy, LocalEngine, big_layer, gzip_layer, local_engine
from registry_harness import OCI_INDEX, OCI_MANIFEST, Server, free_port, start_server

from sampan import errors
from sampan.distribution.http import RegistryOptions

pytestmark = pytest.mark.timeout(300)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(raws: list[bytes], arch: str = "amd64") -> bytes:
    return json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raws]}}).encode()


def push_layers(server: Server, name: str, tag: str, layers: list[tuple[bytes, bytes]], arch: str = "amd64") -> tuple[str, str]:
    """Push an image made of (gzip blob, raw tar) layers; (manifest digest, image ID)."""
    config = config_for([raw for _, raw in layers], arch)
    digest, _ = server.push_image(name, tag, [blob for blob, _ in layers], config=config)
    return digest, sha(config)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for s in made:
        s.stop()


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[LocalEngine]]:
    made: list[LocalEngine] = []
    yield made
    for e in made:
        e.close()


def test_mirror_serves_when_origin_is_down_and_origin_when_mirror_is_down(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    a = start_server(tmp_path / "a")
    b = start_server(tmp_path / "b")
    servers += [a, b]
    layers = [gzip_layer({"etc/hello": b"hello\n"}), gzip_layer({"bin/x": b"x" * 5000})]
    digest, image_id = push_layers(a, "app", "1", layers)
    assert push_layers(b, "app", "1", layers)[0] == digest

    # A down, B is A's mirror: the pull succeeds from B and is recorded under A's name
    a.stop()
    e1 = local_engine(tmp_path / "e1", RegistryOptions(mirrors=[f"{a.addr}=http://{b.addr}"]))
    engines.append(e1)
    [result] = e1.dist.pull(f"{a.addr}/app", tag="1")
    assert result.image_id == image_id and result.digest == digest
    assert e1.store.get(f"{a.addr}/app:1").id == image_id

    # A up, B down: falls back to A ("URL" form: a mirror of every registry)
    a2 = start_server(tmp_path / "a", port=a.port)
    servers.append(a2)
    b.stop()
    e2 = local_engine(tmp_path / "e2", RegistryOptions(mirrors=[f"http://{b.addr}"]))
    engines.append(e2)
    [result] = e2.dist.pull(f"{a.addr}/app", tag="1")
    assert result.image_id == image_id

    # neither up: one line naming the registry
    a2.stop()
    e3 = local_engine(tmp_path / "e3", RegistryOptions(mirrors=[f"http://{b.addr}"]))
    engines.append(e3)
    with pytest.raises(errors.Unavailable) as info:
        e3.dist.pull(f"{a.addr}/app", tag="1")
    assert a.addr in str(info.value) and "\n" not in str(info.value)
    assert e3.store.list() == []


def test_pull_resumes_with_range_after_the_server_is_killed(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    blob, raw = big_layer(200)
    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    _, image_id = push_layers(origin, "big", "1", [(blob, raw)])
    size = len(blob)
    killed = threading.Event()

    def restart() -> None:
        servers[0].proc.kill()
        servers[0].proc.wait()
        time.sleep(0.5)
        servers.append(start_server(tmp_path / "reg", port=origin.port))

    def on_served(total: int) -> None:
        if total > size // 2 and not killed.is_set():
            killed.set()
            threading.Thread(target=restart, daemon=True).start()

    proxy = CountingProxy(origin.port, on_served)
    try:
        engine = local_engine(tmp_path / "e", RegistryOptions())
        engines.append(engine)
        [result] = engine.dist.pull(f"{proxy.addr}/big", tag="1")
    finally:
        proxy.close()
    assert killed.is_set()
    assert result.image_id == image_id
    resumed = [r for r in proxy.ranges if r.startswith("bytes=") and int(r[6:].rstrip("-")) >= size // 3]
    assert resumed, proxy.ranges
    # the first half was not downloaded again (headers and the config are small)
    assert proxy.served < size + (1 << 20), (proxy.served, size)
    assert not list((tmp_path / "e" / "tmp").glob("partial-*"))


def test_a_later_pull_starts_from_the_partial_file(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    blob, raw = gzip_layer({"data": bytes(range(256)) * 40000})
    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    _, image_id = push_layers(origin, "p", "1", [(blob, raw)])
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    half = len(blob) // 2
    partial = tmp_path / "e" / "tmp" / f"partial-{sha(blob)[7:]}"
    partial.write_bytes(blob[:half])
    (tmp_path / "e" / "tmp" / "blob-junk").write_bytes(b"x")
    engine.store.reconcile()  # a daemon restart keeps partial downloads, drops other temporaries
    assert partial.exists() and not (tmp_path / "e" / "tmp" / "blob-junk").exists()
    proxy = CountingProxy(origin.port)
    try:
        [result] = engine.dist.pull(f"{proxy.addr}/p", tag="1")
    finally:
        proxy.close()
    assert result.image_id == image_id
    assert f"bytes={half}-" in proxy.ranges
    assert proxy.served < len(blob) - half + 64 * 1024


def test_corrupt_blob_is_refused_and_nothing_is_stored(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    good, _ = gzip_layer({"a": b"a" * 1000})
    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    # a manifest whose layer digest is right but config diff_id is of another tar
    config = config_for([gzip_layer({"zzz": b"1"})[1]])
    origin.push_image("c", "1", [good], config=config)
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    with pytest.raises(errors.InvalidArgument) as info:
        engine.dist.pull(f"{origin.addr}/c", tag="1")
    assert "c:1" in str(info.value) and "digest mismatch" in str(info.value)
    assert engine.store.list() == []
    assert list(engine.store.content.walk()) == []


def test_index_platform_selection_and_parallel_layers(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    amd = [gzip_layer({f"l{i}": bytes([i]) * 300000}) for i in range(5)]
    arm = [gzip_layer({"arm": b"arm"})]
    d_amd, id_amd = push_layers(origin, "multi", "amd", amd)
    d_arm, id_arm = push_layers(origin, "multi", "arm", arm, arch="arm64")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d_arm, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": OCI_MANIFEST, "digest": d_amd, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    for d in index["manifests"]:  # sizes as stored
        d["size"] = len(origin.request("GET", f"/v2/multi/manifests/{d['digest']}",
                                       headers={"Accept": OCI_MANIFEST}).body)
    r = origin.push_manifest("multi", "latest", index, OCI_INDEX)
    assert r.status == 201, r.body
    index_digest = r.headers["docker-content-digest"]
    engine = local_engine(tmp_path / "e", RegistryOptions(max_downloads=3))
    engines.append(engine)
    messages: list[dict[str, object]] = []
    [result] = engine.dist.pull(f"{origin.addr}/multi", tag="latest", on_progress=messages.append)
    assert result.image_id == id_amd and result.digest == index_digest
    statuses = [m["status"] for m in messages]
    assert statuses.count("Pulling fs layer") == 5 and statuses.count("Waiting") == 2
    assert statuses.count("Pull complete") == 5
    assert statuses[-1] == f"Status: Downloaded newer image for {origin.addr}/multi:latest"
    [result] = engine.dist.pull(f"{origin.addr}/multi", tag="latest", platform="linux/arm64")
    assert result.image_id == id_arm
    with pytest.raises(errors.NotFound) as info:
        engine.dist.pull(f"{origin.addr}/multi", tag="latest", platform="linux/s390x")
    assert "s390x" in str(info.value)


def test_bearer_token_mode_scopes_and_cross_repository_mount(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    import bcrypt

    from sampan.distribution.auth import Credentials

    def hashed(pw: bytes) -> str:
        return bcrypt.hashpw(pw, bcrypt.gensalt(4)).decode()

    port = free_port()
    token = {"realm": f"http://127.0.0.1:{port}/token", "service": "sampan-test", "issuer": "t", "secret": "k" * 32,
             "users": {"dave": {"password": hashed(b"pw"), "access": [{"name": "*", "actions": ["pull", "push"]}]},
                       "erin": {"password": hashed(b"pw"), "access": [{"name": "*", "actions": ["pull"]}]},
                       "anonymous": {"access": [{"name": "public/*", "actions": ["pull"]}]}}}
    server = start_server(tmp_path / "reg", config={"auth": {"token": token}}, port=port)
    servers.append(server)
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    _, raw = gzip_layer({"f": b"token mode\n"})
    tar = tmp_path / "l.tar"
    tar.write_bytes(raw)
    with open(tar, "rb") as f:
        image = engine.store.import_rootfs(f, reference=f"{server.addr}/team/app:1")
    dave, erin = Credentials("dave", "pw"), Credentials("erin", "pw")
    with pytest.raises(errors.SampanError) as info:
        engine.dist.push(f"{server.addr}/team/app:1", credentials=erin)
    assert "insufficient_scope" in str(info.value) or "denied" in str(info.value), info.value
    [pushed] = engine.dist.push(f"{server.addr}/team/app:1", credentials=dave)
    # a second repository on the same registry gets the layer by a cross-repository mount
    engine.store.tag(f"{server.addr}/team/app:1", f"{server.addr}/public/app:1")
    messages: list[dict[str, object]] = []
    engine.dist.push(f"{server.addr}/public/app:1", credentials=dave, on_progress=messages.append)
    assert any(str(m.get("status", "")).startswith("Mounted from team/app") for m in messages), messages
    other = local_engine(tmp_path / "e2")
    engines.append(other)
    [result] = other.dist.pull(f"{server.addr}/public/app", tag="1")  # anonymous token
    assert result.image_id == image.id and result.digest == pushed.digest
    with pytest.raises(errors.NotFound, match="pull access denied"):
        other.dist.pull(f"{server.addr}/team/app", tag="1")
    [result] = other.dist.pull(f"{server.addr}/team/app", tag="1", credentials=erin)
    assert result.image_id == image.id
    assert other.dist.login(server.addr, dave) == ""
    with pytest.raises(errors.Unauthorized):
        other.dist.login(server.addr, Credentials("dave", "wrong"))


def test_all_tags_and_unsupported_media_type(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    small = [gzip_layer({"a": b"1"})]
    push_layers(origin, "many", "1", small)
    push_layers(origin, "many", "2", [gzip_layer({"b": b"2"})])
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    results = engine.dist.pull(f"{origin.addr}/many", all_tags=True)
    assert sorted(r.reference for r in results) == [f"{origin.addr}/many:1", f"{origin.addr}/many:2"]

    # an artifact that is not a container image: one line naming it, nothing stored
    config = b'{"name": "chart"}'
    origin.push_image("chart", "1", [small[0][0]], config=config)
    doc = origin.request("GET", "/v2/chart/manifests/1", headers={"Accept": OCI_MANIFEST}).json()
    doc["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    assert origin.push_manifest("chart", "2", doc).status == 201
    other = local_engine(tmp_path / "e2")
    engines.append(other)
    with pytest.raises(errors.InvalidArgument, match=r"chart:2: unsupported config media type"):
        other.dist.pull(f"{origin.addr}/chart", tag="2")
    assert other.store.list() == []


@pytest.mark.root
def test_disk_full_leaves_nothing_stored(tmp_path: Path, servers: list[Server], engines: list[LocalEngine]) -> None:
    import os
    import subprocess

    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    # a full disk: a 4 MiB tmpfs as the data root, a 16 MiB layer
    blob = os.urandom(16 << 20)
    big = gzip_layer({"big": blob})
    push_layers(origin, "big", "1", [big])
    root = tmp_path / "full"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True)
    try:
        full = local_engine(root / "data")
        try:
            with pytest.raises(errors.Unavailable) as info:
                full.dist.pull(f"{origin.addr}/big", tag="1")
            assert "big:1" in str(info.value) and "no space left" in str(info.value)
            assert full.store.list() == [] and list(full.store.content.walk()) == []
            assert not [p for p in (root / "data" / "tmp").iterdir() if not p.name.startswith("partial-")]
        finally:
            full.close()
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_chunked_and_monolithic_uploads_give_the_same_digest(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine]
) -> None:
    import os

    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    _, raw = gzip_layer({"data": os.urandom(300_000)})
    tar = tmp_path / "l.tar"
    tar.write_bytes(raw)
    chunked = local_engine(tmp_path / "c", RegistryOptions(chunk_size=64 * 1024))
    plain = local_engine(tmp_path / "p")
    engines += [chunked, plain]
    digests = []
    proxy = CountingProxy(origin.port)
    try:
        for engine, repo in ((chunked, "chunked"), (plain, "plain")):
            with open(tar, "rb") as f:
                engine.store.import_rootfs(f, reference=f"{proxy.addr}/{repo}:1")
            [result] = engine.dist.push(f"{proxy.addr}/{repo}:1")
            digests.append(result.digest)
    finally:
        proxy.close()
    patches = [r for r in proxy.requests if r.startswith("PATCH /v2/chunked/")]
    assert len(patches) >= 4, proxy.requests  # 300 kB in 64 KiB chunks
    # without chunks the layer streams out as it is compressed: one PATCH, then the PUT
    assert len([r for r in proxy.requests if r.startswith("PATCH /v2/plain/")]) == 1, proxy.requests
    # the same rootfs imported twice is the same image only if created at the same second;
    # the layer blobs are the same bytes either way (deterministic gzip)
    layers = [json.loads(origin.request("GET", f"/v2/{r}/manifests/1",
                                        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}).body)["layers"]
              for r in ("chunked", "plain")]
    assert layers[0] == layers[1]
    other = local_engine(tmp_path / "o")
    engines.append(other)
    [result] = other.dist.pull(f"{origin.addr}/chunked", tag="1")
    assert result.digest == digests[0]


def test_zstd_and_uncompressed_layers(tmp_path: Path, servers: list[Server], engines: list[LocalEngine]) -> None:
    import zstandard

    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    _, raw1 = gzip_layer({"z": b"zstd layer\n" * 1000})
    _, raw2 = gzip_layer({"u": b"plain layer\n"})
    zblob = zstandard.ZstdCompressor().compress(raw1)
    config = config_for([raw1, raw2])
    layers = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": origin.push_blob("mixed", zblob),
         "size": len(zblob)},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": origin.push_blob("mixed", raw2),
         "size": len(raw2)},
    ]
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": origin.push_blob("mixed", config), "size": len(config)}}
    assert origin.push_manifest("mixed", "1", doc).status == 201
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    [result] = engine.dist.pull(f"{origin.addr}/mixed", tag="1")
    assert result.image_id == sha(config)
    image = engine.store.get(result.image_id)
    assert [la.diff_id for la in image.layers] == [sha(raw1), sha(raw2)]
    # pushed again: both layers become gzip (Docker's media types)
    engine.store.tag(f"{origin.addr}/mixed:1", f"{origin.addr}/mixed:2")
    [pushed] = engine.dist.push(f"{origin.addr}/mixed", tag="2")
    manifest = json.loads(origin.request("GET", f"/v2/mixed/manifests/{pushed.digest}",
                                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}).body)
    assert {la["mediaType"] for la in manifest["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}


def test_second_push_recompresses_nothing(
    tmp_path: Path, servers: list[Server], engines: list[LocalEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sampan.distribution import push as push_mod

    a = start_server(tmp_path / "a")
    b = start_server(tmp_path / "b")
    servers += [a, b]
    _, raw = gzip_layer({"f": b"compress me once\n" * 5000})
    tar = tmp_path / "l.tar"
    tar.write_bytes(raw)
    engine = local_engine(tmp_path / "e")
    engines.append(engine)
    with open(tar, "rb") as f:
        engine.store.import_rootfs(f, reference=f"{a.addr}/x:1")
    [first] = engine.dist.push(f"{a.addr}/x:1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recompressed")

    monkeypatch.setattr(push_mod.PushSource, "_compress", refuse)
    engine.store.tag(f"{a.addr}/x:1", f"{b.addr}/x:1")
    [second] = engine.dist.push(f"{b.addr}/x:1")
    assert second.digest == first.digest  # the same image, the same manifest, anywhere
    engine.store.reconcile()  # the cached blob belongs to the image: kept
    engine.store.tag(f"{a.addr}/x:1", f"{b.addr}/y:1")
    assert engine.dist.push(f"{b.addr}/y:1")[0].digest == first.digest


def test_redirects_are_followed(tmp_path: Path, servers: list[Server], engines: list[LocalEngine]) -> None:
    from pull_push_support import RedirectingFront

    origin = start_server(tmp_path / "reg")
    servers.append(origin)
    digest, image_id = push_layers(origin, "r", "1", [gzip_layer({"f": b"redirected\n"})])
    front = RedirectingFront(origin.port)
    try:
        engine = local_engine(tmp_path / "e")
        engines.append(engine)
        [result] = engine.dist.pull(f"{front.addr}/r", tag="1")
    finally:
        front.close()
    assert result.image_id == image_id and result.digest == digest
    assert any(r.startswith("GET /v2/r/blobs/") for r in front.redirected), front.redirected
