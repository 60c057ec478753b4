"""The registry client's pure logic: X-Registry-Auth, WWW-Authenticate parsing, the token flows,
insecure registries, mirrors, platform choice, and the CLI's credential store."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sampan import errors
from sampan.cli.registry import CredentialStore, config_dir, registry_of, server_key
from sampan.distribution.auth import (
    Authorizer,
    Credentials,
    credentials_from_json,
    decode_registry_auth,
    encode_registry_auth,
    parse_challenges,
)
from sampan.distribution.http import RegistryClient, RegistryOptions
from sampan.distribution.mirrors import mirrors_for, parse_mirror
from sampan.distribution.pull import choose_platform


def test_x_registry_auth_round_trip_and_forms() -> None:
    creds = Credentials(username="alice", password="s3cret/+=", server_address="r:5000")
    assert decode_registry_auth(encode_registry_auth(creds)) == creds
    std = base64.b64encode(json.dumps({"username": "u", "password": "p"}).encode()).decode()
    assert decode_registry_auth(std) == Credentials("u", "p")
    packed = base64.b64encode(b"bob:pw:with:colons").decode()
    assert credentials_from_json({"auth": packed}) == Credentials("bob", "pw:with:colons")
    assert credentials_from_json({"IdentityToken": "tok"}).identity_token == "tok"
    assert decode_registry_auth("") == Credentials() and decode_registry_auth("e30=").anonymous
    with pytest.raises(errors.InvalidArgument, match="X-Registry-Auth"):
        decode_registry_auth("!!!not base64!!!")


def test_parse_challenges() -> None:
    [c] = parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                           'scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "registry.example",
                        "scope": "repository:a/b:pull,push"}
    found = parse_challenges('Basic realm="x y", Bearer realm="r\\"q"')
    assert [f.scheme for f in found] == ["basic", "bearer"] and found[1].params["realm"] == 'r"q'
    assert parse_challenges("") == []


class FakeTokenServer:
    def __init__(self, *, status: int = 200, refresh: str = "") -> None:
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []
        self.status = status
        self.refresh = refresh

    def __call__(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        self.calls.append((method, url, headers, body))
        doc = {"token": f"T{len(self.calls)}", "expires_in": 300}
        if self.refresh:
            doc["refresh_token"] = self.refresh
        return self.status, json.dumps(doc).encode()


CHALLENGE = 'Bearer realm="http://auth/token",service="reg"'


def test_bearer_with_basic_credentials_and_cache() -> None:
    fetch = FakeTokenServer()
    auth = Authorizer(Credentials("u", "p"), fetch)
    assert auth.header("reg", ["repository:a:pull"]) is None  # nothing known before a challenge
    assert auth.challenged("reg", CHALLENGE)
    assert auth.header("reg", ["repository:a:pull"]) == "Bearer T1"
    assert auth.header("reg", ["repository:a:pull"]) == "Bearer T1"  # cached
    assert auth.header("reg", ["repository:a:pull,push"]) == "Bearer T2"  # another scope
    method, url, headers, _ = fetch.calls[0]
    q = parse_qs(urlsplit(url).query)
    assert method == "GET" and q["service"] == ["reg"] and q["scope"] == ["repository:a:pull"]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    # the same challenge again means the token was refused: forget the tokens, try a fresh one
    # once; refused again (nothing cached any more): give up
    assert auth.challenged("reg", CHALLENGE)
    assert auth.header("reg", ["repository:a:pull"]) == "Bearer T3"
    assert auth.challenged("reg", CHALLENGE)  # T3 dropped
    assert not auth.challenged("reg", CHALLENGE)


def test_anonymous_identity_and_registry_tokens() -> None:
    fetch = FakeTokenServer()
    anon = Authorizer(Credentials(), fetch)
    anon.challenged("reg", CHALLENGE)
    assert anon.header("reg", ["repository:a:pull"]) == "Bearer T1"
    assert "Authorization" not in fetch.calls[0][2]

    fetch = FakeTokenServer()
    ident = Authorizer(Credentials(identity_token="refresh-1"), fetch)
    ident.challenged("reg", CHALLENGE)
    assert ident.header("reg", ["repository:a:pull"]) == "Bearer T1"
    method, _, headers, body = fetch.calls[0]
    form = parse_qs((body or b"").decode())
    assert method == "POST" and form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-1"]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"

    ready = Authorizer(Credentials(registry_token="RT"), FakeTokenServer())
    ready.challenged("reg", CHALLENGE)
    assert ready.header("reg", []) == "Bearer RT"


def test_basic_challenge_refusal_and_login_token() -> None:
    basic = Authorizer(Credentials("u", "p"), FakeTokenServer())
    assert basic.challenged("reg", 'Basic realm="r"')
    assert basic.header("reg", []) == Credentials("u", "p").basic()
    assert not basic.challenged("reg", 'Basic realm="r"')  # refused: do not loop
    assert Authorizer(Credentials(), FakeTokenServer()).challenged("reg", 'Basic realm="r"')
    assert not Authorizer(Credentials(), FakeTokenServer()).challenged("reg", "Negotiate")

    refused = Authorizer(Credentials("u", "bad"), FakeTokenServer(status=401))
    refused.challenged("reg", CHALLENGE)
    with pytest.raises(errors.Unauthorized, match="authentication failed"):
        refused.header("reg", ["repository:a:pull"])

    fetch = FakeTokenServer(refresh="offline-token")
    login = Authorizer(Credentials("u", "p"), fetch)
    login.challenged("reg", CHALLENGE)
    assert login.login_token("reg") == "offline-token"
    assert "offline_token=true" in fetch.calls[-1][1]


def test_insecure_registries_and_endpoints() -> None:
    client = RegistryClient(RegistryOptions(insecure=["10.1.0.0/16", "myreg:5000"]))
    assert client.is_insecure("127.0.0.1:5000") and client.is_insecure("[::1]:5000")
    assert client.is_insecure("localhost:5000") and client.is_insecure("10.1.2.3")
    assert client.is_insecure("myreg:5000") and not client.is_insecure("myreg:5001")
    assert not client.is_insecure("10.2.0.1:443")
    assert [(e.scheme, e.verify) for e in client.endpoints("127.0.0.1:5000")] == [("https", False), ("http", False)]
    assert [(e.scheme, e.verify) for e in client.endpoints("quay.io")] == [("https", True)]
    client.worked(client.endpoints("127.0.0.1:5000")[1])
    assert client.endpoints("127.0.0.1:5000")[0].scheme == "http"
    with pytest.raises(errors.InvalidArgument):
        RegistryOptions(insecure=["10.0.0.0/99"]).validate()
    with pytest.raises(errors.InvalidArgument, match="mirror"):
        RegistryOptions(mirrors=["ftp://x"]).validate()


def test_certs_dir_ca_is_loaded(tmp_path: Path) -> None:
    host = tmp_path / "reg.example:5000"
    host.mkdir()
    (host / "ca.crt").write_text("not a certificate")
    client = RegistryClient(RegistryOptions(certs_dir=tmp_path))
    with pytest.raises(errors.InvalidArgument, match=r"ca\.crt"):
        client.ssl_context("reg.example:5000", True)
    assert client.ssl_context("other:5000", True) is not None


def test_mirrors_for_any_registry() -> None:
    client = RegistryClient(RegistryOptions())
    mirrors = ["http://127.0.0.1:5001", "a.example=https://m.example", "https://a.example"]
    assert parse_mirror("a.example=https://m.example") == ("a.example", "https://m.example")
    assert [e.base for e in mirrors_for("b.example", mirrors, client)] == ["http://127.0.0.1:5001", "https://a.example"]
    assert [e.base for e in mirrors_for("a.example", mirrors, client)] == ["http://127.0.0.1:5001", "https://m.example"]


def test_choose_platform() -> None:
    index = {"manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "b" * 64,
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert choose_platform(index, "linux/amd64", what="x")["digest"].endswith("b" * 64)
    assert choose_platform(index, "linux/arm64/v8", what="x")["digest"].endswith("a" * 64)
    with pytest.raises(errors.NotFound, match="windows/amd64"):
        choose_platform(index, "windows/amd64", what="x")


def test_cli_credential_store(tmp_path: Path) -> None:
    assert config_dir({"SAMPAN_CONFIG": str(tmp_path / "s"), "DOCKER_CONFIG": "/x"}) == tmp_path / "s"
    assert config_dir({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path
    assert server_key("") == server_key("docker.io") == "https://index.docker.io/v1/"
    assert server_key("https://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    assert registry_of("busybox") == "https://index.docker.io/v1/"
    assert registry_of("localhost:5000/a/b:1") == "localhost:5000"

    store = CredentialStore(tmp_path / "cfg")
    assert store.get("r:1") == {}
    warning = store.store("r:1", "alice", "pw", "")
    assert "unencrypted" in warning
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.get("r:1") == {"username": "alice", "password": "pw", "serveraddress": "r:1"}
    store.store("r:2", "bob", "ignored", "identity")
    assert store.get("r:2")["identitytoken"] == "identity"
    assert json.loads(store.path.read_text())["auths"]["r:1"]["auth"] == base64.b64encode(b"alice:pw").decode()
    assert store.erase("r:1") and not store.erase("r:1")
    assert store.get("r:1") == {}


def test_cli_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    db = tmp_path / "helper.json"
    helper = bindir / "docker-credential-fake"
    helper.write_text(f"""#!/usr/bin/env python3
import json, sys
db = {str(db)!r}
try:
    data = json.load(open(db))
except FileNotFoundError:
    data = {{}}
action, payload = sys.argv[1], sys.stdin.read()
if action == "store":
    doc = json.loads(payload); data[doc["ServerURL"]] = doc
elif action == "get":
    if payload.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(data[payload.strip()]))
elif action == "erase":
    data.pop(payload.strip(), None)
json.dump(data, open(db, "w"))
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    store = CredentialStore(tmp_path / "cfg")
    store.save({"credsStore": "fake"})
    assert store.store("r:1", "alice", "pw", "") == ""
    assert "auth" not in json.loads(store.path.read_text())["auths"]["r:1"]
    assert store.get("r:1") == {"username": "alice", "password": "pw", "serveraddress": "r:1"}
    assert store.get("r:9") == {}
    assert store.erase("r:1") and store.get("r:1") == {}


def test_daemon_registry_settings(tmp_path: Path) -> None:
    from sampan.daemon import config as cfgmod
    from sampan.daemon.main import load_config
    from sampan.daemon.wiring import registry_options

    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({
        "registry-mirrors": ["http://127.0.0.1:5001", "quay.io=https://mirror.example"],
        "insecure-registries": ["10.0.0.0/8"], "max-concurrent-downloads": 5,
    }))
    cfg = load_config(["--config-file", str(path), "--max-concurrent-uploads", "2",
                       "--registry-certs-dir", str(tmp_path / "certs")])
    opts = registry_options(cfg)
    assert opts.mirrors == ["http://127.0.0.1:5001", "quay.io=https://mirror.example"]
    assert opts.insecure == ["10.0.0.0/8"] and opts.max_downloads == 5 and opts.max_uploads == 2
    assert opts.certs_dir == tmp_path / "certs"
    assert cfgmod.DaemonConfig().max_concurrent_downloads == 3
    path.write_text(json.dumps({"max-concurrent-downloads": "3"}))
    with pytest.raises(errors.InvalidConfig, match="an integer"):
        load_config(["--config-file", str(path)])
    path.write_text(json.dumps({"max-concurrent-downloads": 0}))
    with pytest.raises(errors.InvalidConfig, match="at least 1"):
        load_config(["--config-file", str(path)])


def test_pushed_manifest_is_dockers_byte_for_byte() -> None:
    from sampan.distribution.copy import Descriptor, SourceImage
    from sampan.distribution.push import manifest_for

    image = SourceImage(
        config=Descriptor("application/vnd.docker.container.image.v1+json", "sha256:" + "c" * 64, 1469),
        layers=[Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", "sha256:" + "d" * 64, 2)],
    )
    data, media_type = manifest_for(image, docker_types=True)
    assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert data.decode() == (
        '{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n'
        '   "config": {\n      "mediaType": "application/vnd.docker.container.image.v1+json",\n'
        f'      "size": 1469,\n      "digest": "sha256:{"c" * 64}"\n   }},\n'
        '   "layers": [\n      {\n         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",\n'
        f'         "size": 2,\n         "digest": "sha256:{"d" * 64}"\n      }}\n   ]\n}}'
    )
    assert manifest_for(image, docker_types=True) == (data, media_type)


def test_info_registry_config(tmp_path: Path) -> None:
    from sampan.api.handlers.distribution import registry_config

    class Svc:
        options = RegistryOptions(mirrors=["http://m:5001", "quay.io=https://q"], insecure=["10.0.0.0/8", "reg:5000"])

    doc = registry_config(Svc())  # type: ignore[arg-type]
    assert doc["InsecureRegistryCIDRs"] == ["::1/128", "127.0.0.0/8", "10.0.0.0/8"]
    assert doc["IndexConfigs"]["docker.io"]["Mirrors"] == ["http://m:5001"]
    assert doc["IndexConfigs"]["reg:5000"]["Secure"] is False
    assert doc["Mirrors"] == ["http://m:5001", "https://q"]
