"""One repository on a registry, as the pull and push copies talk to it.

Vocabulary: a :class:`Repository` is ``host/path`` (``docker.io`` is reached at
``registry-1.docker.io``) with the *endpoints* that serve it — for reads, its mirrors first
(``mirrors.py``), then the origin; for writes the origin only — and an
:class:`~sampan.distribution.auth.Authorizer` holding the caller's credentials.  Every request
goes through :meth:`Repository.request`, which adds ``Authorization`` and answers a 401 once by
following its challenge.

:class:`BlobReader` is a blob download that survives a broken connection: it hashes what it
streams, keeps every byte in ``<tmp>/partial-<hex>`` too, and when the connection breaks asks
again with ``Range: bytes=N-``; a later pull of the same blob starts from that partial file.
The partial file is removed once the blob is complete and its digest checked.

Errors are one line naming the image and the cause (:func:`registry_error`).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from sampan.distribution.auth import Authorizer, Credentials
from sampan.distribution.copy import Descriptor
from sampan.distribution.http import Endpoint, RegistryClient, Response
from sampan.errors import (
    DigestMismatch,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SampanError,
    Unauthorized,
    Unavailable,
    from_oserror,
)
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
ACCEPT_MANIFESTS = ", ".join([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
RESUME_ATTEMPTS = 8
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 1 << 20

OnBytes = Callable[[int], None]


def registry_host(domain: str) -> str:
    return DOCKER_HUB_ENDPOINT if domain == DOCKER_HUB else domain


def registry_error(what: str, response: Response, *, pull: bool = True) -> SampanError:
    """The error for a registry's failure answer (its JSON ``errors`` if any), naming ``what``."""
    try:
        body = response.read(65536)
    except Unavailable:
        body = b""
    response.close(reuse=False)
    code, message = "", ""
    try:
        doc = json.loads(body)
        first = (doc.get("errors") or [{}])[0]
        code, message = str(first.get("code") or ""), str(first.get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        message = body[:200].decode("utf-8", "replace").strip()
    status = response.status
    if status == 401 and "insufficient_scope" in response.header("WWW-Authenticate"):
        # authenticated, but the token does not grant this (a pull-only user pushing)
        code, message = "DENIED", "requested access to the resource is denied (insufficient_scope)"
    fallback = {401: "unauthorized: authentication required",
                403: "denied: requested access to the resource is denied", 404: "not found"}
    detail = f"{code.lower().replace('_', ' ')}: {message}" if code else message or fallback.get(
        status, f"HTTP {status}")
    if status == 401 or (status == 403 and code == "DENIED"):
        if pull:  # a NotFound (404), as dockerd's translatePullError: clients do not prompt
            return NotFound(
                f"pull access denied for {what}, repository does not exist or may require 'docker login': {detail}"
            )
        return Unauthorized(f"{what}: {detail}")
    if status == 403:
        return PermissionDenied(f"{what}: {detail}")
    if status == 404:
        return NotFound(f"{what}: {detail}")
    if status in (400, 405, 413, 415, 416, 422):
        return InvalidArgument(f"{what}: {detail}")
    return Unavailable(f"{what}: registry answered {status}: {detail}")


class Repository:
    """``host/path`` on a registry; see the module docstring."""

    def __init__(
        self,
        client: RegistryClient,
        domain: str,
        path: str,
        credentials: Credentials | None = None,
        *,
        mirrors: Iterable[Endpoint] = (),
        authorizer: Authorizer | None = None,
    ) -> None:
        self.client = client
        self.domain = domain
        self.host = registry_host(domain)
        self.path = path
        self.auth = authorizer or Authorizer(credentials or Credentials(), self._fetch_token)
        self.origin = client.endpoints(self.host)
        self.mirrors = list(mirrors)
        self.pinned: Endpoint | None = None  # the endpoint that served the manifest
        self._origin_ep: Endpoint | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def _fetch_token(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        ep = self.client.endpoint_from_url(url)
        with self.client.request(ep, method, url, headers=headers, body=body) as r:
            return r.status, r.read()

    def origin_endpoint(self) -> Endpoint:
        """The origin's endpoint that answers (``GET /v2/``; https before http for an insecure
        host), remembered for the client's life; a challenge seen there is recorded."""
        if self._origin_ep is not None:
            return self._origin_ep
        last: SampanError | None = None
        for ep in self.origin:
            try:
                r = self.request("GET", "/v2/", endpoint=ep, actions="")
            except Unavailable as exc:
                last = exc
                continue
            r.close()
            self.client.worked(ep)
            self._origin_ep = ep
            return ep
        raise last or Unavailable(f"{self.host}: registry unreachable")

    def read_endpoints(self) -> list[Endpoint]:
        found = ([self.pinned] if self.pinned else []) + self.mirrors + self.origin
        return list(dict.fromkeys(found))

    def request(
        self,
        method: str,
        target: str,
        *,
        endpoint: Endpoint,
        actions: str = "pull",
        extra_scopes: Iterable[str] = (),
        headers: dict[str, str] | None = None,
        body: bytes | BinaryIO | Iterable[bytes] | None = None,
        length: int | None = None,
    ) -> Response:
        """One request with authorization; a 401 is answered once by following its challenge."""
        scopes = [f"repository:{self.path}:{actions}"] if actions and self.path else []
        scopes += extra_scopes
        for _ in range(3):
            h = dict(headers or {})
            auth = self.auth.header(endpoint.host, scopes)
            if auth:
                h["Authorization"] = auth
            response = self.client.request(endpoint, method, target, headers=h, body=body, length=length)
            if response.status in _REDIRECTS and method in ("GET", "HEAD"):
                return self._follow(response, method, endpoint, headers or {})
            if response.status != 401:
                return response
            www = response.header("WWW-Authenticate")
            if not (body is None or isinstance(body, bytes)) or not self.auth.challenged(endpoint.host, www):
                return response
            response.close()
        return response

    def _follow(self, response: Response, method: str, endpoint: Endpoint, headers: dict[str, str]) -> Response:
        """Follow a blob's redirect (registries send GETs to a CDN or object store).  The
        registry's Authorization is not sent to another host: the URL carries its own grant."""
        for _ in range(5):
            location = response.header("Location")
            response.close()
            if not location:
                raise Unavailable(f"{self.name}: redirect ({response.status}) without a Location")
            if location.startswith("/"):
                location = endpoint.base + location
            target = self.client.endpoint_from_url(location)
            h = dict(headers)
            if target.host == endpoint.host:
                auth = self.auth.header(endpoint.host, [f"repository:{self.path}:pull"])
                if auth:
                    h["Authorization"] = auth
            response = self.client.request(target, method, location, headers=h)
            if response.status not in _REDIRECTS:
                return response
            endpoint = target
        raise Unavailable(f"{self.name}: too many redirects")

    def first_answer(
        self, method: str, target: str, *, what: str, headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[Endpoint, Response]:
        """Try the read endpoints in order (mirrors, then the origin; https before http for an
        insecure host); return the first that answers ``ok``.  A mirror's failure falls through
        to the next endpoint; the origin's failure is the error."""
        errors: list[SampanError] = []
        candidates = self.read_endpoints()
        for ep in candidates:
            is_origin = ep in self.origin
            try:
                response = self.request(method, target, endpoint=ep, headers=headers)
            except Unavailable as exc:
                errors.append(Unavailable(f"{what}: registry unreachable: {exc.message}"))
                continue
            if response.status in ok:
                if is_origin:
                    self.client.worked(ep)
                return ep, response
            err = registry_error(what, response)
            if not is_origin or response.status >= 500:
                errors.append(err)
                continue
            raise err
        origin_errors = errors[-len(self.origin):] if errors else []
        raise (origin_errors or errors or [Unavailable(f"{what}: no endpoint")])[-1]

    # ------------------------------------------------------------------ manifests

    def get_manifest(self, reference: str, *, what: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest by tag or digest."""
        ep, r = self.first_answer(
            "GET", f"/v2/{self.path}/manifests/{reference}", what=what, headers={"Accept": ACCEPT_MANIFESTS}
        )
        self.pinned = ep
        with r:
            data = r.read()
            media_type = r.header("Content-Type").split(";")[0].strip()
        try:
            doc = json.loads(data)
        except ValueError:
            raise InvalidArgument(f"{what}: the registry's manifest is not JSON") from None
        if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
            media_type = doc["mediaType"]
        digest = dg.of_bytes(data)
        if dg.is_digest(reference) and reference != digest:
            raise DigestMismatch(f"manifest {what}", reference, digest)
        if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
            raise InvalidArgument(f"{what}: Docker Image Format v1 and Docker Image manifest version 2, "
                                  "schema 1 are not supported")
        if media_type not in mt.MANIFESTS | mt.INDEXES:
            if isinstance(doc, dict) and "manifests" in doc:
                media_type = mt.OCI_INDEX
            elif isinstance(doc, dict) and "layers" in doc:
                media_type = mt.OCI_MANIFEST
            else:
                raise InvalidArgument(f"{what}: unsupported manifest media type {media_type!r}")
        return data, media_type, digest

    def put_manifest(self, reference: str, data: bytes, media_type: str, *, what: str) -> str:
        ep = self.origin_endpoint()
        r = self.request("PUT", f"/v2/{self.path}/manifests/{reference}", endpoint=ep, actions="pull,push",
                         headers={"Content-Type": media_type}, body=data)
        if r.status not in (200, 201, 202):
            raise registry_error(what, r, pull=False)
        r.close()
        return r.header("Docker-Content-Digest") or dg.of_bytes(data)

    def tags(self, *, what: str) -> list[str]:
        out: list[str] = []
        target: str | None = f"/v2/{self.path}/tags/list"
        while target:
            _, r = self.first_answer("GET", target, what=what)
            link = r.header("Link")
            doc = r.json()
            out += [str(t) for t in (doc.get("tags") or [])]
            target = None
            if link.startswith("<") and 'rel="next"' in link:
                target = link[1 : link.index(">")]
        return out

    # ------------------------------------------------------------------ blobs

    def open_blob(self, desc: Descriptor, *, tmp: Path, what: str, on_bytes: OnBytes | None = None,
                  verify: bool = True) -> BinaryIO:
        reader = BlobReader(self, desc, tmp=tmp, what=what, on_bytes=on_bytes, verify=verify)
        return io.BufferedReader(reader, _CHUNK)  # type: ignore[arg-type, return-value]

    def blob_exists(self, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{self.path}/blobs/{digest}", endpoint=self.origin_endpoint(), actions="pull,push")
        r.close()
        if r.status == 200:
            return True
        if r.status == 404:
            return False
        raise registry_error(f"{self.name} blob {digest}", r, pull=False)


class BlobReader(io.RawIOBase):
    """A blob download that resumes with Range; see the module docstring."""

    def __init__(self, repo: Repository, desc: Descriptor, *, tmp: Path, what: str, on_bytes: OnBytes | None,
                 verify: bool = True) -> None:
        super().__init__()
        self.repo = repo
        self.desc = desc
        self.what = what
        self.on_bytes = on_bytes
        self.partial = tmp / f"partial-{dg.split(desc.digest)[1]}"
        # verify=False when the consumer checks the digest itself (the content store does)
        self._hash = hashlib.sha256() if verify else None
        self.offset = 0  # bytes handed to the reader so far
        self._saved: io.BufferedReader | None = None  # the partial file, replayed first
        self._file: io.BufferedRandom | None = None
        self.keep_partial = False  # set by a consumer that adopts the complete file (no 2nd copy)
        self.verifies = verify
        self._response: Response | None = None
        self.requests = 0
        self._finished = False
        self._start()

    def _start(self) -> None:
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another pull of this blob holds it: download on our own
            os.close(fd)
            self.partial = self.partial.with_name(f"{self.partial.name}-{uuid.uuid4().hex[:12]}")
            fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "r+b")
        try:
            have = os.fstat(fd).st_size
            if have >= self.desc.size:
                have = 0
            self._connect(have)
            if self._response is not None and self._response.status == 200 and have:
                have = 0  # the server ignored Range: start over
                self._skip = 0
            if have:
                self._saved = open(self.partial, "rb")  # noqa: SIM115 - closed in close()
            self._file.truncate(have)
            self._file.seek(have)
        except BaseException:
            self._file.close()
            raise

    def _connect(self, start: int) -> None:
        """GET the blob from byte ``start``, trying again (with back-off) while the registry is
        unreachable or fails with 5xx."""
        delay = 0.2
        last: SampanError | None = None
        for _ in range(RESUME_ATTEMPTS):
            headers = {"Range": f"bytes={start}-"} if start else {}
            for ep in self.repo.read_endpoints():
                self.requests += 1
                try:
                    r = self.repo.request("GET", f"/v2/{self.repo.path}/blobs/{self.desc.digest}",
                                          endpoint=ep, headers=headers)
                except Unavailable as exc:
                    last = exc
                    continue
                if r.status in (200, 206):
                    self._response = r
                    if r.status == 200 and start:
                        self._skip = start  # no Range support mid-download: discard what we have
                    else:
                        self._skip = 0
                    return
                last = registry_error(self.what, r)
                if r.status < 500 and ep not in self.repo.mirrors:
                    raise last
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise last or Unavailable(f"{self.what}: registry unreachable")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._saved is not None:
            n = self._saved.readinto(view)
            if n:
                self._account(view[:n], save=False)
                return n
            self._saved.close()
            self._saved = None
        while True:
            if self.offset >= self.desc.size:
                self._finish()
                return 0
            assert self._response is not None
            try:
                want = min(len(view), self.desc.size - self.offset)
                n = self._response.readinto(view[:want])
                if n == 0:
                    raise Unavailable(f"{self.what}: connection closed early at byte {self.offset}")
            except Unavailable:
                self._response.close(reuse=False)
                self._response = None
                if self._file is not None:
                    self._file.flush()
                self._connect(self.offset)
                self._discard_skip()
                continue
            self._account(view[:n], save=True)
            return n

    def _discard_skip(self) -> None:
        assert self._response is not None
        skip = getattr(self, "_skip", 0)
        while skip:
            data = self._response.read(min(skip, _CHUNK))
            if not data:
                raise Unavailable(f"{self.what}: connection closed early")
            skip -= len(data)
        self._skip = 0

    def _account(self, data: memoryview, *, save: bool) -> None:
        if self._hash is not None:
            self._hash.update(data)
        if save and self._file is not None:
            try:
                self._file.write(data)
            except OSError as exc:  # a full disk: said as such, not as a corrupt stream
                raise from_oserror(exc, f"{self.what}: write {self.partial}") from None
        self.offset += len(data)
        if self.offset > self.desc.size:
            raise InvalidArgument(f"{self.what}: the registry sent more than the {self.desc.size} bytes announced")
        if self.on_bytes is not None:
            self.on_bytes(self.offset)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._file is not None:
            self._file.flush()
        actual = "sha256:" + self._hash.hexdigest() if self._hash is not None else self.desc.digest
        if actual != self.desc.digest or not self.keep_partial:
            # complete: a wrong blob is never resumed from; a consumer that kept its own copy
            # does not need this one
            self.partial.unlink(missing_ok=True)
        if actual != self.desc.digest:
            raise DigestMismatch(self.what, self.desc.digest, actual)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._response is not None:
                self._response.close(reuse=False)
            for f in (self._saved, self._file):
                if f is not None:
                    f.close()
            if not self._finished and self.partial.name.count("-") > 1:
                self.partial.unlink(missing_ok=True)  # a private download: nothing to resume
        finally:
            super().close()


def scopes_for_mount(source_repo: str) -> list[str]:
    return [f"repository:{source_repo}:pull"]


def clean_partial(tmp: Path, digest: str) -> None:
    try:
        os.unlink(tmp / f"partial-{dg.split(digest)[1]}")
    except FileNotFoundError:
        pass
