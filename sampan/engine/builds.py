"""The engine's build service: a context tar in, an image out (``POST /build``).

The context is unpacked into ``<data-root>/tmp/build-*`` with the storage layer's safe
extractor, the Dockerfile is located in it as the legacy builder does, and the builder runs
against the :class:`~sampan.build.runtime_backend.RuntimeBackend` (RUN steps in runtime
children, bundles and mounts under ``<exec-root>/build``).  The cache rows live in
``sampan.db`` (``build/cache.py``); ``prune`` removes the untagged intermediate images the
cache names and forgets them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sampan import errors
from sampan.build.builder import Builder, BuildOptions, BuildResult
from sampan.build.cache import BuildCache
from sampan.build.context import locate_dockerfile, read_context_tar, remove_ignored_build_files
from sampan.build.runtime_backend import RuntimeBackend
from sampan.engine.events import EventBus
from sampan.image.store import ImageStore
from sampan.storage.db import Database

Log = Callable[[str], None]


@dataclass
class CacheUsage:
    entries: int
    size: int


@dataclass
class CacheRecord:
    """One cached step, as ``system df`` lists build cache (Docker's BuildCache records)."""

    id: str
    parent: str
    description: str
    size: int
    created: float
    last_used: float


class BuildService:
    def __init__(self, store: ImageStore, db: Database, events: EventBus, *, state_dir: Path) -> None:
        self.store = store
        self.events = events
        self.cache = BuildCache(db)
        self.backend = RuntimeBackend(store, state_dir=state_dir)
        self.backend.reconcile()

    def build(self, body: BinaryIO, opts: BuildOptions, *, dockerfile: str = "", log: Log,
              debug: Log | None = None, on_built: Log | None = None) -> BuildResult:
        tmp = self.store.data_root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        context = Path(tempfile.mkdtemp(prefix="build-", dir=tmp))
        try:
            read_context_tar(body, context)
            path = locate_dockerfile(context, dockerfile)
            opts.dockerfile = path.read_bytes()
            remove_ignored_build_files(context, str(path.relative_to(context)))
            builder = Builder(self.backend, self.cache, log=log, debug=debug, on_built=on_built)
            result = builder.build(context, opts)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        for tag in result.tags:
            self.events.publish("image", "tag", result.image_id, {"name": tag})
        return result

    def usage(self) -> CacheUsage:
        ids = self.cache.image_ids()
        size = 0
        for image_id in ids:
            try:
                image = self.store.get(image_id)
            except errors.NotFound:
                continue
            if not image.repo_tags and image.layers:
                size += image.layers[-1].size
        return CacheUsage(len(self.cache.entries()), size)

    def records(self) -> list[CacheRecord]:
        """Every cached step whose image still exists; the size is the layer the step made."""
        out: list[CacheRecord] = []
        for entry in self.cache.entries():
            try:
                image = self.store.get(entry.image_id)
            except errors.NotFound:
                continue
            history = image.config.get("history") or [{}]
            made_layer = not history[-1].get("empty_layer") and image.layers
            out.append(CacheRecord(
                id=entry.key[:25], parent=image.parent, description=str(history[-1].get("created_by") or ""),
                size=image.layers[-1].size if made_layer else 0, created=entry.created,
                last_used=entry.last_used,
            ))
        return out

    def prune(self, *, all: bool = False) -> tuple[list[str], int]:
        """Remove the untagged images the cache names (and their cache rows); return the
        removed image IDs and the bytes freed."""
        before = self.store.disk_usage().layers_size
        removed: list[str] = []
        gone: set[str] = set()
        pending = set(self.cache.image_ids())
        progress = True
        while pending and progress:  # children before parents: retry until nothing moves
            progress = False
            for image_id in sorted(pending):
                try:
                    image = self.store.get(image_id)
                except errors.NotFound:
                    gone.add(image_id)
                    pending.discard(image_id)
                    progress = True
                    continue
                if image.repo_tags:
                    pending.discard(image_id)
                    if all:
                        gone.add(image_id)
                    continue
                try:
                    items = self.store.remove(image_id, prune=False)
                except errors.SampanError:
                    continue
                removed += [item["Deleted"] for item in items if "Deleted" in item]
                gone.add(image_id)
                pending.discard(image_id)
                progress = True
        self.cache.drop_images(gone)
        after = self.store.disk_usage().layers_size
        return removed, max(0, before - after)
