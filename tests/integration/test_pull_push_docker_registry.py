"""Round trips with the real CNCF distribution registry (``/usr/bin/docker-registry``, htpasswd
auth, on a free loopback port, started and stopped here): ``sampan login``, ``push``, ``pull`` of
busybox and of a 200 MiB single-layer image; the pulled image ID equals the pushed one and
``skopeo inspect`` agrees on the manifest digest."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from pull_push_support import big_layer
from registry_harness import free_port, skopeo
from test_pull_push_cli import cli

from tests.daemon_fixture import Daemon, cleanup, start_daemon

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path(REGISTRY).exists(), reason="docker-registry (Debian package) is not installed"),
]


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("bob:" + bcrypt.hashpw(b"builder", bcrypt.gensalt(5)).decode() + "\n")
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'registry-data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: sampan-test\n    path: {htpasswd}\n"
    )
    log = open(tmp_path / "registry.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    log.close()
    try:
        deadline = time.monotonic() + 15
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((tmp_path / "registry.log").read_text()) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def sampand(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        yield d
    finally:
        cleanup(d)


def test_round_trip_busybox_and_200m(
    tmp_path: Path, sampand: Daemon, distribution: str, busybox_rootfs_tar: Path
) -> None:
    _, raw = big_layer(200)
    big_tar = tmp_path / "big.tar"
    big_tar.write_bytes(raw)
    names = {"busybox": f"{distribution}/lab/busybox:1", "big": f"{distribution}/lab/big:1"}
    ids = {}
    for key, tar in (("busybox", busybox_rootfs_tar), ("big", big_tar)):
        r = cli(sampand, "import", str(tar), names[key])
        assert r.returncode == 0, r.stderr
        ids[key] = r.stdout.strip()
    big_tar.unlink()

    r = cli(sampand, "login", "-u", "bob", "--password-stdin", distribution, stdin="builder")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    digests = {}
    for key, name in names.items():
        t0 = time.perf_counter()
        r = cli(sampand, "push", name)
        assert r.returncode == 0, r.stdout + r.stderr
        digests[key] = r.stdout.split("digest: ")[1].split()[0]
        print(f"push {key}: {time.perf_counter() - t0:.2f} s")
        out = skopeo("inspect", "--tls-verify=false", "--creds", "bob:builder", f"docker://{name}")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Digest"] == digests[key]
        r = cli(sampand, "rmi", name)
        assert r.returncode == 0, r.stderr

    for key, name in names.items():
        t0 = time.perf_counter()
        r = cli(sampand, "pull", name)
        assert r.returncode == 0, r.stdout + r.stderr
        print(f"pull {key}: {time.perf_counter() - t0:.2f} s")
        assert f"Digest: {digests[key]}" in r.stdout
        r = cli(sampand, "image", "inspect", "--format", "{{.Id}}", name)
        assert r.stdout.strip() == ids[key]

    # a second push after the pull sends nothing new and yields the same digest
    r = cli(sampand, "push", names["big"])
    assert r.returncode == 0 and "Layer already exists" in r.stdout and digests["big"] in r.stdout
    r = cli(sampand, "logout", distribution)
    assert r.returncode == 0
    r = cli(sampand, "push", names["busybox"])
    assert r.returncode != 0 and "authentication required" in r.stderr, r.stderr
