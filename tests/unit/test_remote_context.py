"""Remote build contexts (``build/remote.py``): URL classification, git fragments, sniffing,
downloads from a loopback http server, clones from ``git daemon`` on 127.0.0.1, and the
``.dockerignore`` of a fetched context (``context.prune_ignored``)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from sampan.build import remote
from sampan.build.context import prune_ignored
from sampan.build.remote import GitSource, classify, fetch_context, is_git_url, parse_git_url, sniff
from sampan.errors import InvalidArgument, NotFound, SampanError, Unavailable
from tests.remote_context_servers import Files, git_daemon, http_server, make_repo, tar_bytes

HAVE_GIT = shutil.which("git") is not None
CTX = {"Dockerfile": b"FROM busybox\nCOPY . /src/\n", "app/main.txt": b"main\n", "secret.key": b"k\n",
       ".dockerignore": b"*.key\n"}


@pytest.mark.parametrize(("url", "kind"), [
    ("https://github.com/docker/rootfs.git", "git"),
    ("https://github.com/docker/rootfs.git#v1:sub", "git"),
    ("http://127.0.0.1:1/repo.git", "git"),
    ("git://127.0.0.1/repo", "git"),
    ("git@github.com:docker/rootfs.git", "git"),
    ("github.com/docker/rootfs", "git"),
    ("http://127.0.0.1:1/ctx.tar", "url"),
    ("https://example.invalid/Dockerfile", "url"),
    ("https://example.invalid/x.git/Dockerfile", "url"),
])
def test_classify(url: str, kind: str) -> None:
    assert classify(url) == kind


@pytest.mark.parametrize("url", ["ftp://x/ctx.tar", "/tmp/ctx", "file:///tmp/repo.git", "", "ssh://h/r.git"])
def test_classify_refuses(url: str) -> None:
    with pytest.raises(InvalidArgument, match="could not be recognized as URL"):
        classify(url)


def test_git_url_quirk_matches_moby() -> None:
    # moby's pattern is ".git(?:#.+)?$" with an unescaped dot: "legit" counts too
    assert is_git_url("http://h/legit") and not is_git_url("http://h/legit.tar")


@pytest.mark.parametrize(("url", "source"), [
    ("https://h/r.git", GitSource("https://h/r.git")),
    ("https://h/r.git#", GitSource("https://h/r.git")),
    ("https://h/r.git#main", GitSource("https://h/r.git", "main")),
    ("https://h/r.git#:sub/dir", GitSource("https://h/r.git", "", "sub/dir")),
    ("https://h/r.git#v1.0:sub/", GitSource("https://h/r.git", "v1.0", "sub")),
    ("https://h/r.git#main:/a/./b", GitSource("https://h/r.git", "main", "a/b")),
    ("https://h/r.git#main:.", GitSource("https://h/r.git", "main", "")),
    ("git@github.com:u/r.git#dev:x", GitSource("git@github.com:u/r.git", "dev", "x")),
    ("github.com/u/r#dev", GitSource("https://github.com/u/r", "dev")),
    ("git://127.0.0.1:9/r#refs/pull/1/head", GitSource("git://127.0.0.1:9/r", "refs/pull/1/head")),
])
def test_parse_git_url(url: str, source: GitSource) -> None:
    assert parse_git_url(url) == source


def test_parse_git_url_refuses() -> None:
    with pytest.raises(InvalidArgument, match="invalid refspec: --upload-pack=x"):
        parse_git_url("https://h/r.git#--upload-pack=x")
    with pytest.raises(InvalidArgument, match="not within git root"):
        parse_git_url("https://h/r.git#main:a/../../etc")


def test_sniff() -> None:
    assert sniff(tar_bytes(CTX)[:1024]) == "tar"
    assert sniff(tar_bytes(CTX, "w:gz")[:1024]) == "gzip"
    assert sniff(tar_bytes(CTX, "w:bz2")[:1024]) == "bzip2"
    assert sniff(tar_bytes(CTX, "w:xz")[:1024]) == "xz"
    assert sniff(zstandard.ZstdCompressor().compress(tar_bytes(CTX))[:1024]) == "zstd"
    v7 = io.BytesIO()
    with tarfile.open(fileobj=v7, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("a")
        tar.addfile(info, io.BytesIO(b""))
    raw = bytearray(v7.getvalue()[:512])
    raw[257:265] = b"\0" * 8  # no ustar magic: a v7 header recognised by its checksum
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw)
    assert sniff(bytes(raw)) == "tar"
    assert sniff(b"FROM busybox\nRUN echo hi\n") == "text"
    assert sniff("FROM busybox\nLABEL x=é\n".encode()[:-2]) == "text"  # cut inside a character
    assert sniff(b"\x89PNG\r\n\x1a\n\0\0") == "binary"
    assert sniff(b"\xff\xfe\xfa") == "binary"
    assert sniff(b"") == "binary"


@pytest.fixture
def served() -> Iterator[tuple[Files, str]]:
    files = Files()
    with http_server(files) as url:
        yield files, url


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz", "zstd"])
def test_fetch_tar_contexts(served: tuple[Files, str], scratch: Path, tmp_path: Path, mode: str) -> None:
    files, url = served
    data = zstandard.ZstdCompressor().compress(tar_bytes(CTX)) if mode == "zstd" else tar_bytes(CTX, mode)
    files.routes["/ctx"] = data  # no extension: the bytes decide
    dest = tmp_path / "ctx"
    dest.mkdir()
    log: list[str] = []
    assert fetch_context(url + "/ctx", dest, scratch=scratch, log=log.append) == ""
    # .dockerignore applied as a client would have; Dockerfile and .dockerignore kept
    assert _tree(dest) == {k: v for k, v in CTX.items() if k != "secret.key"}
    assert log == [f"Downloading build context from remote url: {url}/ctx\n"]
    assert os.listdir(scratch) == []


def test_fetch_dockerfile_alone(served: tuple[Files, str], scratch: Path, tmp_path: Path) -> None:
    files, url = served
    files.routes["/df"] = b"FROM busybox\nCMD [\"true\"]\n"
    dest = tmp_path / "a"
    dest.mkdir()
    assert fetch_context(url + "/df", dest, scratch=scratch) == "Dockerfile"
    assert _tree(dest) == {"Dockerfile": files.routes["/df"]}
    dest = tmp_path / "b"
    dest.mkdir()
    assert fetch_context(url + "/df", dest, dockerfile="build/app.Dockerfile", scratch=scratch) == "build/app.Dockerfile"
    assert _tree(dest) == {"build/app.Dockerfile": files.routes["/df"]}
    assert os.listdir(scratch) == []


@pytest.mark.parametrize(("route", "error", "match"), [
    (404, NotFound, r"failed to GET http://127\.0\.0\.1:\d+/x with status 404 Not Found: status 404 for /x"),
    (500, Unavailable, "status 500"),
    (b"\x89PNG\r\n\x1a\n\0\0\0binary", InvalidArgument, "neither a tar archive .* nor a Dockerfile"),
    (b"\x1f\x8b\x08\x00garbage-after-gzip-magic" * 4, InvalidArgument, "remote context http"),
    (b"", InvalidArgument, "neither a tar archive"),
])
def test_fetch_errors(served: tuple[Files, str], scratch: Path, tmp_path: Path, route: bytes | int,
                      error: type[SampanError], match: str) -> None:
    files, url = served
    files.routes["/x"] = route
    dest = tmp_path / "ctx"
    dest.mkdir()
    with pytest.raises(error, match=match):
        fetch_context(url + "/x", dest, scratch=scratch)
    assert os.listdir(scratch) == []


def test_fetch_size_cap_and_unreachable(served: tuple[Files, str], scratch: Path, tmp_path: Path) -> None:
    files, url = served
    files.routes["/big"] = tar_bytes({"f": b"x" * 50_000})
    dest = tmp_path / "ctx"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match=r"error downloading remote context .*/big: \d+ bytes is larger than the limit of 4096 bytes"):
        fetch_context(url + "/big", dest, scratch=scratch, limit=4096)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match=f"error downloading remote context http://127.0.0.1:{port}/ctx.tar: Connection refused"):
        fetch_context(f"http://127.0.0.1:{port}/ctx.tar", dest, scratch=scratch)
    assert os.listdir(scratch) == [] and os.listdir(dest) == []


def test_download_timeout(scratch: Path) -> None:
    with socket.socket() as s:  # accepts, never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        url = f"http://127.0.0.1:{s.getsockname()[1]}/ctx.tar"
        with pytest.raises(Unavailable, match=f"error downloading remote context {url}"):
            remote.download(url, io.BytesIO(), timeout=0.3)


def test_prune_ignored_keeps_reincluded(tmp_path: Path) -> None:
    ctx = tmp_path / "c"
    for rel in ("Dockerfile", "logs/a.log", "logs/keep/k.txt", "docs/x.md", "src/m.py"):
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel)
    (ctx / ".dockerignore").write_text("logs\n!logs/keep\ndocs\nDockerfile\n")
    removed = prune_ignored(ctx, "")
    assert removed == ["docs", "docs/x.md", "logs/a.log"]
    assert sorted(_tree(ctx)) == [".dockerignore", "Dockerfile", "logs/keep/k.txt", "src/m.py"]
    assert prune_ignored(tmp_path / "c", "") == []  # idempotent


# ------------------------------------------------------------------ git

needs_git = pytest.mark.skipif(not HAVE_GIT, reason="git is not installed")


@pytest.fixture
def repos(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    base = tmp_path / "repos"
    base.mkdir()
    make_repo(base, "app.git", [
        {"Dockerfile": "FROM busybox\n", "old.txt": "v0\n"},
        {"Dockerfile": "FROM busybox\nCOPY . /src/\n", "sub/Dockerfile": "FROM busybox\n", "sub/s.txt": "s\n",
         "x.key": "k\n", ".dockerignore": "*.key\n", "link": "x"},
    ], tags={"v0": 0})
    with git_daemon(base) as url:
        yield base, url


@needs_git
def test_clone_default_branch_ref_and_subdir(repos: tuple[Path, str], scratch: Path, tmp_path: Path) -> None:
    _base, url = repos
    dest = tmp_path / "a"
    dest.mkdir()
    assert fetch_context(f"{url}/app.git", dest, scratch=scratch) == ""
    assert sorted(_tree(dest)) == [".dockerignore", "Dockerfile", "link", "sub/Dockerfile", "sub/s.txt"]
    dest = tmp_path / "b"
    dest.mkdir()
    fetch_context(f"{url}/app.git#v0", dest, scratch=scratch)
    assert _tree(dest) == {"Dockerfile": b"FROM busybox\n", "old.txt": b"v0\n"}
    dest = tmp_path / "c"
    dest.mkdir()
    fetch_context(f"{url}/app.git#main:sub", dest, scratch=scratch)
    assert sorted(_tree(dest)) == ["Dockerfile", "s.txt"]
    assert os.listdir(scratch) == []


@needs_git
def test_clone_errors(repos: tuple[Path, str], scratch: Path, tmp_path: Path) -> None:
    _base, url = repos
    dest = tmp_path / "ctx"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match=rf"error fetching git repository {url}/app.git: .*couldn't find remote ref nope"):
        fetch_context(f"{url}/app.git#nope", dest, scratch=scratch)
    with pytest.raises(InvalidArgument, match=rf"error fetching git repository {url}/missing.git: .*"):
        fetch_context(f"{url}/missing.git", dest, scratch=scratch)
    with pytest.raises(NotFound, match="'nowhere' not found"):
        fetch_context(f"{url}/app.git#:nowhere", dest, scratch=scratch)
    with pytest.raises(InvalidArgument, match=r"not a directory: old\.txt"):
        fetch_context(f"{url}/app.git#v0:old.txt", dest, scratch=scratch)
    assert os.listdir(scratch) == [] and os.listdir(dest) == []


@needs_git
def test_clone_over_dumb_http_is_not_shallow(tmp_path: Path, scratch: Path) -> None:
    base = tmp_path / "repos"
    base.mkdir()
    make_repo(base, "r.git", [{"Dockerfile": "FROM busybox\n"}, {"Dockerfile": "FROM busybox\n", "b": "2\n"}])
    files = Files()
    files.directory = base
    with http_server(files) as url:
        assert not remote.supports_shallow(f"{url}/r.git")
        dest = tmp_path / "ctx"
        dest.mkdir()
        fetch_context(f"{url}/r.git#main", dest, scratch=scratch)
    assert _tree(dest) == {"Dockerfile": b"FROM busybox\n", "b": b"2\n"}
    assert any(r.startswith("/r.git/info/refs") for r in files.requests)


@needs_git
def test_clone_submodules_and_no_file_transport(tmp_path: Path, scratch: Path) -> None:
    from tests.remote_context_servers import git

    base = tmp_path / "repos"
    base.mkdir()
    make_repo(base, "lib.git", [{"lib.txt": "from the submodule\n"}])
    with git_daemon(base) as url:
        for name, sub_url in (("super.git", f"{url}/lib.git"), ("sneaky.git", f"file://{base}/lib.git")):
            work = tmp_path / (name + ".work")
            work.mkdir()
            git(work, "init", "-q", "-b", "main")
            (work / "Dockerfile").write_text("FROM busybox\n")
            git(work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub_url, "vendor/lib")
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", "with a submodule")
            git(base, "clone", "-q", "--bare", str(work), str(base / name))
        dest = tmp_path / "ctx"
        dest.mkdir()
        fetch_context(f"{url}/super.git", dest, scratch=scratch)
        assert _tree(dest) == {"Dockerfile": b"FROM busybox\n", "vendor/lib/lib.txt": b"from the submodule\n",
                               ".gitmodules": (tmp_path / "super.git.work" / ".gitmodules").read_bytes()}
        other = tmp_path / "ctx2"
        other.mkdir()
        with pytest.raises(InvalidArgument, match=f"error initializing submodules of {url}/sneaky.git: .*transport 'file' not allowed"):
            fetch_context(f"{url}/sneaky.git", other, scratch=scratch)
    assert os.listdir(scratch) == []
