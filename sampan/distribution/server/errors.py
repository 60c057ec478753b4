"""The error codes of the OCI Distribution Spec and their JSON bodies.

The registry server is an HTTP edge of its own (it does not go through ``api/``), so this is the
one place where its errors become statuses.  Handlers raise :class:`RegistryError` with a spec
code, or let a ``sampan.errors`` exception through: :func:`from_sampan` maps those.

Every error body has the spec's shape::

    {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {...}}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sampan import errors

# code -> (HTTP status, the spec's message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "INTERNAL": (500, "internal server error"),
    "UNAVAILABLE": (503, "service unavailable"),
}


@dataclass
class Problem:
    """One entry of an error body."""

    code: str
    message: str = ""
    detail: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message or CODES[self.code][1],
            "detail": self.detail if self.detail is not None else {},
        }


class RegistryError(Exception):
    """An error answered with the spec's status, code(s) and JSON body.

    ``status`` defaults to the first code's status; ``headers`` are added to the response
    (``WWW-Authenticate`` for 401, ``Range`` and ``Location`` for 416).
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        more: list[Problem] | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown registry error code {code!r}")
        self.problems = [Problem(code, message, detail), *(more or [])]
        self.status = status if status is not None else CODES[code][0]
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {message or CODES[code][1]}")

    @property
    def code(self) -> str:
        return self.problems[0].code

    def body(self) -> bytes:
        return json.dumps({"errors": [p.to_json() for p in self.problems]}).encode()


def from_sampan(exc: errors.SampanError) -> RegistryError:
    """The spec's nearest code for an error raised below the server."""
    msg = exc.message
    if isinstance(exc, errors.DigestMismatch):
        return RegistryError("DIGEST_INVALID", msg, detail={"digest": exc.expected})
    if isinstance(exc, errors.BlobNotFound):
        return RegistryError("BLOB_UNKNOWN", msg, detail={"digest": exc.digest})
    if isinstance(exc, errors.InvalidArgument):
        return RegistryError("UNSUPPORTED", msg, status=400)
    if isinstance(exc, errors.NotFound):
        return RegistryError("NAME_UNKNOWN", msg)
    if isinstance(exc, errors.Unauthorized):
        return RegistryError("UNAUTHORIZED", msg)
    if isinstance(exc, errors.PermissionDenied):
        return RegistryError("DENIED", msg)
    if isinstance(exc, errors.NotImplementedFeature):
        return RegistryError("UNSUPPORTED", msg)
    if isinstance(exc, errors.Unavailable):
        return RegistryError("UNAVAILABLE", msg)
    return RegistryError("INTERNAL", msg)
