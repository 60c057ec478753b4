"""Engine API version negotiation (moby's ``daemon/server/middleware/version.go``).

A request path may carry a version prefix (``/v1.41/images/json``) or none; an unversioned
request means the newest version sampan serves.  Versions below ``MIN_API_VERSION`` or above
``API_VERSION`` are refused with Docker's wording.  Handlers compare versions with
:func:`at_least` / :func:`before` instead of comparing strings.
"""

from __future__ import annotations

import re

from sampan import API_VERSION, MIN_API_VERSION
from sampan.errors import InvalidArgument

_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def parse(version: str) -> tuple[int, int]:
    """``"1.41"`` -> ``(1, 41)``; anything else is an :class:`InvalidArgument`."""
    m = _VERSION.match(version)
    if not m:
        raise InvalidArgument(f"invalid API version: {version!r}")
    return int(m.group(1)), int(m.group(2))


MAX = parse(API_VERSION)
MIN = parse(MIN_API_VERSION)


def negotiate(requested: str | None) -> str:
    """The version a request is served at; raises InvalidArgument when out of range."""
    if not requested:
        return API_VERSION
    v = parse(requested)
    if v < MIN:
        raise InvalidArgument(
            f"client version {requested} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if v > MAX:
        raise InvalidArgument(
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )
    return requested


def at_least(version: str, other: str) -> bool:
    return parse(version) >= parse(other)


def before(version: str, other: str) -> bool:
    return parse(version) < parse(other)
