"""The engine's build service: a context tar in, an image out (``POST /build``).

The context is unpacked into ``<data-root>/tmp/build-*`` with the storage layer's safe
extractor, the Dockerfile is located in it as the legacy builder does, and the builder runs
against the :class:`~sampan.build.runtime_backend.RuntimeBackend` (RUN steps in runtime
children, bundles and mounts under ``<exec-root>/build``).  The cache rows live in
``sampan.db`` (``build/cache.py``); ``prune`` removes the untagged intermediate images the
cache names and forgets them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sampan import errors
from sampan.build.backend import StepNetwork
from sampan.build.builder import Builder, BuildOptions, BuildResult
from sampan.build.cache import BuildCache
from sampan.build.context import locate_dockerfile, read_context_tar, remove_ignored_build_files
from sampan.build.remote import fetch_context
from sampan.build.runserver import RunServer
from sampan.build.runtime_backend import Puller, RuntimeBackend
from sampan.distribution.auth import Credentials
from sampan.engine.events import EventBus
from sampan.engine.network_sandbox import AttachRequest
from sampan.image.reference import DEFAULT_DOMAIN
from sampan.image.reference import parse as parse_reference
from sampan.image.store import ImageStore
from sampan.storage.db import Database

if TYPE_CHECKING:
    from sampan.engine.distribution import DistributionService
    from sampan.engine.networks import NetworkService

Log = Callable[[str], None]
_log = logging.getLogger("sampan.build")


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
    def __init__(self, store: ImageStore, db: Database, events: EventBus, *, state_dir: Path,
                 distribution: DistributionService | None = None, network: StepNetwork | None = None) -> None:
        self.network = network
        self.store = store
        self.events = events
        self.cache = BuildCache(db)
        self.state_dir = state_dir
        self.distribution = distribution
        self.runner = RunServer()
        RuntimeBackend(store, state_dir=state_dir).reconcile()

    def close(self) -> None:
        self.runner.close()

    def _puller(self, auths: dict[str, Credentials]) -> Puller | None:
        """Pulls through the registry client with the build's ``X-Registry-Config`` credentials."""
        distribution = self.distribution
        if distribution is None:
            return None

        def pull(name: str, say: Callable[[str], None]) -> None:
            domain = parse_reference(name).domain
            keys = [domain, f"https://{domain}", f"http://{domain}"]
            if domain == DEFAULT_DOMAIN:
                keys += ["https://index.docker.io/v1/", "index.docker.io"]
            credentials = next((auths[k] for k in keys if k in auths), Credentials())

            def progress(msg: dict[str, Any]) -> None:
                status = str(msg.get("status") or "")
                if status and not (msg.get("progressDetail") or {}).get("current"):
                    ident = str(msg.get("id") or "")
                    say(f"{ident}: {status}\n" if ident else f"{status}\n")

            distribution.pull(name, credentials=credentials, on_progress=progress)

        return pull

    def build(self, body: BinaryIO, opts: BuildOptions, *, dockerfile: str = "", log: Log,
              debug: Log | None = None, on_built: Log | None = None,
              registry_auths: dict[str, Credentials] | None = None,
              cancelled: Callable[[], bool] | None = None, remote: str = "") -> BuildResult:
        """Build the context tar ``body``.  ``cancelled`` (the client went away) is looked at
        before each step and every 0.1 s while a RUN step runs: the step is killed and the
        build fails with Unavailable, having committed and cached nothing of that step."""
        tmp = self.store.data_root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        context = Path(tempfile.mkdtemp(prefix="build-", dir=tmp))
        try:
            if remote:  # POST /build?remote=URL: the daemon fetches the context (body unused)
                dockerfile = fetch_context(remote, context, dockerfile=dockerfile, scratch=tmp, log=log)
            else:
                read_context_tar(body, context)
            path = locate_dockerfile(context, dockerfile)
            opts.dockerfile = path.read_bytes()
            remove_ignored_build_files(context, str(path.relative_to(context)))
            backend = RuntimeBackend(self.store, state_dir=self.state_dir,
                                     puller=self._puller(registry_auths or {}), runner=self.runner,
                                     network=self.network, cancelled=cancelled)
            builder = Builder(backend, self.cache, log=log, debug=debug or _log.debug, on_built=on_built,
                              cancelled=cancelled)
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


class BridgeSteps:
    """The :class:`~sampan.build.backend.StepNetwork` the daemon gives builds: each RUN step's
    network namespace gets an endpoint on the default bridge network, as Docker's builder runs
    steps (NAT to the outside; ``docker build --network host|none`` choose otherwise)."""

    def __init__(self, networks: NetworkService) -> None:
        self.networks = networks

    def attach(self, step_id: str, network: str = "bridge") -> Path:
        sandbox = self.networks.setup(step_id, name=f"build-{step_id[:12]}", requests=[AttachRequest(network)])
        return sandbox.netns

    def detach(self, step_id: str) -> None:
        self.networks.teardown(step_id)
