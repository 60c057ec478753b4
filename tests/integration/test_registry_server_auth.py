"""``sampan registry serve`` with htpasswd Basic auth and with its token service, driven by skopeo
and by raw HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from registry_harness import Server, free_port, make_oci_layout, sha, skopeo, start_server


def _hash(password: str, prefix: str = "$2b$") -> str:
    return prefix + bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()[4:]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    make_oci_layout(tmp_path / "layout", [{"etc/motd": b"authenticated\n"}], tag="v1")
    return tmp_path / "layout"


def test_htpasswd_basic_auth(tmp_path: Path, layout: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{_hash('wonderland', '$2y$')}\nbob:{_hash('builder')}\n")
    config = {"auth": {"htpasswd": {"path": str(htpasswd), "realm": "sampan-test"}}}
    server = start_server(tmp_path / "storage", config=config)
    try:
        for path in ("/v2/", "/v2/_catalog", "/v2/app/manifests/v1", "/"):
            r = server.request("GET", path)
            assert r.status == 401, path
            assert r.headers["www-authenticate"] == 'Basic realm="sampan-test"'
        r = server.request("POST", "/v2/app/blobs/uploads/", b"")
        assert (r.status, r.codes()) == (401, ["UNAUTHORIZED"])
        assert server.request("GET", "/v2/", auth=_basic("alice", "wrong")).status == 401
        assert server.request("GET", "/v2/", auth=_basic("carol", "wonderland")).status == 401
        assert server.request("GET", "/v2/", auth=_basic("alice", "wonderland")).status == 200

        dest = f"docker://{server.addr}/team/app:v1"
        r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", dest)
        assert r.returncode != 0 and ("authentication required" in r.stderr or "401" in r.stderr), r.stderr
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:builder", f"oci:{layout}:v1", dest)
        assert r.returncode == 0, r.stderr
        r = skopeo("copy", "--src-tls-verify=false", "--src-creds", "alice:wonderland",
                   dest, f"oci:{tmp_path / 'back'}:v1")
        assert r.returncode == 0, r.stderr
        back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"]
        orig = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
        assert back == orig
    finally:
        server.stop()


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    config = {"auth": {"token": {
        "realm": f"http://127.0.0.1:{port}/token", "service": "sampan-test", "issuer": "test",
        "secret": "0123456789abcdef",
        "users": {
            "writer": {"password": _hash("w-pass"), "access": [{"name": "team/*", "actions": ["pull", "push", "delete"]}]},
            "reader": {"password": _hash("r-pass"), "access": [{"name": "team/*", "actions": ["pull"]},
                                                               {"type": "registry", "name": "catalog", "actions": ["*"]}]},
            "anonymous": {"access": [{"name": "public/*", "actions": ["pull"]}]},
        },
    }}}
    server = start_server(tmp_path / "storage", config=config, port=port)
    try:
        yield server
    finally:
        server.stop()


def test_token_mode_challenge_and_scopes(token_server: Server) -> None:
    server = token_server
    try:
        r = server.request("GET", "/v2/")
        assert r.status == 401
        assert r.headers["www-authenticate"].startswith(f'Bearer realm="http://{server.addr}/token",service="sampan-test"')
        r = server.request("POST", "/v2/team/app/blobs/uploads/", b"")
        assert r.status == 401
        assert 'scope="repository:team/app:pull,push"' in r.headers["www-authenticate"]

        def token(user: str, password: str, scope: str) -> str:
            r = server.request("GET", f"/token?service=sampan-test&scope={scope}", auth=_basic(user, password))
            assert r.status == 200, r.body
            return str(r.json()["token"])

        assert server.request("GET", "/token?service=sampan-test", auth=_basic("reader", "bad")).status == 401
        pull_only = token("reader", "r-pass", "repository:team/app:pull,push")
        r = server.request("POST", "/v2/team/app/blobs/uploads/", b"", auth=f"Bearer {pull_only}")
        assert r.status == 401
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert r.codes() == ["DENIED"]
        assert server.request("GET", "/v2/team/app/tags/list", auth=f"Bearer {pull_only}").status == 404
        writer = token("writer", "w-pass", "repository:team/app:pull,push")
        r = server.request("POST", "/v2/team/app/blobs/uploads/", b"", auth=f"Bearer {writer}")
        assert r.status == 202
        # a token is for the repositories it names only
        assert server.request("POST", "/v2/team/other/blobs/uploads/", b"", auth=f"Bearer {writer}").status == 401
        # a forged or tampered token is refused
        head, body, mac = writer.split(".")
        forged = f"{head}.{body}.{mac[:-2]}AA"
        assert server.request("GET", "/v2/", auth=f"Bearer {forged}").status == 401
        # catalog needs registry:catalog:*
        assert server.request("GET", "/v2/_catalog", auth=f"Bearer {writer}").status == 401
        cat = token("reader", "r-pass", "registry:catalog:*")
        assert server.request("GET", "/v2/_catalog", auth=f"Bearer {cat}").status == 200
        # the web page takes Basic credentials of a token user and lists what that user may pull
        loc = server.request("POST", "/v2/team/app/blobs/uploads/?digest=" + sha(b"x"), b"x", auth=f"Bearer {writer}")
        assert loc.status == 201
        assert server.request("GET", "/", auth=_basic("reader", "bad")).status == 401
        r = server.request("GET", "/", auth=_basic("reader", "r-pass"))
        assert r.status == 200 and b"<h2>team/app</h2>" in r.body
        r = server.request("GET", "/")  # anonymous may pull public/* only
        assert r.status == 200 and b"team/app" not in r.body
    finally:
        server.stop()


def test_token_mode_with_skopeo(token_server: Server, layout: Path, tmp_path: Path) -> None:
    server = token_server
    try:
        dest = f"docker://{server.addr}/team/app:v1"
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "reader:r-pass", f"oci:{layout}:v1", dest)
        assert r.returncode != 0
        assert "denied" in r.stderr.lower() or "insufficient_scope" in r.stderr or "401" in r.stderr, r.stderr
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "writer:w-pass", f"oci:{layout}:v1", dest)
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", "--creds", "reader:r-pass", dest)
        assert r.returncode == 0, r.stderr
        # anonymous may pull public/* only
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "writer:w-pass", f"oci:{layout}:v1",
                   f"docker://{server.addr}/public/app:v1")
        assert r.returncode != 0  # writer has no push on public/*
        r = skopeo("inspect", "--tls-verify=false", "--no-creds", dest)
        assert r.returncode != 0
    finally:
        server.stop()
