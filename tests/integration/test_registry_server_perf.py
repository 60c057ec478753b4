"""skopeo pushing and pulling a 200 MiB single-layer image: sampan's registry vs docker-registry
(the CNCF distribution registry from Debian), both on loopback, runs interleaved.  Prints the
table; fails only on a clear regression (the figures drift ±10% between runs on these VMs)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from registry_harness import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    free_port,
    skopeo,
    start_server,
)

DOCKER_REGISTRY = shutil.which("docker-registry")
SIZE = 200 << 20
RUNS = 5


def _big_layout(root: Path) -> int:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = SIZE
        tar.addfile(info, io.BytesIO(os.urandom(SIZE)))
    raw = buf.getvalue()
    layer = gzip.compress(raw, compresslevel=0, mtime=0)  # stored blocks: fast, ~SIZE bytes

    def put(data: bytes) -> str:
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / d[7:]).write_bytes(data)
        return d

    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
                           "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": put(layer), "size": len(layer)}]}).encode()
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": put(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return len(layer)


def _timed(*args: str) -> float:
    t = time.perf_counter()
    r = skopeo(*args, timeout=300)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t


@pytest.mark.peers
@pytest.mark.slow
@pytest.mark.skipif(DOCKER_REGISTRY is None, reason="docker-registry (Debian package) is not installed")
def test_skopeo_rates_vs_docker_registry(tmp_path: Path) -> None:
    size = _big_layout(tmp_path / "layout")
    port = free_port()
    (tmp_path / "dr.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'dr-store'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    peer = subprocess.Popen([str(DOCKER_REGISTRY), "serve", str(tmp_path / "dr.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = start_server(tmp_path / "sp-store")
    shm = Path("/dev/shm")  # pull into memory: the disk's write-back is not what is measured
    out = (Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path) / "out"
    times: dict[str, dict[str, list[float]]] = {"sampan": {"push": [], "pull": []},
                                                "docker-registry": {"push": [], "pull": []}}
    try:
        addrs = {"sampan": ours.addr, "docker-registry": f"127.0.0.1:{port}"}
        for name, addr in addrs.items():
            times[name]["push"].append(_timed("copy", "-q", "--dest-tls-verify=false",
                                              f"oci:{tmp_path / 'layout'}:latest", f"docker://{addr}/lab/big:latest"))
        for i in range(RUNS):
            for name in (list(addrs) if i % 2 == 0 else list(addrs)[::-1]):
                shutil.rmtree(out, ignore_errors=True)
                times[name]["pull"].append(_timed("copy", "-q", "--src-tls-verify=false",
                                                  f"docker://{addrs[name]}/lab/big:latest", f"dir:{out}"))
    finally:
        ours.stop()
        peer.send_signal(signal.SIGTERM)
        peer.wait(10)
        shutil.rmtree(out.parent if out.parent != tmp_path else out, ignore_errors=True)
    rate = {n: {k: size / statistics.median(v) / 1e6 for k, v in t.items()} for n, t in times.items()}
    print(f"\nskopeo, {size / 1e6:.0f} MB layer | push MB/s | pull MB/s (median of {RUNS})")
    for name, r in rate.items():
        print(f"{name:16} | {r['push']:9.0f} | {r['pull']:9.0f}")
    ratio = rate["sampan"]["pull"] / rate["docker-registry"]["pull"]
    print(f"pull ratio sampan/docker-registry: {ratio:.2f}")
    assert ratio >= 0.8, rate
