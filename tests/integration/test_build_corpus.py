"""Corpus Dockerfiles built by sampan, checked against HAND-WRITTEN expectations.

Each case names a file of ``tests/corpus/dockerfiles``, the build context it needs, and what
Docker's documented semantics say the image holds: config fields (Env, Cmd, Entrypoint,
WorkingDir, User, ExposedPorts, Volumes, Labels, Healthcheck, StopSignal, OnBuild, Shell, and
Author from MAINTAINER), files (type, mode, owner, content or link target) and history
(the legacy builder's ``created_by``).  Nothing here was recorded from sampan's output.
Comparisons with ``DOCKER_BUILDKIT=0 docker build`` on dockerd are the peers phase's.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.build_support import Lab, lab_for_test

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]
CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "dockerfiles"
S = 1_000_000_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs_tar: Path) -> Iterator[Lab]:
    yield from lab_for_test(tmp_path_factory.mktemp("corpus"), busybox_rootfs_tar)


@pytest.fixture(autouse=True)
def own_run_server(lab: Lab) -> Iterator[None]:
    """A run server per test (the leak checker counts processes per test)."""
    from sampan.build.runserver import RunServer

    lab.backend.runner = RunServer()
    try:
        yield
    finally:
        lab.backend.runner.close()


@dataclass
class Case:
    files: dict[str, bytes | tuple[bytes, int]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # entries that must be in Env
    tree: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # path -> ("f", mode, uid, gid, data) | ("d", mode) | ("l", target)
    absent: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # created_by of the last entries, in order
    log: list[str] = field(default_factory=list)
    author: str | None = None
    new_layers: int | None = None
    build_args: dict[str, str] = field(default_factory=dict)


F644 = 0o644
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
    "add-flags": Case(files={"file.txt": (b"f", 0o600), "archive.tar": b"TAR"},
                      tree={"dst/file.txt": ("f", 0o644, 1000, 1000, b"f"), "unpacked/inner/x": ("f", 0o640, 0, 0, b"x")}),
}


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("inner/x")
        info.size, info.mode = 1, 0o640
        tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def image_tree(lab: Lab, image_id: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    tree: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for layer in lab.store.get(image_id).layers:
        with lab.store.content.open(layer.blob) as f, tarfile.open(fileobj=f) as tar:
            for m in tar.getmembers():
                name = m.name.rstrip("/")
                base = os.path.basename(name)
                if base.startswith(".wh."):
                    gone = os.path.join(os.path.dirname(name), base[4:])
                    tree = {k: v for k, v in tree.items() if k != gone and not k.startswith(gone + "/")}
                    continue
                data = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                tree[name] = (m, data)
    return tree


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(lab: Lab, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    files = dict(case.files)
    if "archive.tar" in files:
        files["archive.tar"] = _tar_bytes()
    for rel, spec in files.items():
        data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_bytes(data)
        os.chmod(ctx / rel, mode)
    text = (CORPUS / f"{name}.Dockerfile").read_bytes()
    base_layers = len(lab.store.get("busybox").layers)
    image_id = lab.build(ctx, text, build_args=case.build_args).image_id  # type: ignore[arg-type]
    image = lab.store.get(image_id)
    config = image.config["config"]
    for key, value in case.config.items():
        assert config.get(key) == value, (key, config.get(key))
    env = dict(e.partition("=")[::2] for e in config.get("Env") or [])
    for key, value in case.env.items():
        assert env.get(key) == value, (key, env)
    if case.author is not None:
        assert image.config.get("author") == case.author
    if case.new_layers is not None:
        assert len(image.layers) - base_layers == case.new_layers
    if case.history:
        got = [h.get("created_by", "") for h in image.config["history"]][-len(case.history):]
        assert got == case.history
    for piece in case.log:
        assert piece in lab.text, lab.text
    if case.tree or case.absent:
        tree = image_tree(lab, image_id)
        for path, spec in case.tree.items():
            assert path in tree, (path, sorted(tree)[:50])
            info, data = tree[path]
            if spec[0] == "d":
                assert info.isdir() and info.mode == spec[1], (path, oct(info.mode))
            elif spec[0] == "l":
                assert info.issym() and info.linkname == spec[1]
            else:
                assert info.isfile() and (info.mode, info.uid, info.gid) == spec[1:4], (path, oct(info.mode), info.uid, info.gid)
                if spec[4] is not None:
                    assert data == spec[4]
        for path in case.absent:
            assert path not in tree
