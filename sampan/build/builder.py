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
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sampan.build import copy as cp
from sampan.build import instructions as ins
from sampan.build.backend import BaseImage, BuildBackend, BuildSession, Resources, RunSpec
from sampan.build.cache import BuildCache, StepKey
from sampan.build.configsteps import ConfigState, command_of, nop, nop1, workdir_path
from sampan.build.dockerfile import Dockerfile, parse_dockerfile, parse_trigger
from sampan.build.expansion import (
    StageVariables,
    expand,
    resolve_meta_args,
    stage_base,
)
from sampan.build.users import chown_identity
from sampan.errors import InvalidArgument, NoSuchImage, NotImplementedFeature, SampanError
from sampan.image import config as cfg

Log = Callable[[str], None]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_METADATA = (ins.Env, ins.Label, ins.Cmd, ins.Entrypoint, ins.Expose, ins.Volume, ins.User,
             ins.StopSignal, ins.Maintainer, ins.Onbuild, ins.Healthcheck, ins.Shell)


class BuildFailed(InvalidArgument):
    """A step failed (a RUN's non-zero exit): the legacy builder's wording."""


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
    network: str = "host"
    resources: Resources = field(default_factory=Resources)
    extra_hosts: list[str] = field(default_factory=list)
    platform: str = ""
    source_date_epoch: int | None = None


@dataclass
class BuildResult:
    image_id: str
    tags: list[str]


@dataclass
class _Stage:
    stage: ins.Stage
    first_step: int
    deps: set[int]


class Builder:
    """Builds images through a :class:`BuildBackend`; ``log`` receives the build's text."""

    def __init__(self, backend: BuildBackend, cache: BuildCache | None, *, log: Log,
                 debug: Log | None = None, on_built: Log | None = None) -> None:
        self.backend = backend
        self.on_built = on_built
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
            for name in opts.cache_from:  # local images only: the cache already knows their steps
                session.image(name)
            run = _Run(self, session, df, opts, context, metas, total, plan, sde)
            image = run.all(target.index)
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

    def _plan(self, df: Dockerfile, target: ins.Stage) -> dict[int, _Stage]:
        deps: dict[int, set[int]] = {}
        for st in df.stages:
            d: set[int] = set()
            base = _stage_ref(df, st.base, st.index)
            if base is not None:
                d.add(base)
            for step in st.instructions:
                if isinstance(step, ins.Copy) and step.from_:
                    ref = _stage_ref(df, step.from_, st.index)
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
        plan: dict[int, _Stage] = {}
        number = 1
        for st in df.stages:
            if st.index in needed:
                plan[st.index] = _Stage(st, number, deps[st.index])
                number += 1 + len(st.instructions)
        return plan


def _familiar(tag: str) -> str:
    from sampan.image.reference import parse

    return parse(tag).familiar()


def _stage_ref(df: Dockerfile, name: str, before: int) -> int | None:
    wanted = name.lower()
    for st in reversed(df.stages[:before]):
        if st.name and st.name == wanted:
            return st.index
    if name.isdigit() and int(name) < before:
        return int(name)
    return None


def _created(sde: int | None) -> str:
    if sde is None:
        return cfg.now_rfc3339()
    return datetime.fromtimestamp(sde, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Run:
    """One build: the stages' threads and their results."""

    def __init__(self, b: Builder, session: BuildSession, df: Dockerfile, opts: BuildOptions,
                 context: Path, metas: dict[str, str], total: int, plan: dict[int, _Stage],
                 sde: int | None) -> None:
        self.b, self.session, self.df, self.opts = b, session, df, opts
        self.context, self.metas, self.total, self.plan, self.sde = context, metas, total, plan, sde
        self.consumed: set[str] = set(k for k in metas if k in opts.build_args)
        self.futures: dict[int, concurrent.futures.Future[BaseImage]] = {}

    def all(self, target: int) -> BaseImage:
        if len(self.plan) == 1:
            return _StageRun(self, self.plan[target]).run()
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
        return _StageRun(self, self.plan[index]).run()

    def stage_result(self, index: int) -> BaseImage:
        return self.futures[index].result()


class _StageRun:
    def __init__(self, run: _Run, plan: _Stage) -> None:
        self.r = run
        self.b = run.b
        self.s = run.session
        self.plan = plan
        self.step_no = plan.first_step
        self.image = BaseImage.scratch()
        self.state = ConfigState({})
        self.history: list[dict[str, Any]] = []
        self.vars: StageVariables

    # ------------------------------------------------------------ helpers

    def step_line(self, text: str) -> None:
        self.b.say(f"Step {self.step_no}/{self.r.total} : {text}\n")
        self.step_no += 1

    def resolve_base(self, name: str) -> BaseImage:
        if name.lower() == "scratch":
            return BaseImage.scratch()
        ref = _stage_ref(self.r.df, name, self.plan.stage.index)
        if ref is not None:
            return self.r.stage_result(ref)
        if self.r.opts.pull:
            return self.s.pull(name, output=self.b.say)
        try:
            return self.s.image(name)
        except NoSuchImage:
            return self.s.pull(name, output=self.b.say)

    def set_image(self, image: BaseImage) -> None:
        self.image = image
        self.state.config = dict(image.runtime_config)
        self.state.author = str(image.config.get("author") or "")
        self.history = list(image.config.get("history") or [])

    # ------------------------------------------------------------ stage

    def run(self) -> BaseImage:
        st = self.plan.stage
        self.step_line(st.original or f"FROM {st.base}")
        base = self.resolve_base(stage_base(st, self.r.metas, self.r.df.escape))
        self.set_image(base)
        self.b.say(f" ---> {base.id[7:19]}\n" if base.id else "")
        env = {k: v for k, _, v in (e.partition("=") for e in self.state.config.get("Env") or [])}
        self.vars = StageVariables(build_args=self.r.opts.build_args, meta_values=self.r.metas,
                                   env=env, escape=self.r.df.escape)
        triggers = list(self.state.config.get("OnBuild") or [])
        if triggers:
            self.state.config["OnBuild"] = None
            self.b.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for text in triggers:
                self.step(parse_trigger(text, line=st.line), numbered=False)
        for step in st.instructions:
            self.step(step)
        return self.image

    def step(self, step: ins.Instruction, *, numbered: bool = True) -> None:
        if numbered:
            self.step_line(step.original)
        try:
            self._step(step)
        except SampanError as exc:
            if step.line and not isinstance(exc, BuildFailed) and "line" not in exc.message:
                self.b.debug(f"Dockerfile line {step.line}: {exc.message}")
            raise

    def _step(self, step: ins.Instruction) -> None:
        if type(step).__name__ in ("Run", "Copy", "Add") or step.name in ins.EXPANDING_INSTRUCTIONS:
            step = expand(step, self.vars.visible(), self.r.df.escape)
        if isinstance(step, ins.Arg):
            self.vars.declare(step)
            self.r.consumed |= self.vars.consumed
        if isinstance(step, ins.Env):
            for kv in step.env:
                self.vars.env[kv.key] = kv.value
        if isinstance(step, ins.Run):
            self.run_step(step)
        elif isinstance(step, (ins.Copy, ins.Add)):
            self.copy_step(step)
        elif isinstance(step, ins.Workdir):
            self.workdir_step(step)
        elif isinstance(step, (*_METADATA, ins.Arg)):
            self.metadata_step(step)
        else:
            raise NotImplementedFeature(f"{step.name} is not supported by the builder")

    # ------------------------------------------------------------ cache + commit

    def cached(self, key: StepKey) -> bool:
        cache = self.b.cache
        if cache is None or self.r.opts.no_cache:
            return False
        image_id = cache.lookup(key)
        if image_id is not None:
            try:
                image = self.s.image(image_id)
            except NoSuchImage:
                cache.forget(key)
                image_id = None
            else:
                self.b.say(" ---> Using cache\n")
                self.set_image(image)
                self.b.say(f" ---> {image.id[7:19]}\n")
                return True
        self.b.debug(f"cache miss at step {self.step_no - 1}: {cache.why_missed(key)}")
        return False

    def finish(self, key: StepKey, created_by: str, layer: Any, *, empty: bool) -> None:
        created = _created(self.r.sde)
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if self.state.author:
            entry["author"] = self.state.author
        layers = list(self.image.layers)
        if empty or layer is None:
            entry["empty_layer"] = True
        else:
            layers.append(layer)
        history = [*self.history, entry]
        os_name, arch = cfg.host_platform_pair()
        base = self.image.config
        config: dict[str, Any] = {"architecture": base.get("architecture") or arch}
        if self.state.author:
            config["author"] = self.state.author
        config["config"] = _clean_config(self.state.config)
        config["created"] = created
        config["history"] = history
        config["os"] = base.get("os") or os_name
        config["rootfs"] = {"type": "layers", "diff_ids": [la.diff_id for la in layers]}
        image = self.s.add_image(config, layers, parent=self.image.id)
        if self.b.cache is not None:
            self.b.cache.record(key, image.id)
        self.set_image(image)
        self.b.say(f" ---> {image.id[7:19]}\n")

    def key(self, step: ins.Instruction, **detail: Any) -> StepKey:
        return StepKey(self.image.id, repr(step.__class__.__name__) + step.original, {
            "step": repr(_without_position(step)), **detail})

    # ------------------------------------------------------------ steps

    def metadata_step(self, step: ins.Instruction) -> None:
        key = self.key(step, env=self.vars.visible() if isinstance(step, ins.Arg) else {})
        text = self.state.apply(step)
        if self.cached(key):
            return
        cid = uuid.uuid4().hex
        self.b.say(f" ---> Running in {cid[:12]}\n")
        self.b.say(f"Removing intermediate container {cid[:12]}\n")
        self.finish(key, nop(self.state.config, text), None, empty=True)

    def run_step(self, step: ins.Run) -> None:
        script = ins.run_script(step)
        if script.executable is not None:
            raise NotImplementedFeature("RUN with a heredoc script file (#!) is not supported yet")
        shell_step = ins.Run(command=script.command, prepend_shell=script.prepend_shell)
        args = command_of(shell_step, self.state.config)
        run_env = self.vars.run_environment()
        arg_values = {k: v for k, v in self.vars.args.items() if k not in self.vars.env}
        key = self.key(step, env=run_env, network=self.r.opts.network)
        if self.cached(key):
            return
        created_by = " ".join(args)
        if arg_values:
            created_by = f"|{len(arg_values)} " + " ".join(f"{k}={v}" for k, v in arg_values.items()) + " " + created_by
        env = [f"{k}={v}" for k, v in run_env.items()]
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        work = uuid.uuid4().hex
        cid = work[:12]
        self.b.say(f" ---> Running in {cid}\n")
        self.s.prepare(work, self.image)
        try:
            network = step.network if step.network in ("none", "host") else self.r.opts.network
            spec = RunSpec(args=args, env=env, user=self.state.config.get("User") or "",
                           workdir=self.state.config.get("WorkingDir") or "/",
                           network="none" if network == "none" else "host",
                           resources=self.r.opts.resources, extra_hosts=tuple(self.r.opts.extra_hosts),
                           hostname=cid)
            code = self.s.run(work, spec, output=lambda data: self.b.say(data.decode("utf-8", "replace")))
            if code != 0:
                shown = go_args(args)
                raise BuildFailed(f"The command '{shown}' returned a non-zero code: {code}")
            layer = self.s.commit(work, self.image, source_date_epoch=self.r.sde)
        finally:
            self.s.release(work)
        self.b.say(f"Removing intermediate container {cid}\n")
        self.finish(key, created_by, layer, empty=layer is None)

    def _source_root(self, step: ins.SourcesAndDest) -> tuple[Path, BaseImage | None]:
        if isinstance(step, ins.Copy) and step.from_:
            return Path(), self.resolve_base(step.from_)
        return self.r.context, None

    def copy_step(self, step: ins.Copy | ins.Add) -> None:
        cmd = step.name
        normalize = self.r.sde is not None and not step.chmod
        chmod = cp.parse_chmod(step.chmod)
        if isinstance(step, ins.Add) and step.checksum and any(not cp.is_url(s) for s in step.sources):
            raise InvalidArgument("checksum can't be specified for non-HTTP(S) sources")
        dest = step.dest
        if not dest.startswith("/"):
            dest = workdir_path(self.state.config, dest) + ("/" if dest.endswith("/") else "")
        with tempfile.TemporaryDirectory(prefix="sampan-add-") as downloads:
            view_key = ""
            try:
                root, from_image = self._source_root(step)
                if from_image is not None:
                    view_key = uuid.uuid4().hex
                    root = self.s.view(view_key, from_image)
                items: list[tuple[str, Path]] = []
                local = [s for s in step.sources if not (isinstance(step, ins.Add) and cp.is_url(s))]
                for i, url in enumerate(s for s in step.sources if s not in local):
                    d = Path(downloads) / str(i)
                    d.mkdir()
                    name, path = cp.download(url, d, checksum=getattr(step, "checksum", ""))
                    items.append((name, path))
                items = cp.resolve_sources(root, local, cmd=cmd) + items if local else items
                digest = cp.source_digest(items, normalize_modes=normalize)
                for inline in step.contents:
                    digest += ":" + inline.name + ":" + str(hash(inline.data))
                key = self.key(step, sources=digest, from_=from_image.id if from_image else "")
                if self.cached(key):
                    return
                kind = "multi" if len(items) + len(step.contents) > 1 else (
                    "dir" if items and items[0][1].is_dir() else "file")
                created_by = nop1(self.state.config, f"{cmd} {kind}:{digest[:64]} in {dest} ")
                work = uuid.uuid4().hex
                target = self.s.prepare(work, self.image)
                try:
                    opts = cp.CopyOptions(
                        chown=chown_identity(target, step.chown) if step.chown else None,
                        chmod=chmod, normalize_modes=normalize,
                        unpack_archives=isinstance(step, ins.Add))
                    if items:
                        cp.copy_sources(target, items, dest, opts, cmd=cmd)
                    for inline in step.contents:
                        cp.write_inline(target, dest, inline.name, inline.data.encode(), opts)
                    layer = self.s.commit(work, self.image, source_date_epoch=self.r.sde)
                finally:
                    self.s.release(work)
            finally:
                if view_key:
                    self.s.release(view_key)
        self.finish(key, created_by, layer, empty=layer is None)

    def workdir_step(self, step: ins.Workdir) -> None:
        key = self.key(step, workdir=self.state.config.get("WorkingDir") or "")
        text = self.state.apply(step)
        if self.cached(key):
            return
        path = self.state.config["WorkingDir"]
        cid = uuid.uuid4().hex
        self.b.say(f" ---> Running in {cid[:12]}\n")
        target = self.s.prepare(cid, self.image)
        try:
            resolved = cp.scoped(target, path)
            if not resolved.exists():
                user = self.state.config.get("User") or ""
                ident = None
                if user:
                    from sampan.build.users import resolve_user

                    ident = resolve_user(target, user)
                cp._Copier(cp.CopyOptions(chown=ident)).mkdirs(target, path)
            layer = self.s.commit(cid, self.image, source_date_epoch=self.r.sde)
        finally:
            self.s.release(cid)
        self.b.say(f"Removing intermediate container {cid[:12]}\n")
        self.finish(key, nop1(self.state.config, text), layer, empty=layer is None)


def go_args(args: list[str]) -> str:
    return " ".join(args)


def _without_position(step: ins.Instruction) -> ins.Instruction:
    import dataclasses

    return dataclasses.replace(step, line=0)


def _clean_config(c: dict[str, Any]) -> dict[str, Any]:
    """Docker's key order for the fields the builder sets; empty optional ones left out."""
    order = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
             "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
             "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels",
             "StopSignal", "Shell"]
    out = {k: c[k] for k in order if k in c}
    out.update({k: v for k, v in c.items() if k not in out})
    if not any(e.startswith("PATH=") for e in out.get("Env") or []):
        out["Env"] = [DEFAULT_PATH, *(out.get("Env") or [])]
    return out

