"""init: ``--init`` runs Debian's ``tini-static`` as pid 1 (``/sbin/docker-init -- ARGS``): it
forwards signals to the command and reaps zombies, as Docker's docker-init does."""

from __future__ import annotations

import os

from sampan import errors
from sampan.engine.specgen import Spec, SpecContext

INIT_TARGET = "/sbin/docker-init"


def with_init(spec: Spec, ctx: SpecContext) -> None:
    if not ctx.container.host.init:
        return
    if not os.path.exists(ctx.init_path):
        raise errors.Unavailable(f"--init: {ctx.init_path} is not installed (Debian package tini)")
    spec["mounts"].append(
        {"destination": INIT_TARGET, "type": "bind", "source": ctx.init_path, "options": ["bind", "ro"]}
    )
    spec["process"]["args"] = [INIT_TARGET, "--", *spec["process"]["args"]]
