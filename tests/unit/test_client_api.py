"""The Engine API client over the mock transport: paths, queries, bodies, errors back into the tree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sampan import errors
from sampan.client.client import Client, encode_query, from_daemon, quote
from sampan.client.testing import MockTransport
from sampan.client.transport import Request


def client_for(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[Client, MockTransport]:
    chunks = isinstance(body, list) and all(isinstance(b, bytes) for b in body) and body
    payload = body if isinstance(body, bytes) or chunks else json.dumps(body).encode()

    def handler(req: Request, data: bytes) -> tuple[int, dict[str, str], Any]:
        return status, headers or {}, payload

    transport = MockTransport(handler)
    return Client(transport), transport


def test_query_and_path_encoding() -> None:
    assert encode_query({"all": True, "digests": False, "x": None, "names": ["a b", "c/d"]}) == "?all=1&names=a%20b&names=c%2Fd"
    assert encode_query({}) == ""
    assert quote("127.0.0.1:5000/lab/api:1", path=True) == "127.0.0.1:5000/lab/api:1"
    assert quote("a b?#", path=True) == "a%20b%3F%23"


def test_images_sends_docker_filters() -> None:
    client, transport = client_for(200, [{"Id": "sha256:1"}])
    assert client.images(all=True, filters={"dangling": ["true"]}) == [{"Id": "sha256:1"}]
    req, _ = transport.requests[0]
    assert req.method == "GET"
    assert req.target == "/images/json?all=1&filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"


@pytest.mark.parametrize(
    "status,cls",
    [(400, errors.InvalidArgument), (401, errors.Unauthorized), (403, errors.PermissionDenied),
     (404, errors.NotFound), (409, errors.Conflict), (500, errors.Internal), (501, errors.NotImplementedFeature),
     (503, errors.Unavailable), (418, errors.Internal)],
)
def test_error_statuses_become_the_error_tree(status: int, cls: type[errors.SampanError]) -> None:
    client, _ = client_for(status, {"message": "No such image: nope:latest"})
    with pytest.raises(cls, match="No such image: nope:latest") as info:
        client.inspect_image("nope")
    assert from_daemon(info.value)


def test_error_without_json_body_uses_the_text_or_status() -> None:
    client, _ = client_for(500, b"plain failure\n")
    with pytest.raises(errors.Internal, match=r"^plain failure$"):
        client.version()
    client, _ = client_for(502, b"")
    with pytest.raises(errors.Internal, match="502"):
        client.version()


def test_tag_remove_prune_queries() -> None:
    client, transport = client_for(201, b"")
    client.tag_image("busybox", repo="localhost:5000/bb", tag="v1")
    assert transport.requests[-1][0].target == "/images/busybox/tag?repo=localhost%3A5000%2Fbb&tag=v1"
    client, transport = client_for(200, [{"Untagged": "busybox:latest"}])
    assert client.remove_image("busybox", force=True) == [{"Untagged": "busybox:latest"}]
    assert transport.requests[-1][0].target == "/images/busybox?force=1"
    assert transport.requests[-1][0].method == "DELETE"


def test_load_streams_messages_and_the_body() -> None:
    lines = [b'{"stream":"Loaded image: busybox:latest\\n"}\n', b"\n", b'{"status":"done"}\n']
    client, transport = client_for(200, lines)
    messages = list(client.load_images(iter([b"tar", b"data"]), quiet=True))
    assert messages == [{"stream": "Loaded image: busybox:latest\n"}, {"status": "done"}]
    req, body = transport.requests[0]
    assert body == b"tardata" and req.headers["Transfer-Encoding"] == "chunked"
    assert req.target == "/images/load?quiet=1"


def test_import_query_carries_changes_and_message() -> None:
    client, transport = client_for(200, [b'{"status":"sha256:abc"}\n'])
    list(client.import_image(b"x", repo="img:1", changes=["CMD [\"sh\"]", "ENV A=1"], message="m"))
    target = transport.requests[0][0].target
    assert target.startswith("/images/create?fromSrc=-&repo=img%3A1&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1")
    assert target.endswith("&message=m")


def test_save_single_and_many() -> None:
    client, transport = client_for(200, [b"tar-", b"bytes"])
    assert b"".join(client.save_images(["busybox"]).iter_raw()) == b"tar-bytes"
    client.save_images(["a", "b"])
    assert [r.target for r, _ in transport.requests] == ["/images/busybox/get", "/images/get?names=a&names=b"]


def test_api_version_prefix() -> None:
    transport = MockTransport(lambda req, data: (200, {}, b"{}"))
    Client(transport, api_version="1.44").version()
    assert transport.requests[0][0].target == "/v1.44/version"
