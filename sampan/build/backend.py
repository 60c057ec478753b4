"""The BuildBackend protocol: what the builder needs from the machine, and nothing more.

The builder (``builder.py``) knows Dockerfiles, image configs, history and the cache; it never
mounts, forks or writes a layer itself.  A backend gives it working root filesystems and
images.  Vocabulary:

* a *base* (:class:`BaseImage`) is an image the builder starts a step from: its ID, its config
  document and its layers (``BaseImage.scratch()`` has none);
* a *work* is a writable root filesystem made from a base for one step, named by a *key*
  the builder chooses; ``prepare`` returns the directory where it is mounted (COPY writes
  there, RUN runs there);
* ``commit`` turns a work's changes into one layer (an uncompressed, normalized tar written by
  the storage layer's ``LayerWriter``) and returns its :class:`LayerRecord`, or None when the
  step changed nothing (the legacy builder then records an ``empty_layer`` history entry);
  ``release`` drops a work, committed or not;
* ``add_image`` records an image (a config document whose ``rootfs.diff_ids`` name the layers
  given) and returns it as a base for the next step.

A backend's :meth:`BuildBackend.session` opens one build: what the session creates stays
alive (leased) until it closes, and whatever no image names by then is freed.  A typical RUN
step::

    with backend.session() as s:
        base = s.image("busybox")                    # NoSuchImage when it is not local
        root = s.prepare("step-1", base)             # a mounted, writable rootfs
        code = s.run("step-1", RunSpec(args=["/bin/sh", "-c", "echo hi > /a"]), output=log)
        layer = s.commit("step-1", base, source_date_epoch=None)
        s.release("step-1")
        image = s.add_image(config, [*base.layers, layer], parent=base.id)
        s.tag(image.id, ["app:latest"])

``view`` mounts an image read-only (``COPY --from``); ``release`` removes it too.  ``pull``
fetches an image from its registry (``FROM`` of an image that is not local, ``--pull``) and
writes the registry's progress to ``output`` as text lines; a backend without registry access
answers with the local image, or NoSuchImage.  A session
may be used from several threads (stages built in parallel): different keys never interfere.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from sampan.image.schema import LayerRecord

#: "bridge": the engine's default bridge network (NAT to the outside), when the backend was given a
#: StepNetwork; "host": the host's network namespace; "none": loopback only; any other value names a
#: user-defined network of the engine (``docker build --network NAME``; through the StepNetwork too).
NetworkMode = str
Output = Callable[[bytes], None]


class StepNetwork(Protocol):
    """Puts a RUN step on the engine's default bridge network (the builder cannot import the
    engine: the daemon hands the backend this).  ``attach`` returns the path of a network
    namespace with the step's endpoint; ``detach`` removes the endpoint and the namespace."""

    def attach(self, step_id: str, network: str = "bridge") -> Path: ...

    def detach(self, step_id: str) -> None: ...


@dataclass(frozen=True)
class BaseImage:
    """An image a step starts from (``id`` is "" for ``scratch``)."""

    id: str
    config: dict[str, Any] = field(default_factory=dict)
    layers: tuple[LayerRecord, ...] = ()
    repo_tags: tuple[str, ...] = ()

    @staticmethod
    def scratch() -> BaseImage:
        return BaseImage("", {}, ())

    @property
    def runtime_config(self) -> dict[str, Any]:
        """The image config's ``config`` section (Env, Cmd, ...)."""
        section = self.config.get("config") or {}
        return dict(section)


@dataclass(frozen=True)
class Resources:
    """Limits of RUN steps (``docker build --memory/--cpu-shares/--shm-size``); 0 = none."""

    memory: int = 0
    cpu_shares: int = 0
    shm_size: int = 0


@dataclass(frozen=True)
class RunMount:
    """A ``RUN --mount``: ``bind`` of a host path (the context, another stage's root, a
    heredoc script), ``tmpfs`` (``size`` bytes, 0 = default), or ``cache`` (a directory the
    backend keeps between builds, named by ``source``)."""

    type: Literal["bind", "tmpfs", "cache"]
    target: str
    source: str = ""
    readonly: bool = True
    size: int = 0


@dataclass(frozen=True)
class RunSpec:
    """One RUN step's process.  ``user`` is ``uid[:gid]`` or names (resolved in the work's
    /etc/passwd and /etc/group, as Docker does), ``workdir`` an absolute path."""

    args: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = "/"
    network: NetworkMode = "bridge"
    resources: Resources = field(default_factory=Resources)
    extra_hosts: tuple[str, ...] = ()
    hostname: str = ""
    mounts: tuple[RunMount, ...] = ()


class BuildSession(Protocol):
    """One build's use of a backend; see the module docstring."""

    def image(self, name: str) -> BaseImage: ...

    def pull(self, name: str, *, output: Callable[[str], None]) -> BaseImage: ...

    def prepare(self, key: str, base: BaseImage) -> Path: ...

    def view(self, key: str, base: BaseImage) -> Path: ...

    def run(self, key: str, spec: RunSpec, *, output: Output) -> int: ...

    def commit(self, key: str, base: BaseImage, *, source_date_epoch: int | None) -> LayerRecord | None: ...

    def release(self, key: str) -> None: ...

    def add_image(self, config: dict[str, Any], layers: list[LayerRecord], *, parent: str) -> BaseImage: ...

    def tag(self, image_id: str, references: list[str]) -> list[str]: ...


class BuildBackend(Protocol):
    """Opens build sessions (see the module docstring)."""

    def session(self) -> AbstractContextManager[BuildSession]: ...
