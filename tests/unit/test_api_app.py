"""The Engine API application over an in-memory image store: routes, version prefixes, headers,
errors and the JSON shapes, without a daemon process (tests/integration has the real thing).

One line per case, as podman's test/apiv2 tables: (method, path, status, check).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

pytest.importorskip("sampan.image.store")

from aiohttp.test_utils import TestClient, TestServer

from sampan import errors
from sampan.api.app import make_app
from sampan.api.services import Services
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from sampan.engine.system import SystemService
from sampan.image.schema import HistoryEntry, Image, ImagesUsage, ImageUsage

ID = "sha256:" + "ab" * 32
ID2 = "sha256:" + "cd" * 32


def image(id: str, tags: list[str], created: str, labels: dict[str, str] | None = None) -> Image:
    return Image(
        id=id,
        repo_tags=tags,
        repo_digests=[],
        config={
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "11" * 32]},
        },
        created=created,
        size=2_000_000,
        diff_ids=["sha256:" + "11" * 32],
        chain_ids=["sha256:" + "11" * 32],
    )


class FakeStore:
    """Just enough of ImageStore for the HTTP layer; names are tags or full IDs."""

    def __init__(self) -> None:
        self.images = {
            ID: image(ID, ["busybox:latest"], "2024-01-01T00:00:00Z", {"team": "a"}),
            ID2: image(ID2, [], "2024-06-01T00:00:00.5Z"),
        }

    def get(self, name: str) -> Image:
        for img in self.images.values():
            if name in (img.id, img.id[7:19]) or name in img.repo_tags or f"{name}:latest" in img.repo_tags:
                return img
        raise errors.NoSuchImage(name)

    def list(self) -> list[Image]:
        return list(self.images.values())

    def history(self, name: str) -> list[HistoryEntry]:
        if name == "boom":
            raise RuntimeError("a bug")
        img = self.get(name)
        return [HistoryEntry(img.id, 1704067200, "import", img.size, "", list(img.repo_tags))]

    def tag(self, name: str, new_reference: str) -> None:
        img = self.get(name)
        if ":" not in new_reference.rsplit("/", 1)[-1]:
            new_reference += ":latest"
        if new_reference.upper() != new_reference.lower() and new_reference != new_reference.lower():
            raise errors.InvalidReference(new_reference)
        img.repo_tags.append(new_reference)

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        img = self.get(name)
        tag = name if name in img.repo_tags else f"{name}:latest"
        if tag in img.repo_tags and len(img.repo_tags) > 1:
            img.repo_tags.remove(tag)
            return [{"Untagged": tag}]
        del self.images[img.id]
        return [*({"Untagged": t} for t in img.repo_tags), {"Deleted": img.id}]

    def prune(self, *, all: bool = False, filters: Any = None) -> tuple[list[dict[str, str]], int]:
        gone = [i for i in self.images.values() if all or not i.repo_tags]
        for i in gone:
            del self.images[i.id]
        return [{"Deleted": i.id} for i in gone], sum(i.size for i in gone)

    def import_rootfs(self, src: BinaryIO, *, reference: str | None = None, **kw: Any) -> Image:
        data = src.read()
        if not data:
            raise errors.InvalidArgument("empty archive")
        img = image("sha256:" + "ef" * 32, [reference] if reference else [], "2025-01-01T00:00:00Z")
        self.images[img.id] = img
        return img

    def disk_usage(self) -> ImagesUsage:
        imgs = list(self.images.values())
        return ImagesUsage(
            layers_size=sum(i.size for i in imgs),
            images=[ImageUsage(image=i, size=i.size, shared_size=0, unique_size=i.size) for i in imgs],
        )


def run(check: Callable[[TestClient[Any, Any]], Any], tmp_path: Path) -> Any:
    async def main() -> Any:
        bus = EventBus()
        images = ImageService(FakeStore(), bus)  # type: ignore[arg-type]
        system = SystemService(images, bus, daemon_id="id", data_root=tmp_path, exec_root=tmp_path,
                               storage_driver="overlay2")
        app = make_app(Services(images=images, system=system, events=bus))
        async with TestClient(TestServer(app)) as client:
            return await check(client)

    return asyncio.run(main())


Check = Callable[[Any], bool]

TABLE: list[tuple[str, str, int, Check]] = [
    ("GET", "/_ping", 200, lambda b: b == "OK"),
    ("HEAD", "/_ping", 200, lambda b: b == ""),
    ("GET", "/v1.24/_ping", 200, lambda b: b == "OK"),
    ("GET", "/v1.12/version", 400, lambda b: "is too old" in json.loads(b)["message"]),
    ("GET", "/v1.99/version", 400, lambda b: "is too new" in json.loads(b)["message"]),
    ("GET", "/v1.51/version", 200, lambda b: json.loads(b)["ApiVersion"] == "1.51"
        and json.loads(b)["MinAPIVersion"] == "1.24"
        and json.loads(b)["Components"][0]["Name"] == "Engine"
        and json.loads(b)["Platform"]["Name"] == "sampan"
        and json.loads(b)["GoVersion"].startswith("python3.")),
    ("GET", "/info", 200, lambda b: json.loads(b)["Images"] == 2
        and json.loads(b)["CgroupDriver"] == "cgroupfs"
        and json.loads(b)["DefaultRuntime"] == "sampan-runtime"
        and json.loads(b)["Driver"] == "overlay2"),
    ("GET", "/nope", 404, lambda b: json.loads(b) == {"message": "page not found"}),
    ("GET", "/v1.51/images/json", 200, lambda b: [i["Id"] for i in json.loads(b)] == [ID2, ID]),
    ("GET", "/v1.51/images/json?shared-size=1", 200, lambda b: [i["SharedSize"] for i in json.loads(b)] == [0, 0]),
    ("GET", "/v1.41/images/json?shared-size=1", 200, lambda b: [i["SharedSize"] for i in json.loads(b)] == [-1, -1]),
    ("GET", "/v1.43/images/json", 200, lambda b: "VirtualSize" in json.loads(b)[0]),
    ("GET", "/v1.44/images/json", 200, lambda b: "VirtualSize" not in json.loads(b)[0]),
    ("GET", '/images/json?filters={"dangling":["true"]}', 200, lambda b: [i["Id"] for i in json.loads(b)] == [ID2]),
    ("GET", '/images/json?filters={"dangling":{"false":true}}', 200, lambda b: [i["Id"] for i in json.loads(b)] == [ID]),
    ("GET", '/images/json?filters={"label":["team=a"]}', 200, lambda b: [i["Id"] for i in json.loads(b)] == [ID]),
    ("GET", '/images/json?filters={"reference":["busy*"]}', 200, lambda b: json.loads(b)[0]["RepoTags"] == ["busybox:latest"]),
    ("GET", '/images/json?filters={"before":["busybox"]}', 200, lambda b: json.loads(b) == []),
    ("GET", '/images/json?filters={"since":["busybox"]}', 200, lambda b: [i["Id"] for i in json.loads(b)] == [ID2]),
    ("GET", '/images/json?filters={"colour":["red"]}', 400, lambda b: "Invalid filter 'colour'" in b),
    ("GET", "/images/json?filters={", 400, lambda b: "invalid filter" in b),
    ("GET", "/images/busybox/json", 200, lambda b: json.loads(b)["Id"] == ID
        and json.loads(b)["RootFS"]["Type"] == "layers"
        and json.loads(b)["Config"]["Cmd"] == ["sh"]
        and json.loads(b)["GraphDriver"]["Name"] == "overlay2"),
    ("GET", "/v1.41/images/busybox/json", 200, lambda b: "ContainerConfig" in json.loads(b)),
    ("GET", "/images/nothere/json", 404, lambda b: json.loads(b) == {"message": "No such image: nothere"}),
    ("GET", "/images/boom/history", 500, lambda b: json.loads(b) == {"message": "internal error: RuntimeError: a bug"}),
    ("GET", "/images/busybox/history", 200, lambda b: json.loads(b)[0]["CreatedBy"] == "import"),
    ("POST", "/images/busybox/tag?repo=localhost:5000/a/b&tag=1", 201, lambda b: b == ""),
    ("POST", "/images/busybox/tag?tag=1", 400, lambda b: "repository name" in b),
    ("POST", "/images/nothere/tag?repo=x", 404, lambda b: "No such image" in b),
    ("DELETE", "/images/busybox", 200, lambda b: json.loads(b) == [{"Untagged": "busybox:latest"}, {"Deleted": ID}]),
    ("DELETE", "/images/nothere", 404, lambda b: "No such image" in b),
    ("POST", "/images/prune", 200, lambda b: json.loads(b) == {"ImagesDeleted": [{"Deleted": ID2}], "SpaceReclaimed": 2000000}),
    ("POST", '/images/prune?filters={"reference":["x"]}', 400, lambda b: "Invalid filter 'reference'" in b),
    ("GET", "/system/df", 200, lambda b: json.loads(b)["LayersSize"] == 4000000
        and len(json.loads(b)["Images"]) == 2 and json.loads(b)["Containers"] == []
        and json.loads(b)["Volumes"] == [] and json.loads(b)["BuildCache"] == []),
    ("GET", "/system/df?type=image", 200, lambda b: "Volumes" not in json.loads(b) and "Images" in json.loads(b)),
    ("GET", "/system/df?type=bogus", 400, lambda b: "invalid type" in b),
    ("POST", "/images/create?fromImage=busybox", 501, lambda b: "not implemented" in b),
    ("POST", "/images/create?fromSrc=http://127.0.0.1:9/y.tar", 200, lambda b: "127.0.0.1:9/y.tar" in b and "errorDetail" in b),
    ("GET", "/events?since=20&until=10", 400, lambda b: "cannot be after until time" in b),
    ("GET", '/events?until=1&filters={"colour":["red"]}', 400, lambda b: "invalid filter 'colour'" in b),
    ("PUT", "/_ping", 405, lambda b: "message" in json.loads(b)),
]


@pytest.mark.parametrize(("method", "path", "status", "check"), TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE])
def test_table(method: str, path: str, status: int, check: Check, tmp_path: Path) -> None:
    async def go(client: Any) -> None:
        resp = await client.request(method, path)
        body = await resp.text()
        assert resp.status == status, body
        assert resp.headers["Api-Version"] == "1.51"
        assert resp.headers["Server"].startswith("sampan/")
        assert resp.headers["Ostype"] == "linux"
        assert check(body), body

    run(go, tmp_path)


def test_ping_headers(tmp_path: Path) -> None:
    async def go(client: Any) -> dict[str, str]:
        resp = await client.head("/_ping")
        return dict(resp.headers)

    headers = run(go, tmp_path)
    assert headers["Builder-Version"] == "1"
    assert headers["Docker-Experimental"] == "false"
    assert headers["Swarm"] == "inactive"
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert headers["Pragma"] == "no-cache"


def test_import_streams_status_and_in_band_errors(tmp_path: Path) -> None:
    async def go(client: Any) -> tuple[list[Any], list[Any]]:
        ok = await client.post("/v1.51/images/create?fromSrc=-&repo=mine&tag=1", data=b"x" * 3_000_000)
        bad = await client.post("/v1.51/images/create?fromSrc=-&repo=mine", data=b"")
        assert ok.status == 200 and bad.status == 200
        return ([json.loads(x) for x in (await ok.text()).splitlines()],
                [json.loads(x) for x in (await bad.text()).splitlines()])

    ok, bad = run(go, tmp_path)
    assert ok == [{"status": "sha256:" + "ef" * 32}]
    assert bad == [{"errorDetail": {"message": "empty archive"}, "error": "empty archive"}]


def test_events_replay_with_since_and_until(tmp_path: Path) -> None:
    async def go(client: Any) -> list[Any]:
        await client.post("/images/busybox/tag?repo=again")
        await client.delete("/images/again")
        resp = await client.get(f"/events?since=0&until={time.time() + 0.3:.3f}")
        lines = [json.loads(x) for x in (await resp.text()).splitlines()]
        resp = await client.get('/events?since=0&until=1&filters={"event":["tag"]}')
        assert (await resp.text()) == ""
        return lines

    lines = run(go, tmp_path)
    assert [(e["Type"], e["Action"]) for e in lines] == [("image", "tag"), ("image", "untag")]
    assert lines[0]["Actor"]["Attributes"]["name"] == "again:latest"
    assert lines[0]["Actor"]["ID"] == ID


def test_events_follow_until_client_goes(tmp_path: Path) -> None:
    async def go(client: Any) -> Any:
        resp = await client.get('/events?filters={"type":["image"]}')
        assert resp.status == 200
        await client.post("/images/busybox/tag?repo=live")
        line = await asyncio.wait_for(resp.content.readline(), 5)
        resp.close()
        return json.loads(line)

    event = run(go, tmp_path)
    assert event["Action"] == "tag" and event["Actor"]["Attributes"]["name"] == "live:latest"
