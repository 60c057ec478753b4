"""The builder: a parsed Dockerfile and a context directory to an image, step by step.

For each stage needed by the target (``--target``, else the last; a stage is needed when the
target's FROM or a ``COPY --from`` names it, transitively; other stages are skipped), the
builder runs its steps the way the legacy builder does and prints its text
(``Step 3/5 : RUN ...``, `` ---> Running in <id>``, `` ---> Using cache``, `` ---> <id>``):

* every step produces an image (the legacy builder's intermediate images: untagged, with
  the previous step's image as parent); metadata steps (ENV, CMD, LABEL, ...) change only the
  config and add an ``empty_layer`` history entry; RUN, COPY, ADD and WORKDIR run in a *work*
  of the backend and commit one layer (none when nothing changed);
* before a step runs, the cache (``cache.py``) is asked for an image with the same parent and
  key; a hit reuses it (`` ---> Using cache``), a miss logs why at debug level;
* independent stages run in parallel threads; a stage waits for the stages it depends on;
* ONBUILD triggers of a base image run right after its FROM;
* with ``source_date_epoch`` the config's ``created``, the history times and every mtime in
  the layers are clamped to it, and COPY normalizes modes (see ``copy.py``): the same context
  and Dockerfile give the same image ID wherever and whenever they are built.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sampan.build import instructions as ins
from sampan.build.backend import BaseImage, BuildBackend, BuildSession, Resources
from sampan.build.cache import BuildCache, StepKey
from sampan.build.dockerfile import Dockerfile, parse_dockerfile
from sampan.build.expansion import resolve_meta_args
from sampan.build.stage import BuildFailed, PlannedStage, StageRun, stage_ref
from sampan.errors import InvalidArgument

__all__ = ["BuildFailed", "BuildOptions", "BuildResult", "Builder"]

Log = Callable[[str], None]


@dataclass
class BuildOptions:
    dockerfile: str | bytes
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    cache_from: list[str] = field(default_factory=list)
    network: str = "bridge"
    resources: Resources = field(default_factory=Resources)
    extra_hosts: list[str] = field(default_factory=list)
    platform: str = ""
    source_date_epoch: int | None = None


@dataclass
class BuildResult:
    image_id: str
    tags: list[str]


class Builder:
    """Builds images through a :class:`BuildBackend`; ``log`` receives the build's text."""

    def __init__(self, backend: BuildBackend, cache: BuildCache | None, *, log: Log,
                 debug: Log | None = None, on_built: Log | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.backend = backend
        self.on_built = on_built
        self.cancelled = cancelled or (lambda: False)
        self.cache = cache
        self.log = log
        self.debug = debug or (lambda _m: None)
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            self.log(text)

    # ------------------------------------------------------------ planning

    def build(self, context: Path, opts: BuildOptions) -> BuildResult:
        df = parse_dockerfile(opts.dockerfile)
        if not df.stages:
            raise InvalidArgument("the Dockerfile (Dockerfile) cannot be empty")
        sde = opts.source_date_epoch
        if sde is None and "SOURCE_DATE_EPOCH" in opts.build_args:
            try:
                sde = int(opts.build_args["SOURCE_DATE_EPOCH"])
            except ValueError:
                raise InvalidArgument("SOURCE_DATE_EPOCH must be an integer") from None
        target = df.stage(opts.target) if opts.target else df.stages[-1]
        if opts.labels:
            text = " ".join(f'"{k}"="{v}"' for k, v in sorted(opts.labels.items()))
            target.instructions.append(ins.Label(
                labels=[ins.KeyValue(k, v) for k, v in sorted(opts.labels.items())],
                original=f"LABEL {text}", line=0))
        plan = self._plan(df, target)
        total = sum(1 + len(p.stage.instructions) for p in plan.values())
        metas = resolve_meta_args(df.meta_args, opts.build_args, df.escape)
        with self.backend.session() as session:
            run = _Run(self, session, df, opts, context, metas, total, plan, sde)
            try:
                image = run.all(target.index)
            finally:
                if self.cache is not None:
                    self.cache.touch(run.hits)
            if not image.id:
                raise InvalidArgument("no image was built: the target stage is empty (FROM scratch)")
            unused = sorted(k for k in opts.build_args if k not in run.consumed and k != "SOURCE_DATE_EPOCH")
            if unused:
                self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
            if self.on_built is not None:
                self.on_built(image.id)
            self.say(f"Successfully built {image.id[7:19]}\n")
            session.tag(image.id, opts.tags)
            for tag in opts.tags:
                self.say(f"Successfully tagged {_familiar(tag)}\n")
        return BuildResult(image.id, list(opts.tags))

    def _plan(self, df: Dockerfile, target: ins.Stage) -> dict[int, PlannedStage]:
        deps: dict[int, set[int]] = {}
        for st in df.stages:
            d: set[int] = set()
            base = stage_ref(df, st.base, st.index)
            if base is not None:
                d.add(base)
            for step in st.instructions:
                if isinstance(step, ins.Copy) and step.from_:
                    ref = stage_ref(df, step.from_, st.index)
                    if ref is not None:
                        d.add(ref)
            deps[st.index] = d
        needed: set[int] = set()
        todo = [target.index]
        while todo:
            i = todo.pop()
            if i not in needed:
                needed.add(i)
                todo += deps[i]
        plan: dict[int, PlannedStage] = {}
        number = 1
        for st in df.stages:
            if st.index in needed:
                plan[st.index] = PlannedStage(st, number, deps[st.index])
                number += 1 + len(st.instructions)
        return plan


def _familiar(tag: str) -> str:
    from sampan.image.reference import parse

    return parse(tag).familiar()


class _Run:
    """One build: the stages' threads and their results."""

    def __init__(self, b: Builder, session: BuildSession, df: Dockerfile, opts: BuildOptions,
                 context: Path, metas: dict[str, str], total: int, plan: dict[int, PlannedStage],
                 sde: int | None) -> None:
        self.b, self.session, self.df, self.opts = b, session, df, opts
        self.context, self.metas, self.total, self.plan, self.sde = context, metas, total, plan, sde
        self.consumed: set[str] = set(k for k in metas if k in opts.build_args)
        self.futures: dict[int, concurrent.futures.Future[BaseImage]] = {}
        self.cache_sources = [session.image(name) for name in opts.cache_from]
        self.hits: list[StepKey] = []  # cache entries used (touched once, at the end)

    def all(self, target: int) -> BaseImage:
        if len(self.plan) == 1:
            return StageRun(self, self.plan[target]).run()
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.plan)) as pool:
            for index in sorted(self.plan):
                self.futures[index] = pool.submit(self._stage, index)
            try:
                return self.futures[target].result()
            except BaseException:
                for f in self.futures.values():
                    f.cancel()
                raise

    def _stage(self, index: int) -> BaseImage:
        for dep in self.plan[index].deps:
            self.futures[dep].result()
        return StageRun(self, self.plan[index]).run()

    def stage_result(self, index: int) -> BaseImage:
        return self.futures[index].result()
