"""The aiohttp application of ``sampan registry serve``.

Every request under ``/v2/`` goes through one dispatcher: match the route (the repository
*name* may hold slashes, so routes are matched by the suffix after it), refuse writes in
read-only mode, validate the name, ask the :class:`~sampan.distribution.server.auth.Authorizer`
for the accesses the route needs, then call the handler.  A :class:`RegistryError` (or a
``sampan.errors`` exception, mapped by ``errors.from_sampan``) becomes the spec's JSON error.

Routes::

    GET           /v2/                                   base (Docker-Distribution-API-Version)
    GET           /v2/_catalog?n=&last=                   repositories (paginated)
    GET           /v2/<name>/tags/list?n=&last=           tags (paginated)
    GET HEAD PUT DELETE /v2/<name>/manifests/<reference>  manifests by tag or digest
    GET HEAD DELETE     /v2/<name>/blobs/<digest>         blobs (see blobs.py)
    POST          /v2/<name>/blobs/uploads/               uploads (see blobs.py)
    GET PATCH PUT DELETE /v2/<name>/blobs/uploads/<id>
    GET           /v2/<name>/referrers/<digest>?artifactType=
    GET           /token?service=&scope=                  token mode only
    GET           /                                       the web page (web.py)
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from sampan import errors
from sampan.distribution.server import blobs
from sampan.distribution.server import web as web_page
from sampan.distribution.server.auth import Access
from sampan.distribution.server.config import RegistryConfig
from sampan.distribution.server.errors import RegistryError, from_sampan
from sampan.distribution.server.storage import RegistryStorage, check_name, page
from sampan.oci import mediatypes as mt

log = logging.getLogger("sampan.registry")
T = TypeVar("T")
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[..., Awaitable[web.StreamResponse]]

# (suffix regex after the name, {method: handler attribute}); first match wins
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"^(?P<name>.+)/tags/list$"), {"GET": "tags"}),
    (re.compile(r"^(?P<name>.+)/manifests/(?P<ref>[^/]+)$"),
     {"GET": "get_manifest", "HEAD": "get_manifest", "PUT": "put_manifest", "DELETE": "delete_manifest"}),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/?$"), {"POST": "start_upload"}),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$"),
     {"GET": "upload_status", "PATCH": "patch_upload", "PUT": "put_upload", "DELETE": "cancel_upload"}),
    (re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$"),
     {"GET": "get_blob", "HEAD": "get_blob", "DELETE": "delete_blob"}),
    (re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), {"GET": "referrers"}),
]


def _page_args(request: web.Request) -> tuple[int | None, str]:
    n_text = request.query.get("n")
    n = None
    if n_text is not None and n_text != "":
        if not n_text.isdigit():
            raise RegistryError("UNSUPPORTED", f"invalid n {n_text!r}", status=400)
        n = int(n_text)
    return n, request.query.get("last", "")


def _link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


def _json(doc: Any, *, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    body = json.dumps(doc).encode()
    return web.Response(status=status, body=body, headers={"Content-Type": content_type, **(headers or {})})


class Registry:
    """The registry's handlers over one storage directory and configuration."""

    def __init__(self, cfg: RegistryConfig, storage: RegistryStorage) -> None:
        self.cfg = cfg
        self.storage = storage
        self._upload_locks: dict[str, asyncio.Lock] = {}

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking storage call (fsync, rename, locks) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    def upload_lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._upload_locks.get(upload_id)
        if lock is None:
            lock = self._upload_locks[upload_id] = asyncio.Lock()
        return lock

    def forget_upload(self, upload_id: str) -> None:
        """Drop the lock of a finished or cancelled upload."""
        self._upload_locks.pop(upload_id, None)

    # ------------------------------------------------------------ dispatch

    def _needed(self, request: web.Request, name: str) -> list[Access]:
        method = request.method
        if method in ("GET", "HEAD"):
            actions = frozenset({"pull"})
        elif method == "DELETE":
            actions = frozenset({"delete"})
        else:
            actions = frozenset({"pull", "push"})
        out = [Access("repository", name, actions)]
        source = request.query.get("from")
        if method == "POST" and request.query.get("mount") and source and source != name:
            out.append(Access("repository", source, frozenset({"pull"})))
        return out

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        if self.cfg.readonly and request.method in _WRITES:
            raise RegistryError("UNSUPPORTED", "the registry is read-only", status=405)
        if tail == "":
            self.cfg.authorizer.authorize(request.headers, [])
            return _json({})
        if tail == "_catalog":
            if request.method != "GET":
                raise RegistryError("UNSUPPORTED", f"{request.method} not allowed on _catalog", status=405)
            self.cfg.authorizer.authorize(request.headers, [Access("registry", "catalog", frozenset({"*"}))])
            return await self.catalog(request)
        for pattern, methods in _ROUTES:
            m = pattern.match(tail)
            if m is None:
                continue
            args = m.groupdict()
            name = check_name(args.pop("name"))
            attr = methods.get(request.method)
            if attr is None:
                raise RegistryError("UNSUPPORTED", f"{request.method} not allowed on {request.path}", status=405)
            self.cfg.authorizer.authorize(request.headers, self._needed(request, name))
            handler: Handler | None = getattr(self, attr, None)
            if handler is None:
                handler = functools.partial(getattr(blobs, attr), self)
            return await handler(request, name, *args.values())
        raise RegistryError("UNSUPPORTED", f"no endpoint {request.path}", status=404)

    # ------------------------------------------------------------ listing

    async def catalog(self, request: web.Request) -> web.Response:
        n, last = _page_args(request)
        repos, more = page(await self.blocking(self.storage.repositories), n, last)
        headers = {"Link": _link("/v2/_catalog", n or 0, repos[-1])} if more and repos else {}
        return _json({"repositories": repos}, headers=headers)

    async def tags(self, request: web.Request, name: str) -> web.Response:
        n, last = _page_args(request)
        tags, more = page(await self.blocking(self.storage.tags, name), n, last)
        headers = {"Link": _link(f"/v2/{name}/tags/list", n or 0, tags[-1])} if more and tags else {}
        return _json({"name": name, "tags": tags}, headers=headers)

    async def referrers(self, request: web.Request, name: str, digest: str) -> web.Response:
        artifact_type = request.query.get("artifactType", "")
        found = await self.blocking(self.storage.referrers, name, digest, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found}
        return _json(index, headers=headers, content_type=mt.OCI_INDEX)

    # ------------------------------------------------------------ manifests

    def _negotiate(self, request: web.Request, name: str, digest: str, media_type: str) -> tuple[str, str]:
        """An index the client does not accept is replaced by its linux/amd64 manifest."""
        accept = {a.split(";", 1)[0].strip() for a in request.headers.getall("Accept", []) for a in a.split(",")}
        accept.discard("")
        if media_type not in mt.INDEXES or not accept or media_type in accept or "*/*" in accept:
            return digest, media_type
        doc = json.loads(self.storage.manifest_path(digest).read_bytes())
        for child in doc.get("manifests", []):
            platform = child.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                child_digest, child_type = self.storage.resolve(name, child["digest"])
                if child_type in accept:
                    return child_digest, child_type
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest is a {media_type}, which the client does not accept")

    async def get_manifest(self, request: web.Request, name: str, ref: str) -> web.Response:
        digest, media_type = self.storage.resolve(name, ref)
        digest, media_type = self._negotiate(request, name, digest, media_type)
        body = await self.blocking(self.storage.manifest_path(digest).read_bytes)
        headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Content-Type": media_type}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def put_manifest(self, request: web.Request, name: str, ref: str) -> web.Response:
        body = await request.read()
        digest, info = await self.blocking(
            self.storage.put_manifest, name, ref, body, request.headers.get("Content-Type", "")
        )
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
                   "Content-Length": "0"}
        if info.subject is not None:
            headers["OCI-Subject"] = info.subject.digest
        return web.Response(status=201, headers=headers)

    async def delete_manifest(self, request: web.Request, name: str, ref: str) -> web.Response:
        await self.blocking(self.storage.delete_manifest, name, ref)
        return web.Response(status=202, headers={"Content-Length": "0"})

    # ------------------------------------------------------------ token and web page

    async def token(self, request: web.Request) -> web.Response:
        if self.cfg.token is None:
            raise RegistryError("UNSUPPORTED", "this registry does not issue tokens", status=404)
        service = request.query.get("service", self.cfg.token.service)
        if service != self.cfg.token.service:
            raise RegistryError("DENIED", f"unknown service {service!r}")
        answer = await self.blocking(self.cfg.token.issue, request.headers, request.query.getall("scope", []))
        return _json(answer)

    async def index(self, request: web.Request) -> web.Response:
        user = self.cfg.authorizer.login(request.headers)
        visible = functools.partial(self.cfg.authorizer.may_pull, user)
        html = await self.blocking(web_page.render, self.storage, visible)
        return web.Response(text=html, content_type="text/html", charset="utf-8")


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        response = await handler(request)
    except RegistryError as exc:
        response = _error_response(exc)
    except errors.SampanError as exc:
        response = _error_response(from_sampan(exc))
    except web.HTTPException:
        raise
    except OSError as exc:
        log.exception("registry: %s %s failed", request.method, request.path)
        response = _error_response(from_sampan(errors.from_oserror(exc, f"{request.method} {request.path}")))
    if request.path.startswith("/v2"):
        response.headers.update(API_VERSION)
    return response


def _error_response(exc: RegistryError) -> web.Response:
    headers = {"Content-Type": "application/json", **exc.headers}
    headers.pop("Content-Length", None)
    return web.Response(status=exc.status, body=exc.body(), headers=headers)


def make_app(cfg: RegistryConfig, storage: RegistryStorage | None = None) -> web.Application:
    reg = Registry(cfg, storage or RegistryStorage(cfg.storage))
    app = web.Application(middlewares=[_errors], client_max_size=8 << 20)
    app["registry"] = reg
    app.router.add_route("*", "/v2", reg.dispatch)
    app.router.add_route("*", "/v2/{tail:.*}", reg.dispatch)
    app.router.add_get("/token", reg.token)
    app.router.add_get("/", reg.index)
    return app
