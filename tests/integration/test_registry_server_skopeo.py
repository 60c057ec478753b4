"""skopeo copies images to and from ``sampan registry serve`` (plain HTTP and TLS) and agrees on
every digest."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from registry_harness import make_oci_layout, sha, skopeo, start_server


def _layout_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def test_skopeo_round_trip(tmp_path: Path) -> None:
    facts = make_oci_layout(tmp_path / "layout", [{"bin/tool": b"\x7fELF" + b"x" * 70000}, {"etc/conf": b"k=v\n"}])
    server = start_server(tmp_path / "storage")
    try:
        for tag in ("1.0", "latest"):
            r = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:latest",
                       f"docker://{server.addr}/library/tool:{tag}")
            assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", f"docker://{server.addr}/library/tool:1.0")
        assert r.returncode == 0, r.stderr
        inspect = json.loads(r.stdout)
        assert inspect["Digest"] == facts["manifest"]
        assert inspect["Layers"] == [d["digest"] for d in facts["layers"]]
        assert sorted(inspect["RepoTags"]) == ["1.0", "latest"]
        r = skopeo("list-tags", "--tls-verify=false", f"docker://{server.addr}/library/tool")
        assert json.loads(r.stdout)["Tags"] == ["1.0", "latest"]
        # back into a fresh layout and a docker-archive: same manifest, same bytes
        r = skopeo("copy", "--src-tls-verify=false", f"docker://{server.addr}/library/tool:latest",
                   f"oci:{tmp_path / 'back'}:latest")
        assert r.returncode == 0, r.stderr
        assert _layout_digest(tmp_path / "back") == facts["manifest"]
        for layer in facts["layers"]:
            data = (tmp_path / "back" / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes()
            assert sha(data) == layer["digest"]
        # registry to registry, within the same server (cross-repository mounts)
        r = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                   f"docker://{server.addr}/library/tool:1.0", f"docker://{server.addr}/mirror/tool:1.0")
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", f"docker://{server.addr}/mirror/tool:1.0")
        assert json.loads(r.stdout)["Digest"] == facts["manifest"]
        r = skopeo("delete", "--tls-verify=false", f"docker://{server.addr}/mirror/tool:1.0")
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", f"docker://{server.addr}/mirror/tool:1.0")
        assert r.returncode != 0 and "manifest unknown" in r.stderr
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_skopeo_over_tls(tmp_path: Path) -> None:
    make_oci_layout(tmp_path / "layout", [{"hello": b"tls\n"}])
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = start_server(tmp_path / "storage", config={"tls": {"certificate": str(cert), "key": str(key)}})
    try:
        r = skopeo("copy", f"--dest-cert-dir={tmp_path / 'none'}", "--dest-tls-verify=false",
                   f"oci:{tmp_path / 'layout'}:latest", f"docker://{server.addr}/tls/app:v1")
        assert r.returncode == 0, r.stderr
        certs = tmp_path / "certs"
        certs.mkdir()
        shutil.copy(cert, certs / "ca.crt")
        r = skopeo("inspect", f"--cert-dir={certs}", f"docker://{server.addr}/tls/app:v1")
        assert r.returncode == 0, r.stderr  # verified against the server's own certificate
        r = skopeo("inspect", f"docker://{server.addr}/tls/app:v1")
        assert r.returncode != 0  # an untrusted certificate is refused when verifying
    finally:
        server.stop()


def test_skopeo_copies_a_multi_platform_index(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    children = []
    for arch in ("amd64", "arm64"):
        facts = make_oci_layout(layout, [{"arch": arch.encode()}], tag=arch)
        size = (layout / "blobs" / "sha256" / facts["manifest"].split(":")[1]).stat().st_size
        children.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": facts["manifest"],
                         "size": size, "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": children}).encode()
    (layout / "blobs" / "sha256" / sha(index).split(":")[1]).write_bytes(index)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(index), "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    server = start_server(tmp_path / "storage")
    try:
        ref = f"docker://{server.addr}/library/multi:1"
        r = skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi", ref)
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", "--raw", ref)
        assert sha(r.stdout.encode()) == sha(index)
        for child in children:
            arch = child["platform"]["architecture"]  # type: ignore[index]
            r = skopeo("inspect", "--tls-verify=false", "--override-arch", str(arch), ref)
            assert r.returncode == 0, r.stderr
            found = json.loads(r.stdout)
            # (both test configs say amd64: the layers tell which child was chosen)
            child_doc = json.loads((layout / "blobs" / "sha256" / str(child["digest"]).split(":")[1]).read_bytes())
            assert found["Layers"] == [d["digest"] for d in child_doc["layers"]]
    finally:
        server.stop()


def test_skopeo_docker_schema2(tmp_path: Path) -> None:
    make_oci_layout(tmp_path / "layout", [{"docker": b"schema2\n"}])
    server = start_server(tmp_path / "storage")
    try:
        ref = f"docker://{server.addr}/library/docker-format:v1"
        r = skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:latest", ref)
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", "--raw", ref)
        doc = json.loads(r.stdout)
        assert doc["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert doc["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        r = skopeo("copy", "--src-tls-verify=false", ref, f"docker-archive:{tmp_path / 'image.tar'}:app:v1")
        assert r.returncode == 0, r.stderr
    finally:
        server.stop()
