"""What the registry client remembers between pulls and pushes (rows in ``sampan.db``).

* ``layer_blobs``: for a layer (its diff_id), the compressed blob made for a push, so a second
  push recompresses nothing.  The blob is also listed in ``image_blobs`` for the image pushed,
  so it lives exactly as long as an image that names it (and ``reconcile`` keeps it).
* ``blob_repos``: registries and repositories a blob is known to be in (pulled from or pushed
  to), for cross-repository mounts (``POST .../uploads/?mount=D&from=REPO``).
"""

from __future__ import annotations

from sampan.image.store import ImageStore

COMPONENT = "distribution"
MIGRATIONS: list[str] = [
    """
    CREATE TABLE layer_blobs (
        diff_id TEXT NOT NULL,
        compression TEXT NOT NULL,
        blob TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (diff_id, compression)
    );
    CREATE TABLE blob_repos (
        digest TEXT NOT NULL,
        registry TEXT NOT NULL,
        repo TEXT NOT NULL,
        PRIMARY KEY (digest, registry, repo)
    );
    """,
]


class Metadata:
    def __init__(self, store: ImageStore) -> None:
        self.store = store
        store.db.migrate(COMPONENT, MIGRATIONS)

    def compressed(self, diff_id: str, compression: str) -> tuple[str, int] | None:
        """The cached compressed blob of a layer, if it is still in the content store."""
        row = self.store.db.query_one(
            "SELECT blob, size FROM layer_blobs WHERE diff_id = ? AND compression = ?", (diff_id, compression)
        )
        if row is None or not self.store.content.exists(str(row["blob"])):
            return None
        return str(row["blob"]), int(row["size"])

    def remember_compressed(self, image_id: str, diff_id: str, compression: str, blob: str, size: int) -> None:
        with self.store.lock, self.store.db.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO layer_blobs (diff_id, compression, blob, size) VALUES (?, ?, ?, ?)",
                (diff_id, compression, blob, size),
            )
            if tx.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone():
                tx.execute("INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)", (image_id, blob))

    def repos_of(self, digest: str, registry: str) -> list[str]:
        rows = self.store.db.query(
            "SELECT repo FROM blob_repos WHERE digest = ? AND registry = ? ORDER BY repo", (digest, registry)
        )
        return [str(r["repo"]) for r in rows]

    def remember_repo(self, digests: list[str], registry: str, repo: str) -> None:
        with self.store.db.transaction() as tx:
            tx.executemany(
                "INSERT OR IGNORE INTO blob_repos (digest, registry, repo) VALUES (?, ?, ?)",
                [(d, registry, repo) for d in digests],
            )
