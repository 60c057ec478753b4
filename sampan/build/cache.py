"""The build cache: which image a step produced before, keyed by everything it depends on.

A step is reused when its *key* matches: the parent image ID, the instruction as written
(after variable expansion), the effective build args it sees (for RUN: the environment it
runs with), and for COPY/ADD the digest of the sources' names, types, modes, link targets and
contents (``copy.source_digest``; an mtime alone never misses).  Keys live in ``sampan.db``
under the component ``build_cache`` (so the cache survives daemon restarts), next to the
image ID each produced; the images are ordinary untagged images of the store (the legacy
builder's intermediate images), so the layers stay while the cache names them.

When a lookup misses, :meth:`BuildCache.why_missed` says why (no entry for this parent, or
which part of the key differs from the closest entry), for the build's debug log.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sampan.storage.db import Database

COMPONENT = "build_cache"
MIGRATIONS: list[str] = [
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        instruction TEXT NOT NULL,
        detail TEXT NOT NULL,
        image_id TEXT NOT NULL,
        created REAL NOT NULL,
        last_used REAL NOT NULL
    );
    CREATE INDEX build_cache_parent ON build_cache (parent);
    CREATE INDEX build_cache_image ON build_cache (image_id);
    """,
]


@dataclass(frozen=True)
class StepKey:
    """What a step's result depends on (see the module docstring)."""

    parent: str
    instruction: str
    detail: dict[str, Any]

    @property
    def digest(self) -> str:
        doc = json.dumps([self.parent, self.instruction, self.detail], sort_keys=True)
        return hashlib.sha256(doc.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    key: str
    image_id: str
    created: float
    last_used: float


class BuildCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(COMPONENT, MIGRATIONS)

    def lookup(self, key: StepKey) -> str | None:
        """The image the step made before, if any (``touch`` the hits once the build is done:
        one write for the whole build, not one fsync per step)."""
        row = self.db.query_one("SELECT image_id FROM build_cache WHERE key = ?", (key.digest,))
        return None if row is None else str(row["image_id"])

    def touch(self, keys: list[StepKey]) -> None:
        """Record that these entries were used now (``last_used``, for ``system df``)."""
        if not keys:
            return
        now = time.time()
        with self.db.transaction() as tx:
            tx.executemany("UPDATE build_cache SET last_used = ? WHERE key = ?", [(now, k.digest) for k in keys])

    def record(self, key: StepKey, image_id: str) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO build_cache (key, parent, instruction, detail, image_id, created, last_used)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id,"
            " last_used = excluded.last_used",
            (key.digest, key.parent, key.instruction, json.dumps(key.detail, sort_keys=True), image_id, now, now),
        )

    def forget(self, key: StepKey) -> None:
        self.db.execute("DELETE FROM build_cache WHERE key = ?", (key.digest,))

    def why_missed(self, key: StepKey) -> str:
        rows = self.db.query("SELECT instruction, detail FROM build_cache WHERE parent = ?", (key.parent,))
        if not rows:
            return f"no cached step on parent {key.parent[7:19] or 'scratch'}"
        same = [r for r in rows if r["instruction"] == key.instruction]
        if not same:
            return "instruction changed (no cached step with this instruction on this parent)"
        detail = json.loads(same[0]["detail"])
        changed = sorted(k for k in set(detail) | set(key.detail) if detail.get(k) != key.detail.get(k))
        return "changed: " + ", ".join(changed) if changed else "cached image was removed"

    def entries(self) -> list[CacheEntry]:
        return [
            CacheEntry(r["key"], r["image_id"], r["created"], r["last_used"])
            for r in self.db.query("SELECT key, image_id, created, last_used FROM build_cache")
        ]

    def image_ids(self) -> set[str]:
        return {str(r["image_id"]) for r in self.db.query("SELECT DISTINCT image_id FROM build_cache")}

    def drop_images(self, image_ids: set[str]) -> int:
        """Forget every entry naming one of ``image_ids``; return how many went."""
        n = 0
        for image_id in image_ids:
            n += self.db.execute("DELETE FROM build_cache WHERE image_id = ?", (image_id,))
        return n
