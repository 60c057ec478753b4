"""Container files through the Engine API against a real sampand: archive HEAD/GET/PUT
(docker cp both ways) resolved inside the container root, safe extraction, export, changes,
commit (the image runs and carries the change)."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile

import pytest

from sampan.storage.testing import build_tar
from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401
from tests.integration.hijack_client import demux_all

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


@pytest.fixture(autouse=True)
def _remove_images(api: Api, leak_check: None) -> object:  # noqa: F811
    yield
    api.remove_all()
    for img in api.call("GET", "/images/json"):
        if any(t.startswith("w2b-") for t in img.get("RepoTags") or []):
            api.d.request("DELETE", f"/images/{img['Id']}?force=1")


def _stat(headers: dict[str, str]) -> dict[str, object]:
    return dict(json.loads(base64.b64decode(headers["x-docker-container-path-stat"])))


def test_archive_head_get(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "mkdir -p /data/sub; echo hi > /data/sub/f; ln -s /data /link; sleep 60"])
    api.until(lambda: api.d.request("HEAD", f"/containers/{cid}/archive?path=/link").status == 200)
    r = api.d.request("HEAD", f"/containers/{cid}/archive?path=/data/sub/f")
    st = _stat(r.headers)
    assert st["name"] == "f" and st["size"] == 3 and int(str(st["mode"])) & 0o777 == 0o644
    link = _stat(api.d.request("HEAD", f"/containers/{cid}/archive?path=/link").headers)
    assert link["linkTarget"] == "/data" and int(str(link["mode"])) & (1 << 27)
    r = api.d.request("GET", f"/containers/{cid}/archive?path=/data")
    assert r.status == 200 and r.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        names = sorted(tar.getnames())
        assert names == ["data", "data/sub", "data/sub/f"]
        f = tar.extractfile("data/sub/f")
        assert f is not None and f.read() == b"hi\n"
    assert api.d.request("HEAD", f"/containers/{cid}/archive?path=/nope").status == 404
    assert api.d.request("GET", f"/containers/{cid}/archive").status == 400


def test_archive_put_extracts_inside_the_container_only(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "ln -s / /escape; sleep 60"])
    api.until(lambda: api.d.request("HEAD", f"/containers/{cid}/archive?path=/escape").status == 200)
    tar = build_tar({"hello.txt": b"from host\n", "dir/": None})
    r = api.d.request("PUT", f"/containers/{cid}/archive?path=/tmp", tar,
                      headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, r.body
    got = api.d.request("GET", f"/containers/{cid}/archive?path=/tmp/hello.txt")
    with tarfile.open(fileobj=io.BytesIO(got.body)) as t:
        f = t.extractfile("hello.txt")
        assert f is not None and f.read() == b"from host\n"
    # a symlink to / inside the container resolves to the container's root, not the host's
    marker = f"w2b-marker-{os.getpid()}"
    tar = build_tar({marker: b"x"})
    r = api.d.request("PUT", f"/containers/{cid}/archive?path=/escape/tmp", tar,
                      headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    assert not os.path.exists(f"/tmp/{marker}")
    # an entry that climbs out is refused
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as t:
        info = tarfile.TarInfo("../../../../../../tmp/" + marker + "-2")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    r = api.d.request("PUT", f"/containers/{cid}/archive?path=/tmp", evil.getvalue(),
                      headers={"Content-Type": "application/x-tar"})
    assert r.status == 400
    assert not os.path.exists(f"/tmp/{marker}-2")
    assert api.d.request("PUT", f"/containers/{cid}/archive?path=/nope", tar).status == 404


def test_changes_export_commit(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "echo new > /added; rm /etc/hostname.orig 2>/dev/null; rm -f /bin/vi; echo m >> /etc/profile; sleep 60"])
    api.until(lambda: any(c["Path"] == "/added" for c in api.call("GET", f"/containers/{cid}/changes") or []))
    changes = {c["Path"]: c["Kind"] for c in api.call("GET", f"/containers/{cid}/changes")}
    assert changes["/added"] == 1
    assert changes["/bin/vi"] == 2
    assert changes["/etc"] == 0
    r = api.d.request("GET", f"/containers/{cid}/export")
    assert r.status == 200
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        names = set(tar.getnames())
    assert "added" in names and "bin/sh" in names and "bin/vi" not in names
    res = api.call("POST", f"/commit?container={cid}&repo=w2b-commit&tag=v1&comment=hello&author=me"
                   "&changes=ENV%20FOO%3Dbar", {"Cmd": ["cat", "/added"]}, status=201)
    image = api.call("GET", "/images/w2b-commit:v1/json", status=200)
    assert image["Id"] == res["Id"] and image["Comment"] == "hello" and image["Author"] == "me"
    assert "FOO=bar" in image["Config"]["Env"]
    assert api.inspect(cid)["State"]["Running"] is True  # paused and resumed around the commit
    out = api.run(["sh", "-c", "cat /added; test -e /bin/vi || echo vi-gone"], Image="w2b-commit:v1")
    api.wait(out)
    assert api.output(out) == "new\nvi-gone\n"
    default = api.create(None, Image="w2b-commit:v1")
    api.call("POST", f"/containers/{default}/start", status=204)
    api.wait(default)
    body = api.d.request("GET", f"/containers/{default}/logs?stdout=1").body
    assert demux_all(body) == {1: b"new\n"}
