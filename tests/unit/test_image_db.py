"""storage/db.py: transactions, savepoints, migrations, thread safety."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sampan.errors import Internal
from sampan.storage.db import Database

V1 = """
CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE INDEX t_v ON t (v);
"""


def test_migrate_applies_once_and_persists(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "sampan.db")
    assert db.migrate("things", [V1]) == 1
    db.execute("INSERT INTO t (k, v) VALUES ('a', 1)")
    assert db.migrate("things", [V1]) == 1  # not re-applied (would fail: table exists)
    db.close()
    db = Database.open(tmp_path / "sampan.db")
    assert db.query_one("PRAGMA journal_mode")[0] == "wal"
    assert db.version("things") == 1
    assert db.migrate("things", [V1, "ALTER TABLE t ADD COLUMN w TEXT;"]) == 2
    assert db.query_one("SELECT k, v, w FROM t")["k"] == "a"


def test_newer_schema_refused() -> None:
    db = Database.memory()
    db.migrate("x", [V1, "CREATE TABLE u (a TEXT);"])
    with pytest.raises(Internal, match="newer"):
        db.migrate("x", [V1])


def test_failed_migration_rolls_back() -> None:
    db = Database.memory()
    with pytest.raises(Internal, match="migration x v1"):
        db.migrate("x", ["CREATE TABLE a (b TEXT);\nCREATE TABLE a (b TEXT);"])
    assert db.version("x") == 0
    assert db.query("SELECT name FROM sqlite_master WHERE name = 'a'") == []


def test_transaction_rollback_and_savepoint() -> None:
    db = Database.memory()
    db.migrate("x", [V1])
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('a', 1)")
        raise RuntimeError("boom")
    assert db.query("SELECT * FROM t") == []
    with db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('a', 1)")
        with pytest.raises(RuntimeError), db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES ('b', 2)")
            raise RuntimeError("inner")
    assert [r["k"] for r in db.query("SELECT k FROM t")] == ["a"]


def test_threads_serialize(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "sampan.db")
    db.migrate("x", [V1])
    db.execute("INSERT INTO t VALUES ('n', 0)")

    def bump() -> None:
        for _ in range(50):
            with db.transaction() as tx:
                v = tx.execute("SELECT v FROM t WHERE k = 'n'").fetchone()[0]
                tx.execute("UPDATE t SET v = ? WHERE k = 'n'", (v + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.query_one("SELECT v FROM t")["v"] == 200
