"""Named volumes (the ``local`` driver): ``<data-root>/volumes/<name>/_data``.

Vocabulary: a *named* volume is created by ``volume create`` or by a ``-v name:/path`` mount;
an *anonymous* volume is made for an image ``VOLUME`` or a ``-v /path`` without a name (a
64-hex name, labelled ``com.docker.volume.anonymous``) and goes away with ``rm -v``.  A
volume is *in use* while a container (running or not) mounts it; ``users`` (wired by the
daemon to the container service) answers which.  A new, empty volume mounted over a path the
image has content at gets that content copied in first (``copy_up``), as Docker does.

Driver options (``volume create --opt type=tmpfs --opt device=tmpfs --opt o=size=64m``, or
``type=none,o=bind,device=/srv/x``) make ``_data`` a mount: performed when a container first
uses the volume (``mount``), undone when the volume is removed.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sampan import errors
from sampan.engine.events import EventBus
from sampan.storage.db import Database

COMPONENT = "volumes"
MIGRATIONS = [
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        created TEXT NOT NULL,
        labels TEXT NOT NULL,
        options TEXT NOT NULL,
        anonymous INTEGER NOT NULL DEFAULT 0
    );
    """
]
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
FILTERS = frozenset({"dangling", "name", "label", "driver"})
LOCAL_OPTIONS = frozenset({"type", "device", "o"})


@dataclass
class Volume:
    name: str
    driver: str
    mountpoint: str
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    scope: str = "local"
    size: int = -1  # bytes, only when asked (system df)
    ref_count: int = -1


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dir_size(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if name in files or os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


class VolumeService:
    def __init__(self, data_root: Path, db: Database, events: EventBus | None = None) -> None:
        self.root = data_root / "volumes"
        self.db = db
        self.events = events or EventBus()
        self.lock = threading.RLock()
        #: container IDs using a volume (set by the daemon's wiring to the container service)
        self.users: Callable[[str], builtins.list[str]] = lambda name: []
        db.migrate(COMPONENT, MIGRATIONS)

    def path(self, name: str) -> str:
        return str(self.root / name / "_data")

    def _from_row(self, row: object) -> Volume:
        r = row  # sqlite3.Row
        name = str(r["name"])  # type: ignore[index]
        return Volume(
            name=name, driver=str(r["driver"]), mountpoint=self.path(name),  # type: ignore[index]
            created=str(r["created"]), labels=json.loads(r["labels"]),  # type: ignore[index]
            options=json.loads(r["options"]), anonymous=bool(r["anonymous"]),  # type: ignore[index]
        )

    def create(
        self,
        name: str = "",
        *,
        driver: str = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> Volume:
        """Create ``name`` (a random 64-hex name when empty); an existing volume is returned
        unchanged, as Docker does (an error only if the driver differs)."""
        driver = driver or "local"
        if driver != "local":
            raise errors.NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        for key in options or {}:
            if key not in LOCAL_OPTIONS:
                raise errors.InvalidArgument(f"create {name}: invalid option key: {key!r}")
        if options and not (options.get("device") and (options.get("type") or "bind" in options.get("o", "").split(","))):
            raise errors.InvalidArgument(f"create {name}: the local driver needs 'device' and 'type' (or o=bind) options")
        if not name:
            name = secrets.token_hex(32)
            anonymous = True
        if not NAME_RE.match(name):
            raise errors.InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                "directory, use absolute path"
            )
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self.lock:
            row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
            if row is not None:
                return self._from_row(row)
            data = Path(self.path(name))
            data.mkdir(parents=True, exist_ok=True)
            try:
                self.db.execute(
                    "INSERT INTO volumes (name, driver, created, labels, options, anonymous)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, driver, _now(), json.dumps(labels), json.dumps(options or {}), int(anonymous)),
                )
            except BaseException:
                shutil.rmtree(data.parent, ignore_errors=True)
                raise
        self.events.publish("volume", "create", name, {"driver": driver})
        return self.inspect(name)

    def inspect(self, name: str) -> Volume:
        row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise errors.NoSuchVolume(name)
        return self._from_row(row)

    def exists(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM volumes WHERE name = ?", (name,)) is not None

    def list(self, *, filters: dict[str, builtins.list[str]] | None = None) -> builtins.list[Volume]:
        filters = filters or {}
        for key in filters:
            if key not in FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            v = self._from_row(row)
            if self._matches(v, filters):
                out.append(v)
        return out

    def _matches(self, v: Volume, filters: dict[str, builtins.list[str]]) -> bool:
        for value in filters.get("dangling", []):
            want = value.lower() in ("1", "true")
            if bool(self.users(v.name)) == want:
                return False
        if filters.get("name") and not any(n in v.name for n in filters["name"]):
            return False
        if filters.get("driver") and v.driver not in filters["driver"]:
            return False
        for label in filters.get("label", []):
            key, sep, value = label.partition("=")
            if key not in v.labels or (sep and v.labels[key] != value):
                return False
        return True

    def remove(self, name: str, *, force: bool = False) -> None:
        with self.lock:
            if not self.exists(name):
                if force:
                    return
                raise errors.NoSuchVolume(name)
            users = self.users(name)
            if users:
                raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self.unmount(name)
            self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))
            shutil.rmtree(self.root / name, ignore_errors=True)
        self.events.publish("volume", "destroy", name, {"driver": "local"})

    def prune(self, *, filters: dict[str, builtins.list[str]] | None = None) -> tuple[builtins.list[str], int]:
        """Remove unused volumes: anonymous ones only, unless the filter ``all=true`` is given
        (Docker 23+); returns the names and the bytes reclaimed."""
        filters = dict(filters or {})
        all_volumes = any(v.lower() in ("1", "true") for v in filters.pop("all", []))
        removed: builtins.list[str] = []
        freed = 0
        for v in self.list(filters={k: vs for k, vs in filters.items() if k in FILTERS}):
            if not all_volumes and not v.anonymous:
                continue
            if self.users(v.name):
                continue
            size = dir_size(v.mountpoint)
            try:
                self.remove(v.name)
            except errors.Conflict:
                continue
            removed.append(v.name)
            freed += size
        return removed, freed

    def usage(self) -> builtins.list[Volume]:
        """Every volume with its size and reference count (``system df``)."""
        out = self.list()
        for v in out:
            v.size = dir_size(v.mountpoint)
            v.ref_count = len(self.users(v.name))
        return out

    def mount(self, name: str) -> None:
        """Mount a volume created with driver options on its ``_data`` (once)."""
        v = self.inspect(name)
        from sampan._sys import mount as sysmount

        if not v.options or sysmount.is_mountpoint(v.mountpoint):
            return

        words = [w for w in v.options.get("o", "").split(",") if w]
        flags, propagation, data = sysmount.parse_options(words)
        if "bind" in words or "rbind" in words:
            flags |= sysmount.MS_BIND | (sysmount.MS_REC if "rbind" in words else 0)
            data = ",".join(w for w in data.split(",") if w and w not in ("bind", "rbind"))
        fstype = "" if v.options.get("type") in (None, "", "none") else v.options["type"]
        with self.lock:
            try:
                sysmount.mount(v.options["device"], v.mountpoint, fstype, flags, data)
                if propagation:
                    sysmount.mount("", v.mountpoint, "", propagation, "")
            except OSError as exc:
                raise errors.from_oserror(exc, f"mount volume {name} ({v.options.get('type')} {v.options['device']})") from exc

    def unmount(self, name: str) -> None:
        """Undo ``mount`` (every layer of it): nothing may be removed through a mount."""
        from sampan._sys import mount as sysmount

        path = self.path(name)
        while sysmount.is_mountpoint(path):
            try:
                sysmount.umount(path, sysmount.MNT_DETACH)
            except OSError as exc:
                raise errors.from_oserror(exc, f"unmount volume {name}") from exc

    def copy_up(self, name: str, rootfs: str, target: str) -> None:
        """Copy the image content at ``target`` into volume ``name`` if the volume is empty."""
        data = self.path(name)
        try:
            if os.listdir(data):
                return
        except FileNotFoundError:
            return
        from sampan._sys.openat2 import RESOLVE_IN_ROOT, openat2

        try:
            root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fd = openat2(root, target.lstrip("/"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, RESOLVE_IN_ROOT)
        except OSError:
            return  # nothing at that path in the image: nothing to copy
        finally:
            os.close(root)
        try:
            src = f"/proc/self/fd/{fd}/."
            proc = subprocess.run(["cp", "-a", src, data + "/"], capture_output=True, text=True, pass_fds=(fd,))
            if proc.returncode != 0:
                raise errors.Internal(f"copy image content into volume {name}: {proc.stderr.strip()}")
            st = os.stat(f"/proc/self/fd/{fd}")
            os.chown(data, st.st_uid, st.st_gid)
            os.chmod(data, st.st_mode & 0o7777)
        finally:
            os.close(fd)
