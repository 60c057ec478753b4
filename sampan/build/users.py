"""Users and groups of a build's root filesystem: ``USER``, ``RUN`` as a user, ``--chown``.

Docker resolves names in the image's own ``/etc/passwd`` and ``/etc/group`` (never the
host's): ``user``, ``user:group``, ``uid``, ``uid:gid`` and mixes.  A numeric ID needs no
entry; a name that has none is an error with Docker's wording.  The files are read without
following symlinks out of the root (a symlinked ``/etc/passwd`` is read as absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sampan.errors import InvalidArgument


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


def _entries(root: Path, name: str) -> list[list[str]]:
    path = root / "etc" / name
    try:
        if path.is_symlink() or not path.is_file():
            return []
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _lookup_group(root: Path, group: str) -> int:
    if group.isdigit():
        return int(group)
    for fields in _entries(root, "group"):
        if len(fields) >= 3 and fields[0] == group and fields[2].isdigit():
            return int(fields[2])
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def resolve_user(root: Path, spec: str, *, supplementary: bool = False) -> Identity:
    """``spec`` (``USER``'s value or ``--chown``'s) to numeric IDs in ``root``'s files."""
    user, _, group = spec.partition(":")
    if not user:
        user = "0"
    uid: int | None = None
    gid: int | None = None
    name = ""
    for fields in _entries(root, "passwd"):
        if len(fields) < 4 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        if fields[0] == user or (user.isdigit() and fields[2] == user):
            uid, gid, name = int(fields[2]), int(fields[3]), fields[0]
            break
    if uid is None:
        if not user.isdigit():
            raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")
        uid, gid = int(user), 0 if not group else None
    if group:
        gid = _lookup_group(root, group)
    assert gid is not None
    extra: tuple[int, ...] = ()
    if supplementary and name and not group:
        extra = tuple(
            sorted(
                {
                    int(f[2])
                    for f in _entries(root, "group")
                    if len(f) >= 4 and f[2].isdigit() and name in f[3].split(",") and int(f[2]) != gid
                }
            )
        )
    return Identity(uid, gid, extra)


def chown_identity(root: Path, spec: str) -> Identity:
    """``--chown``: without a group, the GID is the numeric UID (Docker's documented rule)."""
    user, _, group = spec.partition(":")
    uid = int(user) if user.isdigit() else resolve_user(root, user).uid
    gid = _lookup_group(root, group) if group else uid
    return Identity(uid, gid)
