"""``sampan login/push/pull/logout`` through a real sampand against ``sampan registry serve``
with htpasswd Basic auth; the Engine API's progress stream, aux and errors; token mode scopes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from registry_harness import Server, skopeo, start_server

from tests.daemon_fixture import REPO, Daemon, cleanup, start_daemon

pytestmark = pytest.mark.timeout(300)


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Server]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{_hash('wonderland')}\n")
    server = start_server(tmp_path / "reg", config={"auth": {"htpasswd": {"path": str(htpasswd), "realm": "t"}}})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sampand(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        yield d
    finally:
        cleanup(d)


def cli(d: Daemon, *args: str, stdin: str | None = None, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAMPAN_HOST": d.url, "PYTHONPATH": str(REPO),
           "SAMPAN_CONFIG": str(config or d.dir / "cfg")}
    return subprocess.run([sys.executable, "-m", "sampan.cli", *args], env=env, cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _auth(user: str, password: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"username": user, "password": password}).encode()).decode()


def test_login_push_pull_logout(sampand: Daemon, registry: Server, busybox_rootfs_tar: Path) -> None:
    name = f"{registry.addr}/team/busybox:1"
    r = cli(sampand, "import", str(busybox_rootfs_tar), name)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()

    # without credentials the push is refused, in one line
    r = cli(sampand, "push", name)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "authentication required" in r.stderr, r.stderr

    r = cli(sampand, "login", "-u", "alice", "-p", "nope", registry.addr)
    assert r.returncode != 0 and "401" in r.stderr, r.stderr
    r = cli(sampand, "login", "-u", "alice", "--password-stdin", registry.addr, stdin="wonderland\n")
    assert r.returncode == 0, r.stderr
    assert "Login Succeeded" in r.stdout
    stored = json.loads((sampand.dir / "cfg" / "config.json").read_text())
    assert base64.b64decode(stored["auths"][registry.addr]["auth"]) == b"alice:wonderland"

    r = cli(sampand, "push", name)
    assert r.returncode == 0, r.stderr
    assert "The push refers to repository" in r.stdout and "Pushed" in r.stdout
    assert "1: digest: sha256:" in r.stdout
    first_digest = r.stdout.split("digest: ")[1].split()[0]
    r = cli(sampand, "push", name)
    assert r.returncode == 0, r.stderr
    assert "Layer already exists" in r.stdout
    assert first_digest in r.stdout  # the same image pushes to the same manifest digest

    # skopeo sees the same manifest digest
    out = skopeo("inspect", "--tls-verify=false", "--creds", "alice:wonderland", f"docker://{name}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Digest"] == first_digest

    r = cli(sampand, "rmi", name)
    assert r.returncode == 0, r.stderr
    r = cli(sampand, "pull", name)
    assert r.returncode == 0, r.stderr
    assert "Pull complete" in r.stdout and f"Digest: {first_digest}" in r.stdout
    assert f"Status: Downloaded newer image for {name}" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == name
    r = cli(sampand, "image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", name)
    assert r.stdout.split()[0] == image_id
    assert f"{registry.addr}/team/busybox@{first_digest}" in r.stdout
    r = cli(sampand, "pull", "-q", name)
    assert r.returncode == 0 and r.stdout == name + "\n", (r.stdout, r.stderr)

    r = cli(sampand, "pull", f"{registry.addr}/team/busybox:nope")
    assert r.returncode != 0
    assert "manifest for" in r.stderr and "not found" in r.stderr and r.stderr.count("\n") == 1, r.stderr

    r = cli(sampand, "logout", registry.addr)
    assert r.returncode == 0 and f"Removing login credentials for {registry.addr}" in r.stdout
    assert registry.addr not in json.loads((sampand.dir / "cfg" / "config.json").read_text())["auths"]
    r = cli(sampand, "pull", name)
    assert r.returncode != 0 and "pull access denied" in r.stderr, r.stderr


def test_api_stream_aux_and_auth(sampand: Daemon, registry: Server, busybox_rootfs_tar: Path) -> None:
    name = f"{registry.addr}/api/busybox"
    r = cli(sampand, "import", str(busybox_rootfs_tar), f"{name}:2")
    assert r.returncode == 0, r.stderr
    resp = sampand.request("POST", "/auth", {"username": "alice", "password": "wonderland",
                                             "serveraddress": registry.addr})
    assert resp.status == 200 and resp.json() == {"Status": "Login Succeeded", "IdentityToken": ""}
    resp = sampand.request("POST", "/auth", {"username": "alice", "password": "x", "serveraddress": registry.addr})
    assert resp.status == 401, resp.body

    resp = sampand.request("POST", f"/images/{name}/push?tag=2", headers={"X-Registry-Auth": _auth("alice", "wonderland")})
    assert resp.status == 200
    lines = resp.lines()
    aux = [m["aux"] for m in lines if "aux" in m]
    assert len(aux) == 1 and aux[0]["Tag"] == "2" and aux[0]["Digest"].startswith("sha256:") and aux[0]["Size"] > 0
    assert not [m for m in lines if "error" in m]

    resp = sampand.request("POST", f"/images/{name}/push?tag=nope")
    assert resp.status == 404 and "does not exist locally" in resp.json()["message"], resp.body

    resp = sampand.request("GET", f"/distribution/{name}:2/json", headers={"X-Registry-Auth": _auth("alice", "wonderland")})
    assert resp.status == 200, resp.body
    doc = resp.json()
    assert doc["Descriptor"]["digest"] == aux[0]["Digest"] and doc["Platforms"][0]["os"] == "linux"

    resp = sampand.request("POST", f"/images/create?fromImage={name}&tag=2",
                           headers={"X-Registry-Auth": _auth("alice", "wonderland")})
    statuses = [m.get("status", "") for m in resp.lines()]
    assert "Status: Image is up to date for " + f"{name}:2" in statuses
    resp = sampand.request("POST", f"/images/create?fromImage={name}&tag=3",
                           headers={"X-Registry-Auth": _auth("alice", "wonderland")})
    # a failure before the first progress message is an HTTP error, as dockerd answers
    assert resp.status == 404 and "manifest for" in resp.json()["message"], resp.body
