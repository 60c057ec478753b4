"""Corpus Dockerfiles built by sampan, checked against HAND-WRITTEN expectations.

The cases (``build_corpus_cases.py``) name a file of ``tests/corpus/dockerfiles``, the build
context it needs, and what Docker's documented semantics say the image holds: config fields
(Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, Healthcheck,
StopSignal, OnBuild, Shell, and Author from MAINTAINER), files (type, mode, owner, content,
symlink or hard-link target, over all layers with whiteouts applied) and history (the legacy
builder's ``created_by``).  Nothing here was recorded from sampan's output.  The context goes
the way ``docker build DIR`` sends it: a tar honouring ``.dockerignore``, unpacked for the
builder.  Comparisons with ``DOCKER_BUILDKIT=0 docker build`` on dockerd are the peers phase's.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.build.context import (
    keep_build_files,
    load_excludes,
    read_context_tar,
    remove_ignored_build_files,
    write_context_tar,
)
from tests.integration.build_corpus_cases import CASES, CORPUS, PARENT_TAG, Case, write_context
from tests.integration.build_support import Lab, lab_for_test

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


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


def sent_context(tmp_path: Path, case: Case) -> Path:
    """The context as the builder receives it from ``docker build``: written (in
    ``tmp_path/src``, what the peers test gives docker), sent as a tar (``.dockerignore``
    applied, the ignore file kept for the daemon), unpacked, and the ignore file removed when
    it excludes itself."""
    src, sent = tmp_path / "src", tmp_path / "ctx"
    src.mkdir()
    sent.mkdir()
    write_context(src, case.files)
    body = io.BytesIO()
    write_context_tar(src, body, excludes=keep_build_files(load_excludes(src), "Dockerfile"))
    body.seek(0)
    read_context_tar(body, sent)
    remove_ignored_build_files(sent)
    return sent


def image_tree(lab: Lab, image_id: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """The image's files: the layers applied in order, whiteouts and opaque dirs honoured."""
    tree: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for layer in lab.store.get(image_id).layers:
        added: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
        gone: list[str] = []  # prefixes of entries of the lower layers to drop
        with lab.store.content.open(layer.blob) as f, tarfile.open(fileobj=f) as tar:
            for m in tar.getmembers():
                name = m.name.rstrip("/").removeprefix("./")
                parent, base = os.path.split(name)
                if base == ".wh..wh..opq":
                    gone.append(parent + "/")
                elif base.startswith(".wh."):
                    target = os.path.join(parent, base[4:])
                    gone += [target + "/", target]
                else:
                    data = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                    added[name] = (m, data)
        tree = {k: v for k, v in tree.items() if not any(k == g or (g.endswith("/") and k.startswith(g)) for g in gone)}
        tree.update(added)
    return tree


def check_tree(lab: Lab, image_id: str, case: Case) -> None:
    tree = image_tree(lab, image_id)
    for path, spec in case.tree.items():
        assert path in tree, (path, sorted(tree)[:50])
        info, data = tree[path]
        if spec[0] == "d":
            assert info.isdir() and info.mode == spec[1], (path, oct(info.mode))
            if len(spec) > 2:
                assert (info.uid, info.gid) == spec[2:4], (path, info.uid, info.gid)
        elif spec[0] == "l":
            assert info.issym() and info.linkname == spec[1], (path, info.type, info.linkname)
        elif spec[0] == "h":
            assert info.islnk() and info.linkname.removeprefix("./") == spec[1], (path, info.type, info.linkname)
        else:
            assert info.isfile() and (info.mode, info.uid, info.gid) == spec[1:4], \
                (path, info.type, oct(info.mode), info.uid, info.gid)
            if spec[4] is not None:
                assert data == spec[4], (path, data)
    for path in case.absent:
        assert path not in tree, path


def build_parent(lab: Lab, tmp_path: Path, name: str) -> None:
    ctx = tmp_path / "parent-ctx"
    ctx.mkdir()
    lab.build(ctx, (CORPUS / f"{name}.Dockerfile").read_bytes(), tags=[PARENT_TAG], no_cache=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(lab: Lab, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    if case.parent:
        build_parent(lab, tmp_path, case.parent)
    ctx = sent_context(tmp_path, case)
    text = (CORPUS / f"{name}.Dockerfile").read_bytes()
    base_layers = len(lab.store.get("busybox").layers) if b"FROM scratch" not in text else 0
    result = lab.build(ctx, text, build_args=case.build_args, target=case.target, no_cache=True)  # type: ignore[arg-type]
    image = lab.store.get(result.image_id)
    config = image.config["config"]
    for key, value in case.config.items():
        assert config.get(key) == value, (key, config.get(key))
    for key in case.unset:
        assert not config.get(key), (key, config.get(key))
    env = dict(e.partition("=")[::2] for e in config.get("Env") or [])
    for key, value in case.env.items():
        assert env.get(key) == value, (key, env)
    for key in case.env_absent:
        assert key not in env, (key, env)
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
        check_tree(lab, result.image_id, case)
