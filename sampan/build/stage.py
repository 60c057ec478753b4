"""One stage of a build, step by step: the legacy builder's behaviour for each instruction.

:class:`StageRun` is what ``builder.py`` runs for each needed stage (in a thread of its own
when stages are independent): FROM (a local image, another stage, ``scratch``, or a pull),
ONBUILD triggers, then every instruction with the cache asked first (``cache.py``, then the
``--cache-from`` images), and one intermediate image committed per step (see ``builder.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampan.build import copy as cp
from sampan.build import instructions as ins
from sampan.build.backend import BaseImage, RunMount, RunSpec
from sampan.build.cache import StepKey
from sampan.build.configsteps import ConfigState, command_of, nop, nop1, workdir_path
from sampan.build.dockerfile import Dockerfile, parse_trigger
from sampan.build.expansion import PREDEFINED_ARGS, StageVariables, expand, stage_base
from sampan.build.users import chown_identity, resolve_user
from sampan.errors import (
    InvalidArgument,
    NoSuchImage,
    NotImplementedFeature,
    SampanError,
    Unavailable,
)
from sampan.image import config as cfg

if TYPE_CHECKING:
    from sampan.build.builder import _Run

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_METADATA = (ins.Env, ins.Label, ins.Cmd, ins.Entrypoint, ins.Expose, ins.Volume, ins.User,
             ins.StopSignal, ins.Maintainer, ins.Onbuild, ins.Healthcheck, ins.Shell)


class BuildFailed(InvalidArgument):
    """A step failed (a RUN's non-zero exit): the legacy builder's wording; ``exit_code`` is the
    step's exit status (dockerd's ``errorDetail.code``)."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class PlannedStage:
    stage: ins.Stage
    first_step: int
    deps: set[int]


def stage_ref(df: Dockerfile, name: str, before: int) -> int | None:
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


class StageRun:
    def __init__(self, run: _Run, plan: PlannedStage) -> None:
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
        ref = stage_ref(self.r.df, name, self.plan.stage.index)
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
        if self.b.cancelled():
            raise Unavailable("the build was cancelled: the client went away")
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

    def cached(self, key: StepKey, created_by: str) -> bool:
        cache = self.b.cache
        if self.r.opts.no_cache:
            return False
        if self.r.cache_sources and self.from_sources(key, created_by):
            return True
        if cache is None:
            return False
        image_id = cache.lookup(key)
        if image_id is not None:
            try:
                image = self.s.image(image_id)
            except NoSuchImage:
                cache.forget(key)
                image_id = None
            else:
                self.r.hits.append(key)
                self.b.say(" ---> Using cache\n")
                self.set_image(image)
                self.b.say(f" ---> {image.id[7:19]}\n")
                return True
        self.b.debug(f"cache miss at step {self.step_no - 1}: {cache.why_missed(key)}")
        return False

    def from_sources(self, key: StepKey, created_by: str) -> bool:
        """``--cache-from``: a source image whose history (and layers) start with this
        stage's, followed by a step with the same ``created_by``, gives this step's result
        (as the legacy builder's image cache for ``--cache-from``)."""
        n = len(self.history)
        mine = [h.get("created_by", "") for h in self.history]
        diff_ids = [la.diff_id for la in self.image.layers]
        for src in self.r.cache_sources:
            history = list(src.config.get("history") or [])
            if len(history) <= n or [h.get("created_by", "") for h in history[:n]] != mine:
                continue
            if history[n].get("created_by", "") != created_by:
                continue
            src_ids = [la.diff_id for la in src.layers]
            if src_ids[: len(diff_ids)] != diff_ids:
                continue
            empty = bool(history[n].get("empty_layer"))
            if not empty and len(src.layers) <= len(diff_ids):
                continue
            self.b.say(" ---> Using cache\n")
            self.finish(key, created_by, None if empty else src.layers[len(diff_ids)], empty=empty,
                        created=str(history[n].get("created") or ""))
            return True
        return False

    def finish(self, key: StepKey, created_by: str, layer: Any, *, empty: bool, created: str = "") -> None:
        created = created or _created(self.r.sde)
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
        created_by = nop(self.state.config, text)
        if self.cached(key, created_by):
            return
        cid = uuid.uuid4().hex
        self.b.say(f" ---> Running in {cid[:12]}\n")
        self.b.say(f"Removing intermediate container {cid[:12]}\n")
        self.finish(key, created_by, None, empty=True)

    def _run_mounts(self, step: ins.Run, script: ins.RunScript, scratch: Path,
                    views: list[str]) -> tuple[list[RunMount], str]:
        """The step's ``--mount``s (and its heredoc script file) as backend mounts, and a
        digest of what bind mounts show (part of the cache key, as in BuildKit)."""
        mounts: list[RunMount] = []
        digest = ""
        if script.executable is not None:
            path = scratch / script.executable.name
            path.write_text(script.executable.data)
            path.chmod(0o755)
            mounts.append(RunMount("bind", ins.PIPES_DIR + script.executable.name, str(path)))
        for m in step.mounts:
            if not m.target and m.type != "secret":
                raise InvalidArgument("mount target is required")
            if m.type in ("secret", "ssh"):
                if m.required:
                    raise NotImplementedFeature(f"RUN --mount=type={m.type}: builds get no {m.type}s")
                continue  # BuildKit skips a secret or ssh mount that is not there
            if m.type == "tmpfs":
                mounts.append(RunMount("tmpfs", m.target, size=m.size_limit))
            elif m.type == "cache":
                mounts.append(RunMount("cache", m.target, m.cache_id or m.target, readonly=m.readonly))
            else:
                root = self.r.context
                if m.from_:
                    views.append(uuid.uuid4().hex)
                    root = self.s.view(views[-1], self.resolve_base(m.from_))
                name, path = cp.resolve_sources(root, [m.source or "."], cmd="RUN --mount")[0]
                digest += cp.source_digest([(name, path)])
                mounts.append(RunMount("bind", m.target, str(path), readonly=m.readonly))
        return mounts, digest

    def run_step(self, step: ins.Run) -> None:
        if step.security == "insecure":
            raise NotImplementedFeature("RUN --security=insecure: builds are not granted security.insecure")
        script = ins.run_script(step)
        shell_step = ins.Run(command=script.command, prepend_shell=script.prepend_shell)
        args = command_of(shell_step, self.state.config)
        run_env = self.vars.run_environment()
        arg_values = {k: v for k, v in self.vars.args.items() if k not in self.vars.env}
        proxies = any(k in PREDEFINED_ARGS and k not in self.vars.env for k in self.vars.build_args)
        created_by = run_created_by(args, arg_values, proxies=proxies)
        views: list[str] = []
        with tempfile.TemporaryDirectory(prefix="sampan-run-") as scratch:
            try:
                mounts, digest = self._run_mounts(step, script, Path(scratch), views)
                key = self.key(step, env=run_env, network=self.r.opts.network, mounts=digest)
                if self.cached(key, created_by):
                    return
                layer = self._run(step, args, run_env, mounts)
            finally:
                for view in views:
                    self.s.release(view)
        self.finish(key, created_by, layer, empty=layer is None)

    def _run(self, step: ins.Run, args: list[str], run_env: dict[str, str], mounts: list[RunMount]) -> Any:
        env = [f"{k}={v}" for k, v in run_env.items()]
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        work = uuid.uuid4().hex
        cid = work[:12]
        self.b.say(f" ---> Running in {cid}\n")
        root = self.s.prepare(work, self.image)
        volumes = tempfile.TemporaryDirectory(prefix="sampan-volumes-")
        try:
            mounts = [*mounts, *anonymous_volumes(root, self.state.config.get("Volumes") or {}, Path(volumes.name))]
            network = step.network if step.network in ("none", "host") else self.r.opts.network
            spec = RunSpec(args=args, env=env, user=self.state.config.get("User") or "",
                           workdir=self.state.config.get("WorkingDir") or "/",
                           network=network or "bridge",
                           resources=self.r.opts.resources, extra_hosts=tuple(self.r.opts.extra_hosts),
                           hostname=cid, mounts=tuple(mounts))
            code = self.s.run(work, spec, output=lambda data: self.b.say(data.decode("utf-8", "replace")))
            if code != 0:
                raise BuildFailed(f"The command '{go_args(args)}' returned a non-zero code: {code}", code)
            layer = self.s.commit(work, self.image, source_date_epoch=self.r.sde)
        finally:
            self.s.release(work)
            volumes.cleanup()
        self.b.say(f"Removing intermediate container {cid}\n")
        return layer

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
                    digest += ":" + inline.name + ":" + hashlib.sha256(inline.data.encode()).hexdigest()
                key = self.key(step, sources=digest, from_=from_image.id if from_image else "")
                kind = "multi" if len(items) + len(step.contents) > 1 else (
                    "dir" if items and items[0][1].is_dir() else "file")
                # moby: "%s %s%s in %s " of the name, "--chown=X" if any, the hash, the
                # destination as written (so "--chown=1:1file:..." has no space, as dockerd's)
                chown = f"--chown={step.chown}" if step.chown else ""
                created_by = nop1(self.state.config, f"{cmd} {chown}{kind}:{digest[:64]} in {step.dest} ")
                if self.cached(key, created_by):
                    return
                work = uuid.uuid4().hex
                target = self.s.prepare(work, self.image)
                try:
                    opts = cp.CopyOptions(
                        chown=chown_identity(target, step.chown) if step.chown else None,
                        chmod=chmod, normalize_modes=normalize,
                        unpack_archives=isinstance(step, ins.Add) and step.unpack is not False, excludes=tuple(step.excludes),
                        downloaded=tuple(p for n, p in items if str(p).startswith(downloads)),
                        parents=isinstance(step, ins.Copy) and step.parents)
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
        if self.cached(key, nop1(self.state.config, text)):
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
                    ident = resolve_user(target, user)
                cp._Copier(cp.CopyOptions(chown=ident)).mkdirs(target, path)
            layer = self.s.commit(cid, self.image, source_date_epoch=self.r.sde)
        finally:
            self.s.release(cid)
        self.b.say(f"Removing intermediate container {cid[:12]}\n")
        self.finish(key, nop1(self.state.config, text), layer, empty=layer is None)


def go_args(args: list[str]) -> str:
    return " ".join(args)


def run_created_by(args: list[str], arg_values: dict[str, str], *, proxies: bool = False) -> str:
    """A RUN step's ``created_by`` as the legacy builder writes it (moby's ``dispatchRun`` and
    ``prependEnvOnCmd``): the declared build args in effect, *sorted* as ``KEY=value``
    strings, after ``|N``, then the command.  Proxy build args that no ARG declares are left
    out but still count as build args in effect (``|0 /bin/sh -c ...``); with no build arg at
    all the command stands alone."""
    command = " ".join(args)
    if not arg_values and not proxies:
        return command
    pairs = sorted(f"{k}={v}" for k, v in arg_values.items())
    return " ".join([f"|{len(pairs)}", *pairs, command])


def anonymous_volumes(root: Path, volumes: dict[str, Any], scratch: Path) -> list[RunMount]:
    """The legacy builder's anonymous volumes for a RUN step: each path of the image's
    ``Volumes`` gets a fresh volume holding a copy of what the image has there (its mount
    point made in the rootfs, as dockerd does), so what the step writes below it is not in
    the step's layer."""
    mounts: list[RunMount] = []
    for i, path in enumerate(sorted(volumes)):
        inside = cp.scoped(root, path)
        if not inside.is_dir():
            if os.path.lexists(inside):
                continue  # not a directory in the image: dockerd fails, nothing to hide here
            inside.mkdir(mode=0o755, parents=True)
        volume = scratch / str(i)
        shutil.copytree(inside, volume, symlinks=True)
        mounts.append(RunMount("bind", path, str(volume), readonly=False))
    return mounts


def _without_position(step: ins.Instruction) -> ins.Instruction:
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
