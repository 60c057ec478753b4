"""``docker commit``: a container's changes become a new image layer on top of its image.

Steps: (pause the container if asked and running) -> ``storage.archive.write_diff`` of the
container snapshot's upper dir (OCI whiteouts) into a content-store blob -> unpack the image's
layers plus that blob (the existing layers are already there: only the new one is applied)
-> a config with the container's config (overridden by the request's config and ``changes``),
the parent's history plus one entry -> ``ImageStore.add_image`` with the tag, one transaction
-> unpause.  The container keeps running throughout (frozen only while its diff is written).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.image import config as cfg
from sampan.image.unpack import LayerBlob
from sampan.oci.mediatypes import DOCKER_LAYER
from sampan.storage.archive import write_diff

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService
    from sampan.engine.model import Container


@dataclass
class CommitOptions:
    reference: str = ""
    comment: str = ""
    author: str = ""
    pause: bool = True
    changes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # Docker's container Config overrides


def container_config(c: Container) -> dict[str, Any]:
    """The image config's ``config`` section for what the container was run with."""
    s = c.spec
    out: dict[str, Any] = {
        "Hostname": s.hostname, "Domainname": s.domainname, "User": s.user,
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": s.tty, "OpenStdin": s.open_stdin, "StdinOnce": s.stdin_once,
        "Env": list(s.env), "Cmd": list(s.cmd) or None,
        "Image": c.image_id, "Volumes": {v: {} for v in s.volumes} or None,
        "WorkingDir": s.working_dir, "Entrypoint": list(s.entrypoint) or None,
        "OnBuild": list(s.on_build) or None, "Labels": dict(s.labels),
    }
    if s.exposed_ports:
        out["ExposedPorts"] = {p: {} for p in s.exposed_ports}
    if s.stop_signal:
        out["StopSignal"] = s.stop_signal
    if s.shell:
        out["Shell"] = list(s.shell)
    return out


def image_env(env: Any) -> list[str]:
    """The ``NAME=value`` entries of a container's Env, for an image config: image-spec allows
    only those (its validator's ``^[^=]+=.*$``).  A bare ``NAME`` left in a container's Env
    unsets nothing there (the image's own NAME was already removed when the container was
    made) and no process sees it, so dropping it changes nothing."""
    return [e for e in env or [] if isinstance(e, str) and e.partition("=")[0] and "=" in e]


def commit(containers: ContainerService, name: str, opts: CommitOptions) -> str:
    """Commit the container; returns the new image's ID."""
    c = containers.get(name)
    store = containers.store
    image = store.get(c.image_id)
    paused_here = False
    if opts.pause and c.state.status == "running":
        with contextlib.suppress(errors.SampanError):
            containers.pause(c.id)
            paused_here = True
    try:
        with tempfile.TemporaryFile(dir=str(containers.data_root / "tmp") if (containers.data_root / "tmp").is_dir() else None) as tmp:
            sn = store.snapshotter
            lower = None
            if sn.whiteouts != "overlay" and image.chain_ids:
                lower = sn.upper_dir(image.chain_ids[-1])
            write_diff(sn.upper_dir(c.id), tmp, whiteouts=sn.whiteouts, lower=lower)
            tmp.seek(0)
            with store.staging() as staging:
                blob = staging.copy_blob(tmp, what="container diff")
                diff_id = blob  # an uncompressed layer: its blob digest is its diff_id
                layers = [
                    LayerBlob(blob=la.blob, media_type=la.media_type, diff_id=la.diff_id)
                    for la in image.layers
                ]
                layers.append(LayerBlob(blob=blob, media_type=DOCKER_LAYER, diff_id=diff_id,
                                        where=f"commit of {c.name}"))
                records = staging.unpack(layers)
                base = json.loads(json.dumps(image.config))
                merged = container_config(c)
                merged.update({k: v for k, v in (opts.config or {}).items() if v is not None})
                merged = cfg.apply_changes(merged, opts.changes)
                merged["Env"] = image_env(merged.get("Env"))
                created = cfg.now_rfc3339()
                history = list(base.get("history") or [])
                entry: dict[str, Any] = {"created": created, "created_by": " ".join([c.path, *c.args]).strip()}
                if opts.author:
                    entry["author"] = opts.author
                if opts.comment:
                    entry["comment"] = opts.comment
                history.append(entry)
                new = cfg.new_config(
                    diff_ids=[r.diff_id for r in records], created=created,
                    platform=f"{base.get('os', 'linux')}/{base.get('architecture', 'amd64')}",
                    container_config=merged, comment=opts.comment, history=history,
                )
                if opts.author:
                    new["author"] = opts.author
                new["container"] = c.id
                config_blob = staging.put_bytes(cfg.encode(new), what="image config")
                result, _ = store.add_image(
                    config_blob, records, references=[opts.reference] if opts.reference else [],
                    parent=image.id,
                )
    finally:
        if paused_here:
            with contextlib.suppress(errors.SampanError):
                containers.unpause(c.id)
    containers.events.publish("container", "commit", c.id, {
        "comment": opts.comment, "imageID": result.id, "imageRef": opts.reference,
        "name": c.name, **c.spec.labels,
    })
    return result.id
