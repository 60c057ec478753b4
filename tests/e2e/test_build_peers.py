"""Corpus Dockerfiles built by sampan and by ``DOCKER_BUILDKIT=0 docker build`` on the peers'
dockerd, compared: config fields, author, the history the Dockerfile added, and the files of
the layers it added (paths, types, modes, owners, contents, link targets).

Only cases the legacy builder supports (no heredocs, ``--chmod``, ``--checksum``, ``--link``,
``--exclude``, ``--parents``, ``RUN --mount``, ``${VAR-default}``) and that do not depend on the base image's
users.  The peer is ``$SAMPAN_PEER_DOCKER_HOST`` (default: ../shared/peers' dockerd); the test
is skipped when it does not answer or has no ``busybox`` image.  Image IDs, times and the
``COPY file:<hash>`` digests differ by design (sampan hashes contents its own way).
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

from tests.integration.build_support import Lab, lab_for_test
from tests.integration.test_build_corpus import CASES, CORPUS, _tar_bytes

DOCKER = shutil.which("docker")
PEER = os.environ.get("SAMPAN_PEER_DOCKER_HOST", "unix:///var/run/docker.sock")
ENV = {**os.environ, "DOCKER_HOST": PEER, "DOCKER_BUILDKIT": "0"}
LEGACY = ["copy-simple", "copy-dest-slash-rules", "copy-json", "add-json", "copy-chown-variable",
          "env-forms", "workdir", "volume-forms", "label-forms",
          "label-expansion", "cmd-forms", "entrypoint-forms", "onbuild", "stopsignal", "shell", "expose",
          "maintainer", "run-exec", "run-shell", "run-continuation", "lowercase-instructions",
          "arg-scope", "arg-before-from", "tutorial-mysql-like", "tutorial-web-app", "multistage-three",
          "from-scratch", "escape-backtick"]
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
                # Go's archive/tar (dockerd) keeps the file-type bits in the mode field; sampan's
                # LayerWriter writes permission bits only: compare permissions
                out[m.name.rstrip("/")] = (m.type, m.mode & 0o7777, m.uid, m.gid, body, m.linkname)
    return out


def _docker_build(ctx: Path, dockerfile: Path, tag: str) -> tuple[dict[str, Any], list[bytes], int]:
    r = subprocess.run([DOCKER or "docker", "build", "-q", "-f", str(dockerfile), "-t", tag, str(ctx)],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    base = json.loads(subprocess.run([DOCKER or "docker", "image", "inspect", "busybox"], env=ENV,
                                     capture_output=True, text=True).stdout)[0]
    saved = subprocess.run([DOCKER or "docker", "save", tag], env=ENV, capture_output=True, timeout=300).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [outer.extractfile(name).read() for name in manifest[0]["Layers"]]  # type: ignore[union-attr]
    subprocess.run([DOCKER or "docker", "rmi", "-f", tag], env=ENV, capture_output=True)
    return config, layers, len(base["RootFS"]["Layers"])


@pytest.mark.parametrize("name", LEGACY)
def test_same_as_docker_legacy_builder(lab: Lab, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for rel, spec in case.files.items():
        data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
        if rel == "archive.tar":
            data = _tar_bytes()
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_bytes(data)
        os.chmod(ctx / rel, mode)
    dockerfile = CORPUS / f"{name}.Dockerfile"
    theirs, their_layers, their_base = _docker_build(ctx, dockerfile, f"sampan-peers/{name}:1")
    image = lab.store.get(lab.build(ctx, dockerfile.read_bytes()).image_id)  # type: ignore[arg-type]
    ours = image.config
    our_base = len(lab.store.get("busybox").layers) if not name.startswith("from-scratch") else 0
    if name == "from-scratch":
        their_base = 0
    for field in FIELDS:
        mine, want = ours["config"].get(field), theirs["config"].get(field)
        if field == "Env":  # the bases' Env differ (PATH only on one side): compare what was added
            mine = [e for e in mine or [] if not e.startswith("PATH=")]
            want = [e for e in want or [] if not e.startswith("PATH=")]
        assert (mine or None) == (want or None), field
    assert ours.get("author", "") == theirs.get("author", "")
    n_ours = len(ours["history"]) - len(lab.store.get("busybox").config["history"]) if our_base else len(ours["history"])
    n_theirs = len(theirs["history"]) - (len(theirs["history"]) - n_ours)
    assert _norm_history(ours["history"][-n_ours:]) == _norm_history(theirs["history"][-n_theirs:])
    assert [bool(h.get("empty_layer")) for h in ours["history"][-n_ours:]] == \
        [bool(h.get("empty_layer")) for h in theirs["history"][-n_theirs:]]
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
