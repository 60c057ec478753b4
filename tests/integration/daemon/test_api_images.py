"""The Engine API of a real sampand over its unix socket: table tests, then image round trips
(import, save, remove, load, tag, prune) with the busybox rootfs, and the events they make."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.daemon_fixture import Daemon, Response, cleanup, daemon, new_daemon  # noqa: F401

pytestmark = pytest.mark.root

Check = Callable[[Response], bool]

TABLE: list[tuple[str, str, int, Check]] = [
    ("GET", "/_ping", 200, lambda r: r.body == b"OK" and r.headers["swarm"] == "inactive"),
    ("HEAD", "/_ping", 200, lambda r: r.body == b"" and r.headers["builder-version"] == "1"
        and r.headers["docker-experimental"] == "false" and r.headers["pragma"] == "no-cache"
        and r.headers["cache-control"] == "no-cache, no-store, must-revalidate"),
    ("GET", "/v1.24/version", 200, lambda r: r.json()["ApiVersion"] == "1.51"),
    ("GET", "/v1.23/version", 400, lambda r: "is too old" in r.json()["message"]),
    ("GET", "/v1.52/version", 400, lambda r: "is too new" in r.json()["message"]),
    ("GET", "/version", 200, lambda r: r.json()["Components"][0]["Details"]["MinAPIVersion"] == "1.24"
        and r.json()["Os"] == "linux" and r.json()["KernelVersion"]),
    ("GET", "/v1.51/info", 200, lambda r: r.json()["Images"] == 0 and r.json()["OSType"] == "linux"
        and r.json()["CgroupVersion"] in ("1", "2") and r.json()["NCPU"] >= 1
        and r.json()["MemTotal"] > 0 and r.json()["LoggingDriver"] == "json-file"
        and r.json()["Driver"] == "overlay"),
    ("GET", "/v1.51/no/such/route", 404, lambda r: r.json() == {"message": "page not found"}),
    ("GET", "/v1.51/images/json", 200, lambda r: r.json() == []),
    ("GET", "/v1.51/images/busybox/json", 404, lambda r: r.json() == {"message": "No such image: busybox"}),
    ("GET", "/v1.51/images/busybox/history", 404, lambda r: "No such image" in r.json()["message"]),
    ("GET", "/v1.51/images/busybox/get", 404, lambda r: "No such image" in r.json()["message"]),
    ("GET", "/v1.51/images/get?names=a&names=b", 404, lambda r: "No such image" in r.json()["message"]),
    ("DELETE", "/v1.51/images/busybox", 404, lambda r: "No such image" in r.json()["message"]),
    ("POST", "/v1.51/images/busybox/tag?repo=x", 404, lambda r: "No such image" in r.json()["message"]),
    ("GET", "/v1.51/images/UPPER/json", 400, lambda r: "invalid reference format" in r.json()["message"]),
    ("POST", "/v1.51/images/prune", 200, lambda r: r.json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}),
    ("GET", "/v1.51/system/df", 200, lambda r: r.json()["LayersSize"] == 0 and r.json()["Images"] == []),
    ("GET", '/v1.51/images/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D', 400, lambda r: "Invalid filter 'nope'" in r.json()["message"]),
]


@pytest.fixture(scope="module")
def empty_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the read-only table (its store stays empty)."""
    d = new_daemon(tmp_path_factory.mktemp("table"))
    try:
        d.start()
        yield d
    finally:
        cleanup(d)


@pytest.mark.parametrize(("method", "path", "status", "check"), TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE])
def test_table(empty_daemon: Daemon, method: str, path: str, status: int, check: Check) -> None:
    r = empty_daemon.request(method, path)
    assert r.status == status, r.body
    assert r.headers["api-version"] == "1.51"
    assert r.headers["server"].startswith("sampan/")
    assert r.headers["ostype"] == "linux"
    assert check(r), r.body


def import_busybox(daemon: Daemon, tar: Path, query: str = "repo=busybox&tag=latest") -> str:  # noqa: F811
    with open(tar, "rb") as f:
        r = daemon.request("POST", f"/v1.51/images/create?fromSrc=-&{query}", body=f,
                           headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    lines = r.lines()
    assert "error" not in lines[-1], lines
    image_id: str = lines[-1]["status"]
    assert image_id.startswith("sha256:")
    return image_id


def test_import_inspect_history_tag_save_remove_load(daemon: Daemon, busybox_rootfs_tar: Path) -> None:  # noqa: F811
    changes = "&" + urlencode([("changes", c) for c in ['CMD ["sh"]', "ENV A=1", "LABEL team=core"]])
    image_id = import_busybox(daemon, busybox_rootfs_tar, "repo=busybox&tag=latest&message=hi" + changes)

    inspect = daemon.request("GET", "/v1.51/images/busybox/json").json()
    assert inspect["Id"] == image_id
    assert inspect["RepoTags"] == ["busybox:latest"]
    assert inspect["Config"]["Cmd"] == ["sh"] and "A=1" in inspect["Config"]["Env"]
    assert inspect["Config"]["Labels"] == {"team": "core"}
    assert inspect["Comment"] == "hi"
    assert inspect["RootFS"]["Type"] == "layers" and len(inspect["RootFS"]["Layers"]) == 1
    assert inspect["Os"] == "linux" and inspect["Size"] > 1_000_000
    assert "VirtualSize" not in inspect and "VirtualSize" in daemon.request("GET", "/v1.43/images/busybox/json").json()
    assert daemon.request("GET", f"/images/{image_id[7:19]}/json").json()["Id"] == image_id

    history = daemon.request("GET", "/v1.51/images/busybox/history").json()
    assert history[0]["Id"] == image_id and history[0]["Tags"] == ["busybox:latest"]

    assert daemon.request("POST", "/v1.51/images/busybox/tag?repo=localhost:5000/team/bb&tag=1").status == 201
    listed = daemon.request("GET", "/v1.51/images/json").json()
    assert [sorted(i["RepoTags"]) for i in listed] == [["busybox:latest", "localhost:5000/team/bb:1"]]
    assert listed[0]["Labels"] == {"team": "core"} and listed[0]["Containers"] == -1
    by_ref = daemon.request("GET", '/v1.51/images/json?filters=' + quote('{"reference":["localhost:5000/*/bb"]}')).json()
    assert by_ref[0]["RepoTags"] == ["localhost:5000/team/bb:1"]
    assert daemon.request("GET", '/v1.51/images/json?filters=' + quote('{"label":["team=other"]}')).json() == []
    assert daemon.request("GET", "/v1.51/images/localhost:5000/team/bb:1/json").json()["Id"] == image_id

    saved = daemon.request("GET", "/v1.51/images/get?names=busybox&names=localhost:5000/team/bb:1")
    assert saved.status == 200 and saved.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(saved.body)) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert "index.json" in names and "oci-layout" in names
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "localhost:5000/team/bb:1"]
    one = daemon.request("GET", "/v1.51/images/busybox/get")
    assert one.status == 200 and len(one.body) > 1_000_000

    removed = daemon.request("DELETE", "/v1.51/images/localhost:5000/team/bb:1").json()
    assert removed == [{"Untagged": "localhost:5000/team/bb:1"}]
    removed = daemon.request("DELETE", "/v1.51/images/busybox").json()
    assert {"Untagged": "busybox:latest"} in removed and {"Deleted": image_id} in removed
    assert daemon.request("GET", "/v1.51/images/json").json() == []

    r = daemon.request("POST", "/v1.51/images/load?quiet=0", body=saved.body,
                       headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    streams = [m["stream"] for m in r.lines() if "stream" in m]
    assert "Loaded image: busybox:latest\n" in streams
    assert "Loaded image: localhost:5000/team/bb:1\n" in streams
    assert daemon.request("GET", "/v1.51/images/busybox/json").json()["Id"] == image_id  # same ID

    df = daemon.request("GET", "/v1.51/system/df").json()
    assert df["LayersSize"] > 1_000_000 and df["Images"][0]["Id"] == image_id
    assert df["Images"][0]["Containers"] == 0 and df["Containers"] == [] and df["Volumes"] == []

    # prune: nothing dangling; with dangling=false (docker image prune -a) the unused image goes
    assert daemon.request("POST", "/v1.51/images/prune").json()["ImagesDeleted"] is None
    pruned = daemon.request("POST", '/v1.51/images/prune?filters=' + quote('{"dangling":{"false":true}}')).json()
    assert {"Deleted": image_id} in pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] > 0
    assert daemon.request("GET", "/v1.51/images/json").json() == []
    assert list((daemon.data_root / "tmp").iterdir()) == []

    events = daemon.request("GET", f"/v1.51/events?since=0&until={time.time():.3f}").lines()
    actions = [e["Action"] for e in events if e["Type"] == "image"]
    for action in ("import", "tag", "save", "untag", "delete", "load", "prune"):
        assert action in actions, actions
    tag = next(e for e in events if e["Action"] == "tag")
    assert tag["Actor"] == {"ID": image_id, "Attributes": {"name": "localhost:5000/team/bb:1", "team": "core"}}
    assert tag["status"] == "tag" and tag["id"] == image_id and tag["timeNano"] // 10**9 == tag["time"]
    query = urlencode({"since": "0", "until": f"{time.time():.3f}", "filters": '{"event":["tag"]}'})
    only_tags = daemon.request("GET", f"/v1.51/events?{query}").lines()
    assert [e["Action"] for e in only_tags] == ["tag"]


def test_in_band_errors_after_the_200(daemon: Daemon) -> None:  # noqa: F811
    r = daemon.request("POST", "/v1.51/images/load", body=b"this is not a tar archive" * 100,
                       headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    last = r.lines()[-1]
    assert last["error"] and last["errorDetail"]["message"] == last["error"]
    r = daemon.request("POST", "/v1.51/images/create?fromSrc=-&repo=x", body=b"\0" * 100)
    assert r.status == 200 and "error" in r.lines()[-1]
    r = daemon.request("POST", "/v1.51/images/create?fromSrc=-&repo=BAD", body=b"\0" * 1024)
    assert "invalid reference format" in r.lines()[-1]["error"]
    assert daemon.request("GET", "/v1.51/images/json").json() == []
    assert list((daemon.data_root / "tmp").iterdir()) == []


def test_event_stream_follows_live(daemon: Daemon, busybox_rootfs_tar: Path) -> None:  # noqa: F811
    conn = daemon.connection(timeout=20)
    conn.request("GET", "/v1.51/events?filters=" + quote('{"type":["image"],"event":["import"]}'))
    resp = conn.getresponse()
    assert resp.status == 200
    image_id = import_busybox(daemon, busybox_rootfs_tar)
    event: dict[str, Any] = json.loads(resp.readline())
    conn.close()
    assert event["Action"] == "import" and event["Actor"]["ID"] == image_id


def test_loop_stays_responsive_during_a_large_import(daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    """A 64 MiB import runs in a worker thread: /_ping answers meanwhile."""
    import os
    import threading

    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as tf:
        info = tarfile.TarInfo("blob")
        info.size = 64 << 20
        tf.addfile(info, io.BytesIO(os.urandom(info.size)))
    result: dict[str, Response] = {}

    def run() -> None:
        with open(big, "rb") as f:
            result["r"] = daemon.request("POST", "/v1.51/images/create?fromSrc=-&repo=big", body=f)

    t = threading.Thread(target=run)
    t.start()
    pings = []
    while t.is_alive():
        start = time.monotonic()
        assert daemon.request("GET", "/_ping", timeout=5).status == 200
        pings.append(time.monotonic() - start)
        time.sleep(0.02)
    t.join()
    assert "status" in result["r"].lines()[-1]
    assert max(pings) < 1.0, pings
