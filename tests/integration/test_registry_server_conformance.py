"""Every endpoint and error of the OCI Distribution Spec 1.1 against a real ``sampan registry serve``,
grouped as the OCI conformance suite's workflows: pull, push, content discovery, content management.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import (
    EMPTY,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Server,
    sha,
    start_server,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MISSING = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("registry") / "storage")
    try:
        yield server
    finally:
        server.stop()


# ================================================================ pull


def test_base_endpoint(reg: Server) -> None:
    r = reg.request("GET", "/v2/")
    assert r.status == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_pull_blob_get_head_range(reg: Server) -> None:
    data = bytes(range(256)) * 40
    digest = reg.push_blob("pull/blob", data)
    r = reg.request("GET", f"/v2/pull/blob/blobs/{digest}")
    assert (r.status, r.body, r.headers["docker-content-digest"]) == (200, data, digest)
    r = reg.request("HEAD", f"/v2/pull/blob/blobs/{digest}")
    assert (r.status, r.body, r.headers["content-length"]) == (200, b"", str(len(data)))
    r = reg.request("GET", f"/v2/pull/blob/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert (r.status, r.body) == (206, data[100:200])
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = reg.request("GET", f"/v2/pull/blob/blobs/{digest}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status == 416


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"/v2/pull/blob/blobs/{MISSING}", 404, "BLOB_UNKNOWN"),
        ("/v2/pull/blob/blobs/sha256:nothex", 400, "DIGEST_INVALID"),
        ("/v2/pull/blob/manifests/nosuchtag", 404, "MANIFEST_UNKNOWN"),
        (f"/v2/pull/blob/manifests/{MISSING}", 404, "MANIFEST_UNKNOWN"),
        ("/v2/pull/blob/manifests/.INVALID_MANIFEST_NAME", 404, "MANIFEST_UNKNOWN"),
        ("/v2/Bad_Name/manifests/latest", 400, "NAME_INVALID"),
        ("/v2/a/../b/blobs/uploads/", 400, "NAME_INVALID"),
    ],
)
def test_pull_errors(reg: Server, path: str, status: int, code: str) -> None:
    r = reg.request("GET", path)
    assert r.status == status, r.body
    assert r.codes() == [code]
    assert r.json()["errors"][0]["message"]


def test_pull_manifest_by_tag_and_digest(reg: Server) -> None:
    digest, doc = reg.push_image("pull/image", "v1", [b"layer-one"])
    for ref in ("v1", digest):
        r = reg.request("GET", f"/v2/pull/image/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == digest
        assert sha(r.body) == digest and json.loads(r.body) == doc
        h = reg.request("HEAD", f"/v2/pull/image/manifests/{ref}")
        assert (h.status, h.body, h.headers["content-length"]) == (200, b"", str(len(r.body)))
        assert h.headers["docker-content-digest"] == digest


def test_pull_index_negotiation(reg: Server) -> None:
    amd, _ = reg.push_image("pull/multi", "amd64", [b"amd64 layer"])
    arm, _ = reg.push_image("pull/multi", "arm64", [b"arm64 layer"])
    size = lambda d: len(reg.request("GET", f"/v2/pull/multi/manifests/{d}").body)  # noqa: E731
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": size(arm), "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": size(amd), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    r = reg.push_manifest("pull/multi", "latest", index, OCI_INDEX)
    assert r.status == 201, r.body
    r = reg.request("GET", "/v2/pull/multi/manifests/latest", headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    assert r.headers["content-type"] == OCI_INDEX
    r = reg.request("GET", "/v2/pull/multi/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert (r.headers["content-type"], r.headers["docker-content-digest"]) == (OCI_MANIFEST, amd)


# ================================================================ push


def test_push_upload_session_headers(reg: Server) -> None:
    r = reg.request("POST", "/v2/push/a/blobs/uploads/", b"")
    assert r.status == 202
    assert r.headers["location"].startswith("/v2/push/a/blobs/uploads/")
    assert r.headers["docker-upload-uuid"] in r.headers["location"]
    assert r.headers["range"] == "0-0"


def test_push_monolithic_post(reg: Server) -> None:
    data = b"monolithic"
    r = reg.request("POST", f"/v2/push/a/blobs/uploads/?digest={sha(data)}", data)
    assert r.status == 201
    assert r.headers["location"] == f"/v2/push/a/blobs/{sha(data)}"
    assert r.headers["docker-content-digest"] == sha(data)
    assert reg.request("HEAD", r.headers["location"]).status == 200
    r = reg.request("POST", f"/v2/push/a/blobs/uploads/?digest={MISSING}", b"other bytes")
    assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])


def test_push_monolithic_put(reg: Server) -> None:
    data = b"post then put"
    loc = reg.request("POST", "/v2/push/a/blobs/uploads/", b"").headers["location"]
    r = reg.request("PUT", f"{loc}?digest={sha(data)}", data, {"Content-Type": "application/octet-stream"})
    assert (r.status, r.headers["docker-content-digest"]) == (201, sha(data))
    assert reg.request("GET", f"/v2/push/a/blobs/{sha(data)}").body == data


def test_push_chunked(reg: Server) -> None:
    data = b"0123456789" * 1000
    loc = reg.request("POST", "/v2/push/chunks/blobs/uploads/", b"").headers["location"]
    r = reg.request("PATCH", loc, data[:4000], {"Content-Range": "0-3999"})
    assert (r.status, r.headers["range"]) == (202, "0-3999")
    # out of order: starts past the end of what was received
    r = reg.request("PATCH", loc, data[5000:6000], {"Content-Range": "5000-5999"})
    assert (r.status, r.headers["range"], r.headers["location"]) == (416, "0-3999", loc)
    # a range whose length differs from the body
    r = reg.request("PATCH", loc, data[4000:4010], {"Content-Range": "4000-4999"})
    assert r.status == 416
    r = reg.request("PATCH", loc, data[4000:9000], {"Content-Range": "4000-8999"})
    assert (r.status, r.headers["range"]) == (202, "0-8999")
    r = reg.request("GET", loc)
    assert (r.status, r.headers["range"]) == (204, "0-8999")
    r = reg.request("PUT", f"{loc}?digest={sha(data)}", data[9000:], {"Content-Range": "9000-9999"})
    assert r.status == 201, r.body
    assert reg.request("GET", f"/v2/push/chunks/blobs/{sha(data)}").body == data
    # the finished session is gone
    assert reg.request("GET", loc).codes() == ["BLOB_UPLOAD_UNKNOWN"]


def test_push_chunked_streamed_without_content_range(reg: Server) -> None:
    data = b"streamed" * 500
    loc = reg.request("POST", "/v2/push/chunks/blobs/uploads/", b"").headers["location"]
    assert reg.request("PATCH", loc, data[:1000]).status == 202
    assert reg.request("PATCH", loc, data[1000:]).status == 202
    assert reg.request("PUT", f"{loc}?digest={sha(data)}", b"").status == 201


@pytest.mark.parametrize(
    ("method", "query", "status", "code"),
    [
        ("PUT", "", 400, "DIGEST_INVALID"),
        ("PUT", f"?digest={MISSING}", 400, "DIGEST_INVALID"),
        ("PUT", "?digest=sha256:xyz", 400, "DIGEST_INVALID"),
    ],
)
def test_push_finish_errors(reg: Server, method: str, query: str, status: int, code: str) -> None:
    loc = reg.request("POST", "/v2/push/bad/blobs/uploads/", b"").headers["location"]
    r = reg.request(method, f"{loc}{query}", b"data")
    assert (r.status, r.codes()) == (status, [code])


def test_push_cancel_and_unknown_sessions(reg: Server) -> None:
    loc = reg.request("POST", "/v2/push/cancel/blobs/uploads/", b"").headers["location"]
    assert reg.request("DELETE", loc).status == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = reg.request(method, loc, b"" if method in ("PATCH", "PUT") else None)
        assert (r.status, r.codes()) == (404, ["BLOB_UPLOAD_UNKNOWN"]), method
    r = reg.request("PATCH", "/v2/push/cancel/blobs/uploads/not-a-session", b"x")
    assert (r.status, r.codes()) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    # a session belongs to its repository
    loc = reg.request("POST", "/v2/push/cancel/blobs/uploads/", b"").headers["location"]
    other = loc.replace("/push/cancel/", "/push/other/")
    assert reg.request("GET", other).codes() == ["BLOB_UPLOAD_UNKNOWN"]


def test_push_cross_repository_mount(reg: Server) -> None:
    data = b"mount me"
    digest = reg.push_blob("push/source", data)
    assert reg.request("HEAD", f"/v2/push/dest/blobs/{digest}").status == 404
    r = reg.request("POST", f"/v2/push/dest/blobs/uploads/?mount={digest}&from=push/source", b"")
    assert (r.status, r.headers["location"], r.headers["docker-content-digest"]) == (
        201, f"/v2/push/dest/blobs/{digest}", digest)
    assert reg.request("GET", f"/v2/push/dest/blobs/{digest}").body == data
    # absent from the source: falls back to an upload session
    r = reg.request("POST", f"/v2/push/dest2/blobs/uploads/?mount={MISSING}&from=push/source", b"")
    assert r.status == 202 and "/blobs/uploads/" in r.headers["location"]
    r = reg.request("POST", f"/v2/push/dest3/blobs/uploads/?mount={digest}&from=push/dest2", b"")
    assert r.status == 202
    # without from: mounted from wherever the registry has it
    r = reg.request("POST", f"/v2/push/dest4/blobs/uploads/?mount={digest}", b"")
    assert r.status == 201


def test_push_manifest_by_tag_and_digest(reg: Server) -> None:
    digest, doc = reg.push_image("push/img", "v1", [b"l1", b"l2"])
    body = json.dumps(doc).encode()
    assert digest == sha(body)
    r = reg.request("PUT", f"/v2/push/img/manifests/{digest}", body, {"Content-Type": OCI_MANIFEST})
    assert (r.status, r.headers["location"]) == (201, f"/v2/push/img/manifests/{digest}")
    assert r.headers["docker-content-digest"] == digest


def test_push_docker_schema2_manifest(reg: Server) -> None:
    cfg = reg.push_blob("push/docker", b'{"architecture":"amd64","os":"linux"}')
    layer = reg.push_blob("push/docker", b"docker layer")
    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
           "config": {"mediaType": DOCKER_CONFIG, "digest": cfg, "size": 37},
           "layers": [{"mediaType": DOCKER_LAYER, "digest": layer, "size": 12}]}
    assert reg.push_manifest("push/docker", "latest", doc, DOCKER_MANIFEST).status == 201
    r = reg.request("GET", "/v2/push/docker/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["content-type"] == DOCKER_MANIFEST


def _manifest(cfg: str, layers: list[str]) -> dict[str, object]:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cfg, "size": 2},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d, "size": 1} for d in layers]}


def test_push_manifest_errors(reg: Server) -> None:
    cfg = reg.push_blob("push/bad", b"{}")
    r = reg.push_manifest("push/bad", "t", _manifest(cfg, [MISSING]))
    assert (r.status, r.codes()) == (400, ["MANIFEST_BLOB_UNKNOWN"])
    assert r.json()["errors"][0]["detail"] == {"digest": MISSING}
    r = reg.push_manifest("push/bad", "t", _manifest(MISSING, [MISSING]))
    assert r.codes() == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    r = reg.request("PUT", "/v2/push/bad/manifests/t", b"{not json", {"Content-Type": OCI_MANIFEST})
    assert (r.status, r.codes()) == (400, ["MANIFEST_INVALID"])
    r = reg.push_manifest("push/bad", "t", {"schemaVersion": 1})
    assert r.codes() == ["MANIFEST_INVALID"]
    r = reg.push_manifest("push/bad", "t", _manifest(cfg, []), OCI_INDEX)
    assert r.codes() == ["MANIFEST_INVALID"]  # mediaType differs from Content-Type
    r = reg.push_manifest("push/bad", MISSING, _manifest(cfg, []))
    assert (r.status, r.codes()) == (400, ["DIGEST_INVALID"])
    r = reg.push_manifest("push/bad", "bad:tag", _manifest(cfg, []))
    assert r.status in (400, 404)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": MISSING, "size": 10}]}
    assert reg.push_manifest("push/bad", "i", index, OCI_INDEX).codes() == ["MANIFEST_BLOB_UNKNOWN"]
    # a blob of another repository is not visible here
    other = reg.push_blob("push/elsewhere", b"private layer")
    assert reg.push_manifest("push/bad", "t", _manifest(cfg, [other])).codes() == ["MANIFEST_BLOB_UNKNOWN"]


def test_push_manifest_with_subject_answers_oci_subject(reg: Server) -> None:
    subject, _ = reg.push_image("push/subj", "v1", [b"base"])
    empty = reg.push_blob("push/subj", b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
           "config": {"mediaType": EMPTY, "digest": empty, "size": 2}, "layers": [],
           "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 10}}
    body = json.dumps(doc).encode()
    r = reg.request("PUT", f"/v2/push/subj/manifests/{sha(body)}", body, {"Content-Type": OCI_MANIFEST})
    assert (r.status, r.headers["oci-subject"]) == (201, subject)


# ================================================================ content discovery


def test_tags_list_and_pagination(reg: Server) -> None:
    for tag in ("v3", "v1", "latest", "v2"):
        reg.push_image("disc/tags", tag, [b"same layer"])
    r = reg.request("GET", "/v2/disc/tags/tags/list")
    assert r.json() == {"name": "disc/tags", "tags": ["latest", "v1", "v2", "v3"]}
    assert "link" not in r.headers
    r = reg.request("GET", "/v2/disc/tags/tags/list?n=2")
    assert r.json()["tags"] == ["latest", "v1"]
    assert r.headers["link"] == '</v2/disc/tags/tags/list?n=2&last=v1>; rel="next"'
    r = reg.request("GET", "/v2/disc/tags/tags/list?n=2&last=v1")
    assert r.json()["tags"] == ["v2", "v3"] and "link" not in r.headers
    assert reg.request("GET", "/v2/disc/tags/tags/list?last=v2").json()["tags"] == ["v3"]
    assert reg.request("GET", "/v2/disc/tags/tags/list?n=0").json()["tags"] == []
    assert reg.request("GET", "/v2/disc/tags/tags/list?n=x").status == 400
    r = reg.request("GET", "/v2/disc/nosuchrepo/tags/list")
    assert (r.status, r.codes()) == (404, ["NAME_UNKNOWN"])


def test_catalog_pagination(reg: Server) -> None:
    for name in ("disc/cat-b", "disc/cat-a", "disc/cat-c"):
        reg.push_blob(name, b"catalog")
    everything = reg.request("GET", "/v2/_catalog").json()["repositories"]
    assert everything == sorted(everything)
    assert {"disc/cat-a", "disc/cat-b", "disc/cat-c"} <= set(everything)
    seen, url = [], "/v2/_catalog?n=2"
    while url:
        r = reg.request("GET", url)
        assert len(r.json()["repositories"]) <= 2
        seen += r.json()["repositories"]
        url = r.headers.get("link", "").partition("<")[2].partition(">")[0]
    assert seen == everything


def test_referrers(reg: Server) -> None:
    subject, _ = reg.push_image("disc/ref", "v1", [b"referred"])
    empty = reg.push_blob("disc/ref", b"{}")
    digests = {}
    for kind in ("application/x-sbom", "application/x-signature"):
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
               "config": {"mediaType": EMPTY, "digest": empty, "size": 2}, "layers": [],
               "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
               "annotations": {"kind": kind}}
        body = json.dumps(doc).encode()
        assert reg.request("PUT", f"/v2/disc/ref/manifests/{sha(body)}", body, {"Content-Type": OCI_MANIFEST}).status == 201
        digests[kind] = (sha(body), len(body))
    r = reg.request("GET", f"/v2/disc/ref/referrers/{subject}")
    assert (r.status, r.headers["content-type"]) == (200, OCI_INDEX)
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    got = {m["artifactType"]: (m["digest"], m["size"]) for m in index["manifests"]}
    assert got == digests
    assert all(m["annotations"]["kind"] == m["artifactType"] for m in index["manifests"])
    r = reg.request("GET", f"/v2/disc/ref/referrers/{subject}?artifactType=application/x-sbom")
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [digests["application/x-sbom"][0]]
    r = reg.request("GET", f"/v2/disc/ref/referrers/{MISSING}")
    assert (r.status, r.json()["manifests"]) == (200, [])
    assert reg.request("GET", "/v2/disc/ref/referrers/sha256:zz").status == 400
    # deleting a referrer removes it from the list
    sig = digests["application/x-signature"][0]
    assert reg.request("DELETE", f"/v2/disc/ref/manifests/{sig}").status == 202
    r = reg.request("GET", f"/v2/disc/ref/referrers/{subject}")
    assert [m["digest"] for m in r.json()["manifests"]] == [digests["application/x-sbom"][0]]


# ================================================================ content management


def test_delete_tag_keeps_manifest(reg: Server) -> None:
    digest, _ = reg.push_image("mgmt/tag", "v1", [b"keep me"])
    assert reg.request("DELETE", "/v2/mgmt/tag/manifests/v1").status == 202
    assert reg.request("GET", "/v2/mgmt/tag/manifests/v1").codes() == ["MANIFEST_UNKNOWN"]
    assert reg.request("GET", f"/v2/mgmt/tag/manifests/{digest}").status == 200
    assert reg.request("DELETE", "/v2/mgmt/tag/manifests/v1").status == 404


def test_delete_manifest_by_digest(reg: Server) -> None:
    digest, _ = reg.push_image("mgmt/man", "v1", [b"delete me"])
    reg.push_image("mgmt/man", "v2", [b"another image"])
    assert reg.request("DELETE", f"/v2/mgmt/man/manifests/{digest}").status == 202
    for ref in (digest, "v1"):
        r = reg.request("GET", f"/v2/mgmt/man/manifests/{ref}")
        assert (r.status, r.codes()) == (404, ["MANIFEST_UNKNOWN"])
    assert reg.request("DELETE", f"/v2/mgmt/man/manifests/{digest}").codes() == ["MANIFEST_UNKNOWN"]
    assert reg.request("GET", "/v2/mgmt/man/tags/list").json()["tags"] == ["v2"]


def test_delete_blob(reg: Server) -> None:
    digest = reg.push_blob("mgmt/blob", b"short-lived")
    assert reg.request("DELETE", f"/v2/mgmt/blob/blobs/{digest}").status == 202
    r = reg.request("GET", f"/v2/mgmt/blob/blobs/{digest}")
    assert (r.status, r.codes()) == (404, ["BLOB_UNKNOWN"])
    assert reg.request("DELETE", f"/v2/mgmt/blob/blobs/{digest}").codes() == ["BLOB_UNKNOWN"]


def test_unknown_endpoint_and_method(reg: Server) -> None:
    assert reg.request("GET", "/v2/x/nothing/here").status == 404
    r = reg.request("POST", "/v2/mgmt/blob/tags/list", b"")
    assert (r.status, r.codes()) == (405, ["UNSUPPORTED"])


def test_readonly_mode(tmp_path: Path) -> None:
    server = start_server(tmp_path / "storage", args=["--readonly"])
    try:
        assert server.request("GET", "/v2/").status == 200
        for method, path in [("POST", "/v2/ro/blobs/uploads/"), ("PUT", "/v2/ro/manifests/v1"),
                             ("DELETE", f"/v2/ro/blobs/{MISSING}"), ("PATCH", "/v2/ro/blobs/uploads/x")]:
            r = server.request(method, path, b"")
            assert (r.status, r.codes()) == (405, ["UNSUPPORTED"]), (method, path)
        assert server.request("GET", "/v2/_catalog").json() == {"repositories": []}
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["sendfile", "copy"])
def test_blob_transfer_modes(tmp_path: Path, mode: str) -> None:
    server = start_server(tmp_path / "storage", config={"blob_transfer": mode})
    try:
        data = bytes(range(256)) * 8192  # 2 MiB: more than one read of the copying path
        digest = server.push_blob("modes/blob", data)
        assert server.request("GET", f"/v2/modes/blob/blobs/{digest}").body == data
        r = server.request("GET", f"/v2/modes/blob/blobs/{digest}", headers={"Range": "bytes=1048570-1048580"})
        assert (r.status, r.body) == (206, data[1048570:1048581])
    finally:
        server.stop()


def test_upload_resumes_after_a_server_restart(tmp_path: Path) -> None:
    data = b"resumable " * 5000
    server = start_server(tmp_path / "storage")
    try:
        loc = server.request("POST", "/v2/resume/blobs/uploads/", b"").headers["location"]
        assert server.request("PATCH", loc, data[:20000], {"Content-Range": "0-19999"}).status == 202
    finally:
        server.stop()
    server = start_server(tmp_path / "storage", port=server.port)
    try:
        r = server.request("GET", loc)
        assert (r.status, r.headers["range"]) == (204, "0-19999")
        r = server.request("PUT", f"{loc}?digest={sha(data)}", data[20000:], {"Content-Range": f"20000-{len(data) - 1}"})
        assert r.status == 201, r.body
        assert server.request("GET", f"/v2/resume/blobs/{sha(data)}").body == data
    finally:
        server.stop()
