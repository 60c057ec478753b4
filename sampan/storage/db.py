"""The SQLite metadata database every daemon component shares: ``<data-root>/sampan.db``.

One :class:`Database` per data root, opened once by the daemon and passed down explicitly.
It is a single connection in WAL mode guarded by a re-entrant lock, so that threads (the
daemon runs blocking store work in ``asyncio.to_thread``) never interleave statements.

* ``transaction()`` is the only way to change data: ``BEGIN IMMEDIATE`` ... ``COMMIT``, or
  ``ROLLBACK`` if the block raises.  Nested calls become savepoints, so a helper that needs a
  transaction can be called from inside another one.  Either every row of a change lands or
  none does, also when the process is killed (SQLite's journal guarantees it).
* ``migrate(component, steps)`` keeps one schema version per component (``images``,
  ``containers``, ``networks``...) in the table ``schema_versions``; it applies, in order and
  each in its own transaction, the steps not applied yet.  A step is SQL text (run with
  ``executescript`` semantics, statement by statement) or a callable taking the connection.
  Steps are append-only: never edit a released one, add a new one.
* ``query``/``query_one`` read; rows are ``sqlite3.Row`` (index by column name).

Typical use::

    db = Database.open(data_root / "sampan.db")
    db.migrate("images", [IMAGES_V1, IMAGES_V2])
    with db.transaction() as tx:
        tx.execute("INSERT INTO tags (ref, image_id) VALUES (?, ?)", (ref, image_id))
    rows = db.query("SELECT ref FROM tags WHERE image_id = ?", (image_id,))
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sampan.errors import Internal, InvalidArgument, from_oserror

Migration = str | Callable[[sqlite3.Connection], None]
Params = Sequence[Any] | dict[str, Any]


def _statements(script: str) -> Iterator[str]:
    """Split SQL text into complete statements (sqlite3.complete_statement decides)."""
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                yield current
            current = ""
    if current.strip():
        raise InvalidArgument(f"incomplete SQL statement in migration: {current.strip()[:60]!r}")


class Database:
    """A thread-safe SQLite connection with transactions and per-component migrations."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database at ``path``; WAL, foreign keys on."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except OSError as exc:
            raise from_oserror(exc, f"open database {path}") from exc
        except sqlite3.Error as exc:
            raise Internal(f"open database {path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise Internal(f"open database {path}: {exc}") from exc
        return cls(conn, path)

    @classmethod
    def memory(cls) -> Database:
        """An in-memory database (unit tests)."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(
            "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        return cls(conn, Path(":memory:"))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block atomically; nested blocks are savepoints of the outer one."""
        with self._lock:
            depth = self._depth
            savepoint = f"sp{depth}"
            try:
                self._conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            except sqlite3.Error as exc:
                raise Internal(f"database {self.path}: begin transaction: {exc}") from exc
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self._conn.execute("ROLLBACK")
                else:
                    self._conn.execute(f"ROLLBACK TO {savepoint}")
                    self._conn.execute(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            try:
                self._conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except sqlite3.Error as exc:
                if depth == 0:
                    self._conn.execute("ROLLBACK")
                raise Internal(f"database {self.path}: commit: {exc}") from exc

    # ------------------------------------------------------------------ reads

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise Internal(f"database query failed: {exc}") from exc

    def query_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own transaction (or the current one); returns the rowcount."""
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount

    # ------------------------------------------------------------------ schema

    def version(self, component: str) -> int:
        row = self.query_one(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        )
        return int(row["version"]) if row else 0

    def migrate(self, component: str, steps: Sequence[Migration]) -> int:
        """Apply the steps of ``component`` not applied yet; return the resulting version."""
        with self._lock:
            current = self.version(component)
            if current > len(steps):
                raise Internal(
                    f"database {self.path}: schema of {component!r} is version {current}, "
                    f"newer than this sampan knows ({len(steps)})"
                )
            for number, step in enumerate(steps[current:], start=current + 1):
                with self.transaction() as tx:
                    try:
                        if callable(step):
                            step(tx)
                        else:
                            for statement in _statements(step):
                                tx.execute(statement)
                    except sqlite3.Error as exc:
                        raise Internal(
                            f"database {self.path}: migration {component} v{number}: {exc}"
                        ) from exc
                    tx.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                        " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, number),
                    )
            return max(current, len(steps))
