"""The engine's registry service: pull, push, login and distribution inspect.

Credentials come with each call (the API decodes ``X-Registry-Auth``) and are never stored.
Registry settings (mirrors, insecure registries, certs.d, concurrency) come from the daemon's
configuration as a :class:`~sampan.distribution.http.RegistryOptions`.

Typical use::

    svc = DistributionService(store, events, RegistryOptions(mirrors=["http://127.0.0.1:5001"]))
    svc.pull("127.0.0.1:5000/app", tag="1", credentials=Credentials(), on_progress=print)
    svc.push("127.0.0.1:5000/app:1", credentials=Credentials("u", "p"), on_progress=print)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sampan import errors
from sampan.distribution.auth import Credentials
from sampan.distribution.http import RegistryClient, RegistryOptions
from sampan.distribution.mirrors import mirrors_for
from sampan.distribution.pull import PullResult, pull_image
from sampan.distribution.push import PushResult, push_image
from sampan.distribution.registry import Repository, registry_error, registry_host
from sampan.engine.events import EventBus
from sampan.image import reference as refs
from sampan.image.store import ImageStore

Progress = Callable[[dict[str, Any]], None]


class DistributionService:
    """Registry operations over the image store; every method blocks."""

    def __init__(self, store: ImageStore, events: EventBus, options: RegistryOptions | None = None) -> None:
        self.store = store
        self.events = events
        self.options = options or RegistryOptions()
        self.options.validate()
        self.client = RegistryClient(self.options)

    def repository(self, ref: refs.Reference, credentials: Credentials | None, *, mirrors: bool = True) -> Repository:
        found = mirrors_for(ref.domain, self.options.mirrors, self.client) if mirrors else []
        return Repository(self.client, ref.domain, ref.path, credentials, mirrors=found)

    # ------------------------------------------------------------------ pull

    def pull(
        self,
        name: str,
        *,
        tag: str = "",
        platform: str = "",
        all_tags: bool = False,
        credentials: Credentials | None = None,
        on_progress: Progress | None = None,
    ) -> list[PullResult]:
        """``POST /images/create?fromImage=NAME&tag=TAG``: the images pulled."""
        ref = _pull_reference(name, tag, all_tags=all_tags)
        repo = self.repository(ref, credentials)
        if all_tags:
            tags = sorted(repo.tags(what=ref.familiar_name()))
            if not tags:
                raise errors.NotFound(f"{ref.familiar_name()}: the repository has no tags")
            targets = [ref.with_tag(t) for t in tags]
        else:
            targets = [ref]
        out = []
        for target in targets:
            try:
                result = pull_image(self.store, repo, target, platform=platform,
                                    parallel=self.options.max_downloads, on_progress=on_progress)
            except errors.NotFound as exc:
                if isinstance(exc, errors.NoSuchImage) or "manifest unknown" not in exc.message:
                    raise
                raise errors.NotFound(_not_found_text(target, exc)) from None
            from sampan.distribution.metadata import Metadata

            image = self.store.get(result.image_id)
            Metadata(self.store).remember_repo(
                [image.id, *(la.blob for la in image.layers)], repo.host, repo.path
            )
            self.events.publish("image", "pull", str(target) if target.tag else target.familiar(),
                                {"name": target.familiar()})
            out.append(result)
        return out

    # ------------------------------------------------------------------ push

    def push(
        self,
        name: str,
        *,
        tag: str = "",
        credentials: Credentials | None = None,
        on_progress: Progress | None = None,
    ) -> list[PushResult]:
        """``POST /images/{name}/push?tag=``: every tag of the repository when none is given."""
        ref = refs.parse(name, default_tag=False)
        if ref.digest:
            raise errors.InvalidArgument(f"cannot push a digest reference: {name}")
        if tag:
            ref = ref.with_tag(tag)
        if ref.tag is None:
            rows = self.store.db.query(
                "SELECT ref FROM refs WHERE kind = 'tag' AND ref LIKE ? ORDER BY ref",
                (ref.name.replace("%", "\\%").replace("_", "\\_") + ":%",),
            )
            targets = [refs.parse(str(r["ref"])) for r in rows if refs.parse(str(r["ref"])).name == ref.name]
            if not targets:
                raise errors.NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
        else:
            try:
                self.store.get(str(ref))
            except errors.NoSuchImage:  # dockerd's wording
                raise errors.NotFound(f"An image does not exist locally with the tag: {ref.familiar()}") from None
            targets = [ref]
        if on_progress is not None:
            on_progress({"status": f"The push refers to repository [{ref.name if ref.domain != 'docker.io' else 'docker.io/' + ref.path}]"})
        repo = self.repository(ref, credentials, mirrors=False)
        results = []
        for target in targets:
            result = push_image(self.store, repo, target, chunk_size=self.options.chunk_size,
                                parallel=self.options.max_uploads, on_progress=on_progress)
            if on_progress is not None:
                on_progress({"progressDetail": {}, "aux": {"Tag": result.tag, "Digest": result.digest,
                                                         "Size": result.size}})
            self.events.publish("image", "push", target.familiar(), {"name": target.familiar()})
            results.append(result)
        return results

    # ------------------------------------------------------------------ login, inspect

    def login(self, server: str, credentials: Credentials) -> str:
        """``POST /auth``: check the credentials against ``server``; return an identity token
        when the registry's token server hands one out (else "")."""
        host = _server_host(server or credentials.server_address)
        repo = Repository(self.client, host, "", credentials)
        last: errors.SampanError | None = None
        for ep in repo.origin:
            try:
                r = repo.request("GET", "/v2/", endpoint=ep, actions="")
            except errors.Unavailable as exc:
                last = exc
                continue
            if r.status == 200:
                r.close()
                self.client.worked(ep)
                if credentials.anonymous:
                    return ""
                return repo.auth.login_token(ep.host) if credentials.password else ""
            if r.status == 401:
                r.close()
                raise errors.Unauthorized(f"login attempt to {ep.base}/v2/ failed with status: 401 Unauthorized")
            last = registry_error(f"login to {host}", r, pull=False)
        raise last or errors.Unavailable(f"login to {host}: registry unreachable")

    def inspect(self, name: str, *, credentials: Credentials | None = None) -> dict[str, Any]:
        """``GET /distribution/{name}/json``: the descriptor and platforms of a remote image."""
        ref = refs.parse(name)
        repo = self.repository(ref, credentials)
        data, media_type, digest = repo.get_manifest(ref.digest or ref.tag or "latest", what=ref.familiar())
        doc = json.loads(data)
        platforms: list[dict[str, Any]] = []
        if "manifests" in doc:
            for m in doc.get("manifests") or []:
                if isinstance(m.get("platform"), dict):
                    platforms.append(dict(m["platform"]))
        else:
            cfg_desc = doc.get("config") or {}
            from sampan.distribution.copy import Descriptor

            desc = Descriptor(str(cfg_desc.get("mediaType")), str(cfg_desc.get("digest")), int(cfg_desc.get("size") or 0))
            with repo.open_blob(desc, tmp=self.store.content.tmp, what=f"{ref.familiar()} config") as f:
                config = json.loads(f.read())
            platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
            if config.get("variant"):
                platform["variant"] = config["variant"]
            platforms.append(platform)
        return {"descriptor": {"mediaType": media_type, "digest": digest, "size": len(data)}, "platforms": platforms}

    def close(self) -> None:
        self.client.close()


def _pull_reference(name: str, tag: str, *, all_tags: bool) -> refs.Reference:
    ref = refs.parse(name, default_tag=False)
    if tag:
        if dg_like(tag):
            ref = refs.parse(f"{ref.name}@{tag}")
        else:
            if ref.tag or ref.digest:
                raise errors.InvalidArgument(f"{name}: give the tag in the name or in tag=, not both")
            ref = ref.with_tag(tag)
    if all_tags:
        if ref.tag or ref.digest:
            raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
        return ref
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")
    return ref


def dg_like(text: str) -> bool:
    return ":" in text and text.split(":", 1)[0] in ("sha256", "sha512")


def _server_host(server: str) -> str:
    text = server.strip() or "docker.io"
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/", 1)[0]
    if text in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return "docker.io"
    return text


def _not_found_text(ref: refs.Reference, exc: errors.SampanError) -> str:
    shown = ref.familiar()
    if ref.tag and not ref.digest:
        return f"manifest for {shown} not found: {exc.message.split(': ', 1)[-1]}"
    return f"{shown}: {exc.message.split(': ', 1)[-1]}"


__all__ = ["DistributionService", "registry_host"]
