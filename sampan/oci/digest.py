"""Content digests (``algorithm:hex``) as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sampan.errors import InvalidArgument

_DIGEST = re.compile(r"^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$")
_CHUNK = 1 << 20


def validate(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256/sha512 digest, else raise InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def split(digest: str) -> tuple[str, str]:
    """('sha256', hex) for a valid digest."""
    algo, _, hexpart = validate(digest).partition(":")
    return algo, hexpart


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def of_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI ChainID of each layer prefix: ChainID(L0) = DiffID(L0);
    ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else of_bytes(f"{out[-1]} {diff_id}".encode()))
    return out


def short(digest_or_id: str, length: int = 12) -> str:
    """The short hex form Docker prints (``sha256:`` stripped, 12 characters)."""
    return digest_or_id.split(":", 1)[-1][:length]
