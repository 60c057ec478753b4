"""The image store's tables in ``sampan.db`` and the records read from them.

Reference counting is derived, never counted: a blob is in use while an ``image_blobs`` row
names it, a layer (committed snapshot named by its chain ID) while an ``image_layers`` row
names its chain ID.  Removing an image deletes its rows in one transaction; what no remaining
row names is then freed.

::

    images        id (sha256 of config) | config (JSON text, exact blob bytes) | created | size |
                  parent | comment | manifest_digest | added (unix) | last_tag_time
    image_layers  image_id | idx | diff_id | chain_id | blob | media_type | blob_size | size
    image_blobs   image_id | digest          (config, manifest, every layer blob)
    refs          ref (fully qualified) | image_id | kind ('tag' or 'digest') | added
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

COMPONENT = "images"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        created TEXT NOT NULL,
        size INTEGER NOT NULL,
        parent TEXT NOT NULL DEFAULT '',
        comment TEXT NOT NULL DEFAULT '',
        manifest_digest TEXT,
        added REAL NOT NULL,
        last_tag_time TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        diff_id TEXT NOT NULL,
        chain_id TEXT NOT NULL,
        blob TEXT NOT NULL,
        media_type TEXT NOT NULL,
        blob_size INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (image_id, idx)
    );
    CREATE INDEX image_layers_chain ON image_layers (chain_id);
    CREATE TABLE image_blobs (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (image_id, digest)
    );
    CREATE INDEX image_blobs_digest ON image_blobs (digest);
    CREATE TABLE refs (
        ref TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
        added REAL NOT NULL
    );
    CREATE INDEX refs_image ON refs (image_id);
    """,
]


@dataclass(frozen=True)
class LayerRecord:
    """One layer of an image as stored: its diff, its chain and the blob it came from."""

    diff_id: str
    chain_id: str
    blob: str
    media_type: str
    blob_size: int
    size: int


@dataclass
class Image:
    """An image of the local store (engine data; api/ turns it into Docker's JSON)."""

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    config: dict[str, Any]
    created: str
    size: int
    diff_ids: list[str]
    chain_ids: list[str]
    parent: str = ""
    comment: str = ""
    manifest_digest: str | None = None
    last_tag_time: str = ""
    added: float = 0.0
    layers: list[LayerRecord] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        section = self.config.get("config") or {}
        return dict(section.get("Labels") or {})


@dataclass
class HistoryEntry:
    """One row of ``docker history``, newest first."""

    id: str
    created: int
    created_by: str
    size: int
    comment: str
    tags: list[str]


@dataclass
class ImageUsage:
    image: Image
    size: int
    shared_size: int
    unique_size: int
    containers: int = 0


@dataclass
class ImagesUsage:
    """What ``system df`` needs about images: per image, and the total of distinct layers."""

    layers_size: int
    images: list[ImageUsage]


def image_from_rows(
    row: sqlite3.Row, layers: list[sqlite3.Row], refs: list[sqlite3.Row]
) -> Image:
    from sampan.image.reference import parse

    records = [
        LayerRecord(
            diff_id=r["diff_id"], chain_id=r["chain_id"], blob=r["blob"],
            media_type=r["media_type"], blob_size=int(r["blob_size"]), size=int(r["size"]),
        )
        for r in sorted(layers, key=lambda r: int(r["idx"]))
    ]
    tags = [parse(r["ref"]).familiar() for r in refs if r["kind"] == "tag"]
    digests = [parse(r["ref"]).familiar() for r in refs if r["kind"] == "digest"]
    return Image(
        id=row["id"],
        repo_tags=tags,
        repo_digests=digests,
        config=json.loads(row["config"]),
        created=row["created"],
        size=int(row["size"]),
        diff_ids=[r.diff_id for r in records],
        chain_ids=[r.chain_id for r in records],
        parent=row["parent"],
        comment=row["comment"],
        manifest_digest=row["manifest_digest"],
        last_tag_time=row["last_tag_time"],
        added=float(row["added"]),
        layers=records,
    )
