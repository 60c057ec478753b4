"""Remote build contexts against a real sampand: ``POST /build?remote=URL`` for an http(s)
tar (gzip, bzip2), a Dockerfile alone and a git repository (``git daemon`` on 127.0.0.1),
their errors, ``sampan build URL`` (http: sent as remote=; git: cloned by the CLI), the real
docker CLI (``DOCKER_BUILDKIT=0 docker build http://...``) and docker-py (which sends
``remote=``).  Every server is on loopback (tests/remote_context_servers.py)."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import Daemon, cleanup, start_daemon
from tests.integration.test_build_cli import _image_files, sampan
from tests.remote_context_servers import Files, git_daemon, http_server, make_repo, tar_bytes

DOCKER = shutil.which("docker")
pytestmark = [pytest.mark.root, pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")]

DOCKERFILE = b"FROM busybox\nCOPY . /src/\nRUN cat /src/app/main.txt > /copied\n"
CTX = {"Dockerfile": DOCKERFILE, "app/main.txt": b"main\n", "secret.key": b"nope\n", ".dockerignore": b"*.key\n"}


@pytest.fixture
def sampand(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        sampan(d, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), "busybox:latest")
        yield d
    finally:
        cleanup(d)


@pytest.fixture
def web() -> Iterator[tuple[Files, str]]:
    files = Files()
    files.routes["/ctx.tar.gz"] = tar_bytes(CTX, "w:gz")
    files.routes["/ctx.tar"] = tar_bytes(CTX)
    files.routes["/ctx.bz2"] = tar_bytes(CTX, "w:bz2")
    files.routes["/Dockerfile.txt"] = b"FROM busybox\nRUN echo alone > /alone\nLABEL kind=dockerfile\n"
    files.routes["/image.png"] = b"\x89PNG\r\n\x1a\n\0\0\0\0"
    with http_server(files) as url:
        yield files, url


@pytest.fixture
def repos(tmp_path: Path) -> Iterator[str]:
    base = tmp_path / "repos"
    base.mkdir()
    make_repo(base, "app.git", [
        {"Dockerfile": "FROM busybox\nLABEL v=0\n"},
        {**{k: v.decode() for k, v in CTX.items()},
         "sub/Dockerfile": "FROM busybox\nCOPY . /sub/\n", "sub/s.txt": "s\n"},
    ], tags={"v0": 0})
    with git_daemon(base) as url:
        yield url


def post_build(d: Daemon, remote: str, **params: str) -> tuple[int, list[dict[str, Any]]]:
    query = urllib.parse.urlencode({"remote": remote, **params})
    r = d.request("POST", f"/build?{query}", body=b"", timeout=120)
    return r.status, (r.lines() if r.status == 200 else [r.json()])


def built(lines: list[dict[str, Any]]) -> str:
    errors = [m for m in lines if m.get("error") or m.get("errorDetail")]
    assert not errors, lines
    ids = [m["aux"]["ID"] for m in lines if isinstance(m.get("aux"), dict)]
    assert ids, lines
    return str(ids[-1])


def error_of(lines: list[dict[str, Any]]) -> str:
    for m in lines:
        if m.get("errorDetail") or m.get("error") or m.get("message"):
            return str((m.get("errorDetail") or {}).get("message") or m.get("error") or m.get("message"))
    raise AssertionError(f"no error in {lines}")


def text(lines: list[dict[str, Any]]) -> str:
    return "".join(str(m.get("stream") or "") for m in lines)


def files_of(d: Daemon, name: str) -> dict[str, bytes]:
    r = d.request("GET", f"/images/{name}/get")
    assert r.status == 200
    return _image_files(r.body)


def no_leftovers(d: Daemon) -> None:
    tmp = d.data_root / "tmp"
    assert not tmp.exists() or sorted(p.name for p in tmp.iterdir()) == [], list(tmp.iterdir())


def test_remote_tar_and_dockerfile(sampand: Daemon, web: tuple[Files, str]) -> None:
    _files, url = web
    status, lines = post_build(sampand, f"{url}/ctx.tar.gz", t="remote:gz")
    assert status == 200
    image_id = built(lines)
    assert f"Downloading build context from remote url: {url}/ctx.tar.gz" in text(lines)
    got = files_of(sampand, "remote:gz")
    assert got["src/app/main.txt"] == b"main\n" and got["copied"] == b"main\n"
    assert "src/secret.key" not in got and "src/Dockerfile" in got  # .dockerignore applied
    # the same context, compressed otherwise (and other mtimes): every step from the cache
    for name in ("ctx.bz2", "ctx.tar"):
        status, lines = post_build(sampand, f"{url}/{name}", t="remote:again")
        assert built(lines) == image_id
        assert text(lines).count(" ---> Using cache") == 2, text(lines)
    # a Dockerfile alone: the context is that file
    status, lines = post_build(sampand, f"{url}/Dockerfile.txt", t="alone:1")
    built(lines)
    assert files_of(sampand, "alone:1")["alone"] == b"alone\n"
    info = sampand.request("GET", "/images/alone:1/json").json()
    assert info["Config"]["Labels"] == {"kind": "dockerfile"}
    # named by the dockerfile parameter
    status, lines = post_build(sampand, f"{url}/Dockerfile.txt", dockerfile="ci/Build.df", t="alone:2")
    assert built(lines) == sampand.request("GET", "/images/alone:1/json").json()["Id"]
    no_leftovers(sampand)


def test_remote_git(sampand: Daemon, repos: str) -> None:
    _, lines = post_build(sampand, f"{repos}/app.git", t="git:main")
    image_id = built(lines)
    got = files_of(sampand, "git:main")
    assert got["src/app/main.txt"] == b"main\n" and got["copied"] == b"main\n"
    assert "src/secret.key" not in got and not any(n.startswith("src/.git") and n != "src/.dockerignore" for n in got)
    # a second clone: same image from the cache (no .git, mtimes do not count)
    _, lines = post_build(sampand, f"{repos}/app.git#main", t="git:again")
    assert built(lines) == image_id
    _, lines = post_build(sampand, f"{repos}/app.git#main:sub", t="git:sub")
    built(lines)
    assert files_of(sampand, "git:sub")["sub/s.txt"] == b"s\n"
    _, lines = post_build(sampand, f"{repos}/app.git#v0", t="git:v0")
    built(lines)
    assert sampand.request("GET", "/images/git:v0/json").json()["Config"]["Labels"] == {"v": "0"}
    no_leftovers(sampand)


def test_remote_errors(sampand: Daemon, web: tuple[Files, str], repos: str) -> None:
    _files, url = web
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cases = [
        (f"http://127.0.0.1:{closed}/ctx.tar", f"error downloading remote context http://127.0.0.1:{closed}/ctx.tar: Connection refused"),
        (f"{url}/missing.tar", f"failed to GET {url}/missing.tar with status 404 Not Found"),
        (f"{url}/image.png", f"remote context {url}/image.png is neither a tar archive"),
        (f"{repos}/app.git#nope", f"error fetching git repository {repos}/app.git: fatal: couldn't find remote ref nope"),
        (f"{repos}/app.git#main:nowhere", "error setting git context: 'nowhere' not found"),
        (f"{repos}/app.git#--upload-pack=touch", "invalid refspec: --upload-pack=touch"),
        (f"{repos}/none.git", f"error fetching git repository {repos}/none.git"),
    ]
    for remote, message in cases:
        status, lines = post_build(sampand, remote)
        assert message in error_of(lines), (remote, lines)
        assert "Traceback" not in str(lines)
    status, lines = post_build(sampand, "ftp://127.0.0.1/ctx.tar")
    assert status == 400 and "could not be recognized as URL" in lines[0]["message"]
    assert sampand.request("GET", "/_ping").status == 200
    assert "Traceback" not in sampand.log_text()
    no_leftovers(sampand)


def test_sampan_build_url(sampand: Daemon, web: tuple[Files, str], repos: str) -> None:
    files, url = web
    r = sampan(sampand, "build", "--progress", "plain", "-t", "cli:http", f"{url}/ctx.tar.gz")
    assert "Downloading build context from remote url" in r.stdout.decode()  # the daemon fetched it
    assert any(p == "/ctx.tar.gz" for p in files.requests)
    # cloned by the CLI (sent as a directory) or by the daemon (remote=): the same image
    r = sampan(sampand, "build", "-q", "-t", "cli:git", f"{repos}/app.git#main")
    _, lines = post_build(sampand, f"{repos}/app.git", t="daemon:git")
    assert r.stdout.decode().strip() == built(lines)
    r = sampan(sampand, "build", "-q", "-f", "Dockerfile", "-t", "cli:sub", f"{repos}/app.git#:sub")
    assert files_of(sampand, "cli:sub")["sub/s.txt"] == b"s\n"
    r = sampan(sampand, "build", f"{repos}/app.git#nope", check=False)
    assert r.returncode != 0 and "couldn't find remote ref nope" in r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()
    r = sampan(sampand, "build", f"{url}/missing.tar", check=False)
    assert r.returncode != 0 and "404 Not Found" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_docker_cli_and_docker_py(sampand: Daemon, web: tuple[Files, str], repos: str) -> None:
    files, url = web
    env = {**sampand.env(), "DOCKER_BUILDKIT": "0"}
    r = subprocess.run([DOCKER or "docker", "build", "-t", "docker:remote", f"{url}/ctx.tar"], env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Successfully tagged docker:remote" in r.stdout
    # the docker CLI downloads an http(s) context itself and sends the tar unchanged (no
    # .dockerignore applied to it, as with dockerd)
    assert files.requests == ["/ctx.tar"] and files.agents[0] != "sampan", files.agents
    got = files_of(sampand, "docker:remote")
    assert got["copied"] == b"main\n" and "src/secret.key" in got
    # a git URL: the docker CLI clones it itself (Docker's default ref is master: name main)
    r = subprocess.run([DOCKER or "docker", "build", "-q", "-t", "docker:git", f"{repos}/app.git#main:sub"], env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_of(sampand, "docker:git")["sub/s.txt"] == b"s\n"
    _, lines = post_build(sampand, f"{repos}/app.git#main:sub", t="daemon:git")  # cloned by sampand
    assert built(lines) == r.stdout.strip()
    docker = pytest.importorskip("docker")
    client = docker.APIClient(base_url=sampand.url, version="auto", timeout=120)
    try:
        out = list(client.build(path=f"{url}/ctx.bz2", tag="dockerpy:remote", decode=True))  # sends remote=
        assert not [m for m in out if "error" in m], out
        assert files.requests[1:] == ["/ctx.bz2"] and files.agents[1] == "sampan"  # the daemon downloaded it
        got = files_of(sampand, "dockerpy:remote")
        assert got["copied"] == b"main\n" and "src/secret.key" not in got
    finally:
        client.close()
