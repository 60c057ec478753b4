"""The corpus build cases: each names a file of ``tests/corpus/dockerfiles``, the build context
it needs and what the image must hold according to Docker's documented semantics (the
Dockerfile reference; BuildKit's documentation for heredocs, ``--chmod``, ``--exclude``,
``--parents`` and ``--unpack``).  Nothing here was recorded from sampan's output; the cases
listed in ``tests/e2e/test_build_peers.py`` are also compared with ``DOCKER_BUILDKIT=0 docker
build`` on dockerd 20.10.

A context entry is bytes (a file, mode 0644), ``(bytes, mode)``, or one of :class:`Dir`,
:class:`Link` (symlink), :class:`Hardlink`, :class:`Tar` (an archive made at test time) and
:class:`Gzip` (gzip-compressed bytes that are not a tar).  Tree specs (merged over the layers,
whiteouts applied): ``("f", mode, uid, gid, data | None)``, ``("d", mode[, uid, gid])``,
``("l", symlink target)``, ``("h", hard-link target path)``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "dockerfiles"
S = 1_000_000_000
F644 = 0o644


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str  # a context path written before this one


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes | None = None  # None: a directory
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str = ""  # a symlink when set


@dataclass(frozen=True)
class Tar:
    members: list[Member]
    compression: str = ""  # "", "gz", "bz2", "xz"


@dataclass(frozen=True)
class Gzip:
    data: bytes


ContextEntry = bytes | tuple[bytes, int] | Dir | Link | Hardlink | Tar | Gzip


@dataclass
class Case:
    files: dict[str, ContextEntry] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)  # config fields that must be empty or absent
    env: dict[str, str] = field(default_factory=dict)  # entries that must be in Env
    env_absent: list[str] = field(default_factory=list)  # names that must not be in Env
    tree: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # created_by of the last entries, in order
    log: list[str] = field(default_factory=list)
    author: str | None = None
    new_layers: int | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    parent: str = ""  # a case built first and tagged PARENT_TAG (its FROM for ONBUILD)


PARENT_TAG = "corpus-onbuild-parent"


def tar_bytes(spec: Tar) -> bytes:
    """The archive of ``spec`` (fixed mtimes: the same bytes on every run)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in spec.members:
            info = tarfile.TarInfo(m.name)
            info.mode, info.uid, info.gid, info.mtime = m.mode, m.uid, m.gid, 1_600_000_000
            if m.link:
                info.type, info.linkname = tarfile.SYMTYPE, m.link
                tar.addfile(info)
            elif m.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
    raw = buf.getvalue()
    if spec.compression == "gz":
        return gzip.compress(raw, mtime=0)
    if spec.compression == "bz2":
        return bz2.compress(raw)
    if spec.compression == "xz":
        return lzma.compress(raw)
    return raw


def write_context(ctx: Path, files: dict[str, ContextEntry]) -> None:
    """Make the build context ``files`` describe under ``ctx`` (hard links last)."""
    ordered = sorted(files.items(), key=lambda kv: isinstance(kv[1], Hardlink))
    for rel, spec in ordered:
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, Dir):
            path.mkdir(exist_ok=True)
            os.chmod(path, spec.mode)
        elif isinstance(spec, Link):
            os.symlink(spec.target, path)
        elif isinstance(spec, Hardlink):
            os.link(ctx / spec.target, path)
        else:
            if isinstance(spec, Tar):
                data, mode = tar_bytes(spec), 0o644
            elif isinstance(spec, Gzip):
                data, mode = gzip.compress(spec.data, mtime=0), 0o644
            elif isinstance(spec, tuple):
                data, mode = spec
            else:
                data, mode = spec, 0o644
            path.write_bytes(data)
            os.chmod(path, mode)


CASES: dict[str, Case] = {
    "copy-simple": Case(
        files={"hello.txt": b"hello\n", "a.txt": b"a\n", "b.txt": b"b\n"},
        tree={"hello.txt": ("f", F644, 0, 0, b"hello\n"), "multi/a.txt": ("f", F644, 0, 0, b"a\n"),
              "multi/b.txt": ("f", F644, 0, 0, b"b\n"), "glob/hello.txt": ("f", F644, 0, 0, b"hello\n"),
              "glob/a.txt": ("f", F644, 0, 0, b"a\n"), "multi": ("d", 0o755)},
        new_layers=3),
    "copy-dest-slash-rules": Case(
        files={"a": b"A"},
        tree={"file": ("f", F644, 0, 0, b"A"), "dir/a": ("f", F644, 0, 0, b"A"),
              "relative/a": ("f", F644, 0, 0, b"A"), "w/a": ("f", F644, 0, 0, b"A")},
        config={"WorkingDir": "/w"}),
    "copy-json": Case(files={"src dir/file": b"x"}, tree={"dest/file": ("f", F644, 0, 0, b"x")}),
    "add-json": Case(files={"file with spaces.txt": b"s"},
                     tree={"dst dir/file with spaces.txt": ("f", F644, 0, 0, b"s")}),
    "copy-chown-variable": Case(files={"a": b"a"}, tree={"a": ("f", F644, 1000, 1000, b"a")}),
    "copy-heredoc": Case(tree={"etc/greeting": ("f", F644, 0, 0, b"hello \n")}),
    "copy-heredoc-multiple": Case(tree={"dst/one": ("f", F644, 0, 0, b"first file\n"),
                                        "dst/two": ("f", F644, 0, 0, b"second file\n")}),
    "escape-backtick": Case(files={"a\\b.txt": b"bs"}, tree={"c\\d/a\\b.txt": ("f", F644, 0, 0, b"bs")},
                            log=["one two"]),
    "env-forms": Case(env={"A": "1", "B": "two words", "C": "three words", "LEGACY": "value with spaces",
                           "D": "1", "E": "two words", "F": "", "G": 'quoted "inner"'},
                      history=["/bin/sh -c #(nop)  ENV D=1 E=two words", "/bin/sh -c #(nop)  ENV F=",
                               '/bin/sh -c #(nop)  ENV G=quoted "inner"'], new_layers=0),
    "env-expansion-modifiers": Case(env={"A": "value", "B": "default", "C": "default", "D": "",
                                         "E": "alt", "F": "", "G": "alt"}),
    "workdir": Case(config={"WorkingDir": "/opt/x"},
                    tree={"app": ("d", 0o755), "app/sub": ("d", 0o755), "opt/x": ("d", 0o755)},
                    history=["/bin/sh -c #(nop) WORKDIR /app", "/bin/sh -c #(nop) WORKDIR /app/sub",
                             "/bin/sh -c #(nop)  ENV DIR=/opt", "/bin/sh -c #(nop) WORKDIR /opt/x"]),
    "user": Case(config={"User": "daemon"}, history=["/bin/sh -c #(nop)  USER nobody",
                                                     "/bin/sh -c #(nop)  USER 1000:1000",
                                                     "/bin/sh -c #(nop)  ARG U=daemon",
                                                     "/bin/sh -c #(nop)  USER daemon"]),
    "volume-forms": Case(config={"Volumes": {"/data": {}, "/a": {}, "/b": {}, "/json1": {}, "/json2": {}}}),
    "label-forms": Case(config={"Labels": {"version": "1.0", "description": "a test image",
                                           "com.example.vendor": "ACME Incorporated",
                                           "multi.label1": "value1", "multi.label2": "value2",
                                           "other": "value3", "legacy": "value with spaces"}}),
    "label-expansion": Case(config={"Labels": {"version": "1.2", "quoted key": "1.2-x"}}),
    "cmd-forms": Case(config={"Cmd": ["--flag"]},
                      history=['/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo shell form"]',
                               '/bin/sh -c #(nop)  CMD ["echo" "exec form"]', '/bin/sh -c #(nop)  CMD ["--flag"]']),
    "entrypoint-forms": Case(config={"Entrypoint": ["/bin/sh", "-c", "exec top -b"], "Cmd": ["echo hi"]}),
    "onbuild": Case(config={"OnBuild": ["RUN echo triggered", "COPY . /app", "ENV A=1"]}, new_layers=0),
    "healthcheck-cmd": Case(config={"Healthcheck": {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"], "Interval": 300 * S,
        "Timeout": 3 * S, "StartPeriod": 10 * S, "StartInterval": 2 * S, "Retries": 3}}),
    "stopsignal": Case(config={"StopSignal": "9"}),
    "shell": Case(config={"Shell": ["/bin/sh", "-ec"]}, history=["/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
                                                                  "/bin/sh -ec echo with custom shell"],
                  log=["with custom shell"]),
    "expose": Case(config={"ExposedPorts": {**{"80/tcp": {}, "443/tcp": {}, "53/udp": {}, "9000/tcp": {}},
                                            **{f"{p}/tcp": {} for p in range(8000, 8011)}}}),
    "maintainer": Case(author="Jane Doe <jane@example.com>",
                       history=["/bin/sh -c #(nop)  MAINTAINER Jane Doe <jane@example.com>"]),
    "run-exec": Case(tree={"exec": ("f", F644, 0, 0, b"exec\n")},
                     history=["/bin/sh -c echo exec > /exec"]),
    "run-shell": Case(tree={"hello": ("f", F644, 0, 0, b"hello\n")}, log=["hello"]),
    "run-heredoc-shebang": Case(log=["/root\n"], new_layers=0),
    "run-heredoc-redirect": Case(tree={"etc/motd": ("f", F644, 0, 0, b"welcome\n")}),
    "run-heredoc-tabs": Case(log=["tab stripped\n"], new_layers=0),
    "run-heredoc-quoted": Case(log=["$single\n"], new_layers=0),
    "run-mount-bind-tmpfs": Case(files={"ctxfile": b"x"}, log=["ctxfile\n"], new_layers=0),
    "run-mount-cache": Case(log=["cached\n"], new_layers=0),
    "run-continuation": Case(log=["one\ntwo\nthree\n"], new_layers=0),
    "run-heredoc": Case(log=["from heredoc\nsecond line\n"], new_layers=0),
    "lowercase-instructions": Case(env={"a": "b"}, config={"Cmd": ["sh"]}, log=["lower"]),
    "arg-scope": Case(log=["unset\n", "\ng\n"],
                      history=["/bin/sh -c echo ${GLOBAL:-unset}", "/bin/sh -c #(nop)  ARG GLOBAL",
                               "|1 GLOBAL=g /bin/sh -c echo $GLOBAL"]),
    "arg-before-from": Case(log=["latest"], history=["|1 TAG=latest /bin/sh -c echo $TAG"]),
    "tutorial-mysql-like": Case(
        files={"docker-entrypoint.sh": (b"#!/bin/sh\nexec \"$@\"\n", 0o755)},
        author="sampan tests", env={"MYSQL_MAJOR": "5.7", "MYSQL_VERSION": "5.7.31"},
        config={"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["mysqld"],
                "ExposedPorts": {"3306/tcp": {}, "33060/tcp": {}}, "Volumes": {"/var/lib/mysql": {}}},
        tree={"var/run/mysqld": ("d", 0o777), "var/lib/mysql": ("d", 0o755),
              "usr/local/bin/docker-entrypoint.sh": ("f", 0o755, 0, 0, b"#!/bin/sh\nexec \"$@\"\n")}),
    "tutorial-web-app": Case(
        config={"Labels": {"org.opencontainers.image.title": "hello docker"}, "WorkingDir": "/www",
                "ExposedPorts": {"8080/tcp": {}}, "Cmd": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/dockerfile || exit 1"],
                                "Interval": 30 * S}},
        tree={"www/dockerfile": ("f", F644, 0, 0, b"hello docker\n")}),
    "from-scratch": Case(files={"hello.txt": b"hi"}, config={"Cmd": ["/hello"]},
                         tree={"hello.txt": ("f", F644, 0, 0, b"hi")}, absent=["bin/busybox"]),
    "multistage-three": Case(config={"Cmd": ["cat", "/version"]},
                             tree={"version": ("f", F644, 0, 0, b"1\n"), "deps": ("f", F644, 0, 0, b"deps\n")}),
    "copy-from-stage": Case(tree={"artifact": ("f", F644, 0, 0, b"built\n"), "hostname": ("f", F644, 0, 0, b""),
                                  "bb": ("f", 0o755, 0, 0, None)}),
    "add-flags": Case(files={"file.txt": (b"f", 0o600), "archive.tar": Tar([Member("inner/x", b"x", 0o640)])},
                      tree={"dst/file.txt": ("f", 0o644, 1000, 1000, b"f"), "unpacked/inner/x": ("f", 0o640, 0, 0, b"x")}),
}

# Corpus files that were parser-only cases, built now: what the Dockerfile reference says they give.
CASES.update({
    "arg-multiple": Case(log=[" 2 three 3 \n"], history=['|3 B=2 C=three 3 D= /bin/sh -c echo "$A $B $C $D"']),
    "bom": Case(log=["bom"], history=["/bin/sh -c echo bom"], new_layers=0),
    "cmd-shell-heredoc-like": Case(config={"Cmd": ["/bin/sh", "-c", "cat <<EOF"]}),
    "comments-everywhere": Case(log=["a # not a comment inside the line\n"]),
    "crlf-lines": Case(log=["crlf continued\n"], config={"Cmd": ["sh"]}),
    "directive-after-blank-ignored": Case(log=["ok continued\n"]),
    "directive-after-comment-ignored": Case(log=["ok continued\n"]),
    "directives-case": Case(log=["hi\n"]),
    "empty-continuation-end": Case(log=["last\n"]),
    "env-escapes": Case(env={"A": "$NOT", "B": "$single", "C": "-double", "D": "$NOTx", "E": "$NOT-"}),
    "escape-backslash-explicit": Case(log=["one two\n"]),
    "expose-variable-list": Case(config={"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}},
                                 history=["/bin/sh -c #(nop)  ENV PORTS=80 443",
                                          "/bin/sh -c #(nop)  EXPOSE 80 443"]),
    "flags-quoted": Case(files={"a": b"A"}, tree={"a": ("f", 0o600, 1, 1, b"A")}, log=["quoted\n"]),
    "from-as-stage": Case(tree={"out": ("f", F644, 0, 0, b"hi\n")}, new_layers=1),
    "from-platform": Case(config={"Cmd": ["sh"]}, new_layers=0),
    "from-simple": Case(config={"Cmd": ["sh"]}, new_layers=0),
    "healthcheck-json-none": Case(config={"Healthcheck": {"Test": ["NONE"]}}),
    "healthcheck-shell-continuation": Case(config={"Healthcheck": {"Test": ["CMD-SHELL", "test -f /ready    || exit 1"],
                                                                   "Retries": 5}}),
    "json-unicode": Case(config={"Cmd": ["echo", "h\u00e9llo", "\u4f60\u597d"], "Labels": {"greeting": "\u4f60\u597d"}}),
    "json-whitespace": Case(config={"Cmd": ["a", "b"]}, unset=["Entrypoint"]),
    "leading-whitespace": Case(log=["tabbed\n"], config={"Cmd": ["/bin/sh", "-c", "echo spaced"]}),
    "long-continuation": Case(log=["line0\nline1\n", "line28\nline29\n"], new_layers=0),
    "run-continuation-blank": Case(log=["a\nb\n"]),
    "run-continuation-comments": Case(log=["a\nb\nc\n"]),
    "run-continuation-trailing-space": Case(log=["a b\n"]),
    "run-escaped-backslash": Case(tree={"x": ("f", F644, 0, 0, b"a\\\\\n")}, log=["done\n"]),
    "syntax-directive": Case(log=["hi\n"], history=["/bin/sh -c echo hi"]),
    "copy-flags": Case(
        files={"script.sh": (b"#!/bin/sh\n", 0o600), "a/b/f": b"f\n", "a/other": b"o\n",
               "docs/readme.md": b"r", "docs/guide.txt": b"g", "docs/tmp/x": b"x"},
        tree={"usr/local/bin/script.sh": ("f", 0o755, 65534, 65534, b"#!/bin/sh\n"),
              "dst/a/b/f": ("f", F644, 0, 0, b"f\n"), "docs/guide.txt": ("f", F644, 0, 0, b"g")},
        absent=["dst/f", "dst/a/other", "docs/readme.md", "docs/tmp"]),
    "add-unpack-exclude": Case(
        files={"archive.tar.gz": Tar([Member("inside", b"i")], "gz"), "logs/app.txt": b"t",
               "logs/debug.log": b"d"},
        tree={"raw/archive.tar.gz": ("f", F644, 0, 0, None), "logs/app.txt": ("f", F644, 0, 0, b"t")},
        absent=["raw/inside", "logs/debug.log"]),
    "copy-heredoc-chomp-quoted": Case(tree={"script.sh": ("f", F644, 0, 0, b"#!/bin/sh\necho $literal\n")}),
})

_ARCHIVE = [Member("dir", None, 0o750), Member("dir/file", b"x", 0o640, 1000, 1000),
            Member("dir/link", link="file"), Member("top", b"top\n", 0o600)]


def _unpacked(dest: str) -> dict[str, tuple[Any, ...]]:
    return {f"{dest}/dir": ("d", 0o750), f"{dest}/dir/file": ("f", 0o640, 1000, 1000, b"x"),
            f"{dest}/dir/link": ("l", "file"), f"{dest}/top": ("f", 0o600, 0, 0, b"top\n")}


# New corpus files, one semantic each (Dockerfile reference; the legacy builder where they differ).
# EXPOSE's history is "EXPOSE " and the words as written, sorted (BuildKit's parseExpose sorts
# them before expansion, moby's dispatchExpose joins them).
CASES.update({
    "copy-dir-contents": Case(
        files={"dir/top.txt": b"t\n", "dir/exec.sh": (b"#!/bin/sh\n", 0o755), "dir/sub/deep.txt": (b"d\n", 0o600),
               "dir/sub/empty": Dir(0o750)},
        tree={**{f"{d}/{p}": s for d in ("dst", "dst2") for p, s in {
            "top.txt": ("f", F644, 0, 0, b"t\n"), "exec.sh": ("f", 0o755, 0, 0, b"#!/bin/sh\n"),
            "sub/deep.txt": ("f", 0o600, 0, 0, b"d\n"), "sub/empty": ("d", 0o750)}.items()},
              "dst3/deep.txt": ("f", 0o600, 0, 0, b"d\n"), "dst3/empty": ("d", 0o750)},
        absent=["dst/dir", "dst2/dir", "dst3/sub", "dst/top"], new_layers=3),
    "copy-from-image": Case(tree={"bin/busybox": ("f", 0o755, 0, 0, None), "bin/sh": ("f", 0o755, 0, 0, None)},
                            new_layers=1, unset=["Cmd"]),
    "context-links": Case(
        files={"links/file": b"data\n", "links/to-file": Link("file"), "links/abs": Link("/etc/hostname"),
               "links/hard": Hardlink("links/file"), "links/sub/up": Link("../file")},
        tree={"links/file": ("f", F644, 0, 0, b"data\n"), "links/hard": ("h", "links/file"),
              "links/to-file": ("l", "file"), "links/abs": ("l", "/etc/hostname"), "links/sub/up": ("l", "../file"),
              "followed": ("f", F644, 0, 0, b"data\n")}),
    "dockerignore": Case(
        files={".dockerignore": b"# comment\n*.log\n!keep.log\n**/tmp\nsecret/\n!secret/public.txt\n/root-only.txt\n"
                                b".dockerignore\n",
               "keep.log": b"k", "debug.log": b"d", "sub/deep.log": b"s", "sub/root-only.txt": b"r", "tmp/x": b"x",
               "a/tmp/y": b"y", "a/b.txt": b"b", "secret/private.txt": b"p", "secret/public.txt": b"P",
               "root-only.txt": b"R"},
        tree={"ctx/keep.log": ("f", F644, 0, 0, b"k"), "ctx/sub/deep.log": ("f", F644, 0, 0, b"s"),
              "ctx/sub/root-only.txt": ("f", F644, 0, 0, b"r"), "ctx/a/b.txt": ("f", F644, 0, 0, b"b"),
              "ctx/secret/public.txt": ("f", F644, 0, 0, b"P")},
        absent=["ctx/debug.log", "ctx/tmp", "ctx/a/tmp", "ctx/secret/private.txt", "ctx/root-only.txt",
                "ctx/.dockerignore"]),
    "add-tar-extract": Case(
        files={"plain.tar": Tar(_ARCHIVE), "archive.tar.gz": Tar(_ARCHIVE, "gz"),
               "archive.tar.bz2": Tar(_ARCHIVE, "bz2"), "archive.tar.xz": Tar(_ARCHIVE, "xz"),
               "notatar.gz": Gzip(b"not a tar\n")},
        tree={**_unpacked("plain"), **_unpacked("gz"), **_unpacked("bz2"), **_unpacked("xz"),
              "copied/plain.tar": ("f", F644, 0, 0, None), "raw/notatar.gz": ("f", F644, 0, 0, None)},
        absent=["copied/dir", "raw/notatar", "gz/archive.tar.gz"], new_layers=6),
    "add-chown-chmod": Case(
        files={"tool.sh": b"#!/bin/sh\n", "file.txt": b"f\n", "dir/a": b"a\n"},
        tree={"opt/tool.sh": ("f", 0o750, 1, 2, b"#!/bin/sh\n"), "opt/file.txt": ("f", F644, 1, 1, b"f\n"),
              "opt/dir/a": ("f", 0o600, 0, 0, b"a\n")}),
    "workdir-chain": Case(
        config={"WorkingDir": "/srv/data"},
        tree={"a": ("d", 0o755), "a/b/c": ("d", 0o755), "srv/app": ("d", 0o755), "srv/data": ("d", 0o755),
              "pwd": ("f", F644, 0, 0, b"/srv/data\n")},
        history=["/bin/sh -c #(nop) WORKDIR /a", "/bin/sh -c #(nop) WORKDIR /a/b/c",
                 "/bin/sh -c #(nop)  ENV BASE=/srv NAME=app", "/bin/sh -c #(nop) WORKDIR /srv/app",
                 "/bin/sh -c #(nop) WORKDIR /srv/data", "/bin/sh -c pwd > /pwd"]),
    "user-uid-gid": Case(
        config={"User": "1:2"},
        tree={"shared": ("d", 0o777), "shared/ids": ("f", F644, 1000, 1000, b"1000\n1000\n"),
              "shared/other": ("f", F644, 1, 2, b"")}),
    "env-same-line": Case(
        env={"A": "new", "B": "old", "C": "old-x", "D": "old"},
        tree={"env": ("f", F644, 0, 0, b"new old old-x old\n")},
        history=["/bin/sh -c #(nop)  ENV A=old", "/bin/sh -c #(nop)  ENV A=new B=old C=old-x",
                 "/bin/sh -c #(nop)  ENV D=old", '/bin/sh -c echo "$A $B $C $D" > /env']),
    "arg-build-arg": Case(
        build_args={"VERSION": "2.0", "UNSET": "given"}, env={"FLAVOR": "env-wins"}, env_absent=["VERSION", "UNSET"],
        tree={"args": ("f", F644, 0, 0, b"2.0 given env-wins\n")},
        history=["/bin/sh -c #(nop)  ARG VERSION=1.0", "/bin/sh -c #(nop)  ARG UNSET",
                 "/bin/sh -c #(nop)  ARG FLAVOR=plain", "/bin/sh -c #(nop)  ENV FLAVOR=env-wins",
                 '|2 UNSET=given VERSION=2.0 /bin/sh -c echo "$VERSION ${UNSET:-none} $FLAVOR" > /args']),
    "arg-proxy": Case(
        build_args={"HTTP_PROXY": "http://proxy.example:3128", "no_proxy": "localhost"},
        env_absent=["HTTP_PROXY", "no_proxy"],
        tree={"proxy": ("f", F644, 0, 0, b"http://proxy.example:3128|localhost\n")},
        # moby: the proxies' values stay out of the history, "|0" says build args were set
        history=['|0 /bin/sh -c echo "$HTTP_PROXY|$no_proxy" > /proxy']),
    "multistage-target": Case(target="test", tree={"base": ("f", F644, 0, 0, b"base\n"),
                                                   "test": ("f", F644, 0, 0, b"test\n")}, new_layers=2),
    "whiteout-rm": Case(
        files={"data/keep.txt": b"k", "data/gone.txt": b"g", "data/olddir/x": b"x", "data/opaque/old.txt": b"o"},
        tree={"data/keep.txt": ("f", F644, 0, 0, b"k"), "data/opaque/new.txt": ("f", F644, 0, 0, b"new\n")},
        absent=["data/gone.txt", "root", "data/olddir", "data/olddir/x", "data/opaque/old.txt"],
        new_layers=3),
    "volume-run-discarded": Case(
        # the legacy builder runs the step with an anonymous volume on each path (made in the
        # rootfs when missing), so what it writes there is not in the layer
        config={"Volumes": {"/data": {}, "/fresh/vol": {}}},
        tree={"data/before": ("f", F644, 0, 0, b"before\n"), "outside": ("f", F644, 0, 0, b"outside\n"),
              "fresh/vol": ("d", 0o755)},
        absent=["data/after", "fresh/vol/new"]),
    "expose-protocols": Case(
        config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "9000/sctp": {}, "8080/tcp": {},
                                 "7000/udp": {}, "7001/udp": {}, "7002/udp": {}}},
        history=["/bin/sh -c #(nop)  EXPOSE 53/udp 80/tcp", "/bin/sh -c #(nop)  EXPOSE 8080 9000/sctp",
                 "/bin/sh -c #(nop)  EXPOSE 7000-7002/udp"], new_layers=0),
    "healthcheck-options": Case(config={"Healthcheck": {
        "Test": ["CMD", "wget", "-q", "http://localhost/"], "Interval": 90 * S, "Timeout": 5 * S,
        "StartPeriod": 20 * S, "Retries": 4}}),
    "onbuild-child": Case(
        parent="onbuild", files={"payload.txt": b"payload\n"}, env={"A": "1"}, unset=["OnBuild"],
        tree={"app/payload.txt": ("f", F644, 0, 0, b"payload\n")}, log=["triggered\n", "A=1\n"],
        history=["/bin/sh -c #(nop)  ENV A=1", '/bin/sh -c test -f /app/payload.txt && echo "A=$A"']),
    "shell-forms": Case(
        config={"Shell": ["/bin/sh", "-xc"], "Cmd": ["/bin/sh", "-xc", "echo from cmd"],
                "Entrypoint": ["/bin/sh", "-xc", "echo from entrypoint"],
                "Healthcheck": {"Test": ["CMD-SHELL", "echo healthy"]}},
        # -x traces "+ echo traced" on stderr, relayed apart from stdout: the shell may write "+ "
        # and the rest in two writes, with stdout's "traced" between them (dockerd likewise)
        log=["echo traced\n", "traced\n"],
        history=['/bin/sh -xc #(nop)  CMD ["/bin/sh" "-xc" "echo from cmd"]',
                 '/bin/sh -xc #(nop)  ENTRYPOINT ["/bin/sh" "-xc" "echo from entrypoint"]']),
    "entrypoint-resets-cmd": Case(config={"Entrypoint": ["echo"]}, unset=["Cmd"],
                                  history=['/bin/sh -c #(nop)  ENTRYPOINT ["echo"]']),
    "label-inherit": Case(config={"Labels": {"a": "2", "b": "1", "c": "3"}}, new_layers=0),
    "copy-glob-dirs": Case(
        files={"d1/one": b"1", "d2/two": b"2", "d2/sub/three": b"3", "dfile": b"f", "x.txt": b"x", "y.txt": b"y",
               "z.md": b"z"},
        tree={"out/one": ("f", F644, 0, 0, b"1"), "out/two": ("f", F644, 0, 0, b"2"),
              "out/sub/three": ("f", F644, 0, 0, b"3"), "out/dfile": ("f", F644, 0, 0, b"f"),
              "txt/x.txt": ("f", F644, 0, 0, b"x"), "txt/y.txt": ("f", F644, 0, 0, b"y")},
        absent=["out/d1", "out/d2", "txt/z.md"]),
    "copy-chown-dir": Case(
        files={"tree/a": b"a", "tree/sub/b": b"b"},
        tree={"owned": ("d", 0o755, 123, 456), "owned/a": ("f", F644, 123, 456, b"a"),
              "owned/sub": ("d", 0o755, 123, 456), "owned/sub/b": ("f", F644, 123, 456, b"b")}),
    "copy-into-existing-dir": Case(
        files={"a": b"A"}, tree={"existing/a": ("f", F644, 0, 0, b"A"), "newname": ("f", F644, 0, 0, b"A")},
        absent=["existing/existing"]),
    "arg-from-override": Case(build_args={"BASE": "busybox"}, tree={"base": ("f", F644, 0, 0, b"base=busybox\n")},
                              history=['|1 BASE=busybox /bin/sh -c echo "base=$BASE" > /base']),
    "env-in-copy-dest": Case(
        files={"a": b"A"}, config={"WorkingDir": "/srv/app"},
        tree={"srv/app/a": ("f", F644, 0, 0, b"A"), "srv/app/conf.txt": ("f", F644, 0, 0, b"A")}),
    "user-named-run": Case(  # www-data is 33:33 in the base's /etc/passwd; RUN resolves it there
        config={"User": "www-data"},
        tree={"out/id": ("f", F644, 33, 33, b"33\n33\n"),
              "out/mine": ("f", F644, 33, 33, b"")}),
})
