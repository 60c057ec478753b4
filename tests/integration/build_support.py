"""Shared set-up of the builder's integration tests: a store with busybox, a backend, a builder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sampan.build.builder import Builder, BuildOptions, BuildResult
from sampan.build.cache import BuildCache
from sampan.build.runserver import RunServer
from sampan.build.runtime_backend import RuntimeBackend
from sampan.image.store import ImageStore
from sampan.storage.db import Database


@dataclass
class Lab:
    root: Path
    store: ImageStore
    backend: RuntimeBackend
    cache: BuildCache
    log: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)

    def build(self, context: Path, dockerfile: str, **kw: object) -> BuildResult:
        self.log.clear()
        self.debug.clear()
        b = Builder(self.backend, self.cache, log=self.log.append, debug=self.debug.append)
        return b.build(context, BuildOptions(dockerfile=dockerfile, **kw))  # type: ignore[arg-type]

    def close(self) -> None:
        if self.backend.runner is not None:
            self.backend.runner.close()
        self.store.db.close()

    @property
    def text(self) -> str:
        return "".join(self.log)


def open_lab(root: Path, busybox_tar: Path | None) -> Lab:
    root.mkdir(parents=True, exist_ok=True)
    db = Database.open(root / "sampan.db")
    store = ImageStore.open(root, db=db)
    if busybox_tar is not None:
        with open(busybox_tar, "rb") as f:
            store.import_rootfs(f, reference="busybox", changes=['CMD ["sh"]'])
    backend = RuntimeBackend(store, state_dir=root / "build-state", runner=RunServer())
    return Lab(root, store, backend, BuildCache(db))


def lab_for_test(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Lab]:
    """The body of each test module's ``lab`` fixture."""
    lab = open_lab(tmp_path / "data", busybox_rootfs_tar)
    try:
        yield lab
    finally:
        lab.close()
