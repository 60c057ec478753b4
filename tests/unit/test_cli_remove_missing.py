"""``rm -f`` and ``rmi -f`` over names the daemon does not know, as the docker CLI treats them.

The tutorial removes everything with ``docker rm -f $(docker ps -a)`` and ``docker rmi -f
$(docker image ls)``: the table's words become names.  The docker CLI (28.x, checked against
sampand) removes the real ones, prints an error for each other word, and with ``-f`` a
"No such ..." (404) alone does not fail the command; any other error (an invalid reference, a
conflict) still exits 1.  Without ``-f`` every error exits 1.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from typing import Any

from sampan.cli.context import Context
from sampan.cli.main import run
from sampan.client.client import Client
from sampan.client.testing import MockTransport
from sampan.client.transport import Request

REMOVED = {"/containers/web", "/containers/0123456789ab"}
IMAGE_ID = "sha256:" + "b" * 64


class Daemon:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, req: Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        path = urllib.parse.unquote(req.target.split("?")[0])
        self.seen.append(f"{req.method} {path}")
        if req.method == "DELETE" and path in REMOVED:
            return 204, {}, b""
        if req.method == "DELETE" and path.startswith("/containers/"):
            return 404, {}, json.dumps({"message": f"No such container: {path.split('/', 2)[2]}"}).encode()
        if req.method == "DELETE" and path == "/images/busybox":
            return 200, {}, json.dumps([{"Untagged": "busybox:latest"}, {"Deleted": IMAGE_ID}]).encode()
        if req.method == "DELETE" and path == "/images/SIZE":
            msg = "invalid reference format: repository name (library/SIZE) must be lowercase: 'SIZE'"
            return 400, {}, json.dumps({"message": msg}).encode()
        if req.method == "DELETE" and path.startswith("/images/"):
            return 404, {}, json.dumps({"message": f"No such image: {path.split('/', 2)[2]}"}).encode()
        return 500, {}, b'{"message":"unexpected"}'


def cli(argv: list[str]) -> tuple[int, str, str, Daemon]:
    daemon = Daemon()
    out, err = io.StringIO(), io.StringIO()

    def make(options: Any) -> Context:
        ctx = Context(options, stdout=out, stderr=err, stdin=io.StringIO(""), environ={})
        ctx._client = Client(MockTransport(daemon))
        return ctx

    return run(argv, make_context=make), out.getvalue(), err.getvalue(), daemon


def test_rm_force_removes_the_real_names_and_reports_the_words() -> None:
    words = ["CONTAINER", "ID", "web", "busybox", "Exited", "(0)", "0123456789ab"]
    code, out, err, daemon = cli(["rm", "-f", *words])
    assert code == 0
    assert out == "web\n0123456789ab\n"
    assert err.splitlines() == [f"Error response from daemon: No such container: {w}"
                                for w in ("CONTAINER", "ID", "busybox", "Exited", "(0)")]
    assert [s for s in daemon.seen if s.startswith("DELETE")] == [f"DELETE /containers/{w}" for w in words]


def test_rm_without_force_fails_on_a_missing_name() -> None:
    code, out, err, _ = cli(["rm", "web", "nope"])
    assert (code, out) == (1, "web\n")
    assert err == "Error response from daemon: No such container: nope\n"


def test_rmi_force_missing_names_do_not_fail_but_other_errors_do() -> None:
    code, out, err, _ = cli(["rmi", "-f", "busybox", "latest", "About"])
    assert code == 0
    assert out == f"Untagged: busybox:latest\nDeleted: {IMAGE_ID}\n"
    assert err.splitlines() == ["Error response from daemon: No such image: latest",
                                "Error response from daemon: No such image: About"]
    code, _, err, _ = cli(["rmi", "-f", "busybox", "SIZE", "latest"])
    assert code == 1 and "invalid reference format" in err and "No such image: latest" in err
    code, _, _, _ = cli(["rmi", "busybox", "latest"])
    assert code == 1
