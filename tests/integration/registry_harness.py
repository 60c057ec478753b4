"""Test harness for ``sampan registry serve``: a real server process, OCI layouts, raw HTTP.

Used by ``test_registry_server_*.py`` (imported by name: pytest puts this directory on the path).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = "application/vnd.oci.empty.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


@dataclass
class Server:
    """A running ``python -m sampan.registry_main serve`` on 127.0.0.1."""

    storage: Path
    port: int
    proc: subprocess.Popen[bytes]
    auth: str = ""  # an Authorization header value sent by request() unless overridden
    log: Path = field(default_factory=Path)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, *, auth: str | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        a = self.auth if auth is None else auth
        if a:
            h.setdefault("Authorization", a)
        if body is not None:
            h.setdefault("Content-Length", str(len(body)))
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def push_blob(self, name: str, data: bytes) -> str:
        digest = sha(data)
        r = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data,
                         {"Content-Type": "application/octet-stream"})
        assert r.status == 201, (r.status, r.body)
        return digest

    def push_manifest(self, name: str, ref: str, doc: dict[str, Any], media_type: str = OCI_MANIFEST) -> Response:
        body = json.dumps(doc).encode()
        return self.request("PUT", f"/v2/{name}/manifests/{ref}", body, {"Content-Type": media_type})

    def push_image(self, name: str, tag: str, layers: list[bytes], config: bytes = b"{}") -> tuple[str, dict[str, Any]]:
        cfg = self.push_blob(name, config)
        descs = [{"mediaType": OCI_LAYER_GZIP, "digest": self.push_blob(name, layer), "size": len(layer)}
                 for layer in layers]
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": cfg, "size": len(config)}, "layers": descs}
        r = self.push_manifest(name, tag, doc)
        assert r.status == 201, (r.status, r.body)
        return r.headers["docker-content-digest"], doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(storage: Path, *, config: dict[str, Any] | None = None, args: list[str] | None = None,
                 port: int | None = None) -> Server:
    port = port or free_port()
    storage.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sampan.registry_main", "serve", "--addr", f"127.0.0.1:{port}",
           "--storage", str(storage), *(args or [])]
    if config is not None:
        cfg_path = storage.parent / f"registry-{port}.json"
        cfg_path.write_text(json.dumps(config))
        cmd += ["--config", str(cfg_path)]
    log = storage.parent / f"registry-{port}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    server = Server(storage, port, proc, log=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"registry did not listen on {port}: {log.read_text()}")


def layer_tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip-compressed layer tar with ``files``; returns (blob, diff_id)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), sha(raw)


def make_oci_layout(root: Path, layers: list[dict[str, bytes]], *, tag: str = "latest") -> dict[str, Any]:
    """Write an OCI image layout with one linux/amd64 image; return facts about it."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = sha(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    layer_descs, diff_ids = [], []
    for files in layers:
        blob, diff_id = layer_tar_gz(files)
        layer_descs.append({"mediaType": OCI_LAYER_GZIP, "digest": put(blob), "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": [],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
        "layers": layer_descs,
    }).encode()
    mdigest = put(manifest)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return {"manifest": mdigest, "layers": layer_descs, "config": sha(config)}


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)
