"""Image references: Docker's grammar (distribution/reference) and its normalization.

Vocabulary: a *reference* names an image as ``[domain/]path[:tag][@digest]``; its *name* is
``domain/path``; an image *ID* is the digest of its config (``sha256:<hex>``) and is not a
reference.  Normalization, as Docker does it:

* ``busybox`` is ``docker.io/library/busybox:latest`` (the default tag is added unless a
  digest is given or ``default_tag=False``);
* the first path component is a registry host only if it contains ``.`` or ``:`` or is
  ``localhost`` (``localhost:5000/a/b``, ``quay.io/x``); ``index.docker.io`` becomes ``docker.io``;
* uppercase letters in the path and a bare 64-hex string are refused;
* ``familiar()`` is Docker's FamiliarString: ``busybox:latest``, ``user/app:1``, ``quay.io/x:1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sampan.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_NAME = re.compile(rf"^(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_SHA256_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalized reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name, fully qualified: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The repository name as Docker prints it: ``busybox``, ``user/app``, ``quay.io/x``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_REPO_PREFIX) :]
            return path
        return self.name

    def familiar(self) -> str:
        """Docker's FamiliarString: ``busybox:latest``, ``busybox@sha256:...``."""
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReference(tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain."""
    first, sep, rest = name.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference as ``docker pull TEXT`` would.

    Raises :class:`errors.InvalidReference` with Docker's wording.
    """
    if not text:
        raise InvalidReference(text, "invalid reference format: repository name must have at least one component")
    if _HEX64.match(text):
        raise InvalidReference(
            text,
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings",
        )
    name_part, tag, digest = _split_parts(text)
    domain, remainder = _split_domain(name_part)
    if remainder.lower() != remainder:
        raise InvalidReference(
            text, f"invalid reference format: repository name ({remainder}) must be lowercase"
        )
    match = REFERENCE_RE.match(f"{domain}/{remainder}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else ""))
    if match is None:
        raise InvalidReference(text)
    if len(match.group(1)) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            text, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest is not None and not _SHA256_DIGEST.match(digest):
        raise InvalidReference(text, "invalid reference format: unsupported digest")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, remainder, tag, digest)


def _split_parts(text: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest of ``text`` by the raw grammar (before normalization)."""
    # The raw grammar allows uppercase in the domain only; check the shape with a relaxed name so
    # that uppercase in the path is reported as such (as Docker does) rather than as a format error.
    rest, at, digest = text.partition("@")
    if at and not digest:
        raise InvalidReference(text)
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(text)
    relaxed = REFERENCE_RE.match(_lower_path(rest))
    if relaxed is None or relaxed.group(2) is not None:
        raise InvalidReference(text)
    return rest, tag, (digest or None)


def _lower_path(name: str) -> str:
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost"):
        return first + "/" + rest.lower()
    return name.lower()


def is_name(text: str) -> bool:
    """Whether ``text`` is a valid repository name (no tag or digest), before normalization."""
    return bool(_ANCHORED_NAME.match(text))


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise InvalidReference(tag)
    return tag
