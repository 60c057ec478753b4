"""The one table from sampan's error classes to HTTP status codes (moby's httpstatus).

The client (``client/``) reverses it.  This module imports nothing but ``errors`` so that the
client can use it without pulling in the server stack.
"""

from __future__ import annotations

from sampan import errors

#: Most specific classes first; the first ``isinstance`` match wins.
STATUS: tuple[tuple[type[errors.SampanError], int], ...] = (
    (errors.InvalidArgument, 400),
    (errors.Unauthorized, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.NotImplementedFeature, 501),
    (errors.Unavailable, 503),
    (errors.Internal, 500),
)

#: The reverse direction, for the client: status -> the class to raise.
CLASS_FOR_STATUS: dict[int, type[errors.SampanError]] = {status: cls for cls, status in STATUS}


def status_for(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_for_status(status: int, message: str) -> errors.SampanError:
    cls = CLASS_FOR_STATUS.get(status, errors.Internal)
    err = cls.__new__(cls)
    errors.SampanError.__init__(err, message)
    return err
