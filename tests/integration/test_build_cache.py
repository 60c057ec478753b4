"""The build cache (10-step rebuild, touch vs change, restart, --no-cache, prune) and
reproducible builds under SOURCE_DATE_EPOCH."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.engine.builds import BuildService
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from tests.integration.build_support import Lab, lab_for_test, open_lab

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


@pytest.fixture
def lab(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Lab]:
    yield from lab_for_test(tmp_path, busybox_rootfs_tar)

TEN_STEPS = """FROM busybox
ENV A=1
RUN echo one > /one
COPY f1 /f1
LABEL l=1
COPY f2 /f2
RUN cat /f1 /f2 > /both
WORKDIR /w
EXPOSE 80
CMD ["cat", "/both"]
"""


def make_ctx(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "f1").write_text("first\n")
    (root / "f2").write_text("second\n")
    return root


def test_cache_hits_touch_and_change(lab: Lab, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path / "ctx")
    first = lab.build(ctx, TEN_STEPS).image_id
    assert "Using cache" not in lab.text
    assert lab.build(ctx, TEN_STEPS).image_id == first
    assert lab.text.count(" ---> Using cache") == 9  # every step but FROM
    os.utime(ctx / "f1", (1, 1))  # touched, same content: still cached
    assert lab.build(ctx, TEN_STEPS).image_id == first
    assert lab.text.count(" ---> Using cache") == 9
    (ctx / "f2").write_text("changed\n")  # step 6 on misses
    changed = lab.build(ctx, TEN_STEPS).image_id
    assert changed != first
    assert lab.text.count(" ---> Using cache") == 4
    assert "Step 5/10 : LABEL l=1\n ---> Using cache" in lab.text
    assert "Step 6/10 : COPY f2 /f2\n ---> Using cache" not in lab.text
    assert any("changed: sources" in d for d in lab.debug), lab.debug
    # --no-cache runs everything again
    lab.build(ctx, TEN_STEPS, no_cache=True)
    assert "Using cache" not in lab.text
    # the cache survives a restart: a new store and cache on the same data root
    lab.close()
    again = open_lab(lab.root, None)
    try:
        again.build(ctx, TEN_STEPS)
        assert again.text.count(" ---> Using cache") == 9
        # builder prune drops the cached intermediate images and their rows
        service = BuildService(again.store, again.store.db, EventBus(), state_dir=again.root / "bs")
        removed, _ = service.prune()
        assert removed
        assert not again.cache.image_ids() - {i.id for i in again.store.list() if i.repo_tags}
        again.build(ctx, TEN_STEPS)
        assert "Using cache" not in again.text
    finally:
        again.close()


def test_reproducible_with_source_date_epoch(tmp_path: Path, busybox_rootfs_tar: Path) -> None:
    dockerfile = "FROM busybox\nCOPY app /app\nRUN echo built > /app/out && mkdir /made\nENV V=1\n"
    ids = []
    for n, (umask, mtime) in enumerate([(0o022, 1_700_000_000), (0o002, 1_710_000_000)]):
        ctx = tmp_path / f"ctx{n}"
        old = os.umask(umask)
        try:
            (ctx / "app" / "sub").mkdir(parents=True)
            (ctx / "app" / "sub" / "x.txt").write_text("x\n")
            (ctx / "app" / "run.sh").write_text("#!/bin/sh\n")
            os.chmod(ctx / "app" / "run.sh", 0o777 & ~umask)
        finally:
            os.umask(old)
        for p in [ctx / "app", ctx / "app" / "sub", ctx / "app" / "sub" / "x.txt", ctx / "app" / "run.sh"]:
            os.utime(p, (mtime, mtime))
        lab = open_lab(tmp_path / f"root{n}", busybox_rootfs_tar if n == 0 else None)
        try:
            images = ImageService(lab.store, EventBus())
            if n == 0:  # the same base image in both data roots
                with open(tmp_path / "base.tar", "wb") as f:
                    images.save(["busybox"], f)
            else:
                with open(tmp_path / "base.tar", "rb") as f:
                    images.load(f)
            ids.append(lab.build(ctx, dockerfile, build_args={"SOURCE_DATE_EPOCH": "1600000000"}).image_id)
            created = lab.store.get(ids[-1]).config["created"]
            assert created == "2020-09-13T12:26:40Z"
        finally:
            lab.close()
        shutil.rmtree(ctx)
        time.sleep(1.1)  # built at different wall-clock times
    assert ids[0] == ids[1]


def test_cache_from_a_loaded_image(lab: Lab, tmp_path: Path) -> None:
    """An image built elsewhere (saved, then loaded into a fresh data root) serves as the
    cache of the same build with --cache-from: every step is reused, the result is the same."""
    ctx = make_ctx(tmp_path / "ctx")
    built = lab.build(ctx, TEN_STEPS, tags=["app:1"]).image_id
    with open(tmp_path / "app.tar", "wb") as f:
        ImageService(lab.store, EventBus()).save(["app:1"], f)
    other = open_lab(tmp_path / "other", None)
    try:
        with open(tmp_path / "app.tar", "rb") as f:
            ImageService(other.store, EventBus()).load(f)
        busybox = lab.store.get("busybox")
        with open(tmp_path / "busybox.tar", "wb") as f:
            ImageService(lab.store, EventBus()).save(["busybox"], f)
        with open(tmp_path / "busybox.tar", "rb") as f:
            ImageService(other.store, EventBus()).load(f)
        assert other.store.get("busybox").id == busybox.id
        result = other.build(ctx, TEN_STEPS, cache_from=["app:1"]).image_id
        assert other.text.count(" ---> Using cache") == 9, other.text
        assert result == built
        other.build(ctx, TEN_STEPS.replace("EXPOSE 80", "EXPOSE 81"), cache_from=["app:1"])
        assert other.text.count(" ---> Using cache") == 7
    finally:
        other.close()
