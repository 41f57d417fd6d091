"""WAL checkpoints of the node's SQLite databases run in a thread of their own, never in the
thread whose COMMIT crossed the threshold (that request would wait for two fsyncs)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from xds.registry import db


def _wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_checkpoints_run_off_the_committing_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    real = db.wal_checkpoint

    def recording(conn: Any) -> None:
        raw = getattr(conn, "dbapi_connection", conn)
        path = raw.execute("PRAGMA database_list").fetchone()[2]
        seen.append((threading.current_thread().name, path))
        real(conn)

    monkeypatch.setattr(db, "wal_checkpoint", recording)
    database = tmp_path / "registry.sqlite"
    engine = db.create_registry_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.commit()
        for i in range(db.SQLITE_CHECKPOINT_EVERY * 2):
            with engine.connect().execution_options(xds_write=True) as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
                conn.commit()
        assert _wait_for(lambda: len(seen) >= 1)
        assert {name for name, _ in seen} == {"xds-wal-checkpoint"}
        assert {Path(p).resolve() for _, p in seen} == {database.resolve()}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == db.SQLITE_CHECKPOINT_EVERY * 2
    finally:
        engine.dispose()


def test_a_database_removed_before_its_checkpoint_is_not_created_again(tmp_path: Path) -> None:
    gone = tmp_path / "gone.sqlite"
    db._Checkpointer.request(str(gone))
    marker = tmp_path / "present.sqlite"
    sqlite3.connect(marker).close()
    db._Checkpointer.request(str(marker))  # requests are served in order: once this one is done, so is the first
    assert _wait_for(lambda: not db._Checkpointer._pending)
    time.sleep(0.2)
    assert not gone.exists()
