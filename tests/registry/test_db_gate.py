"""The SQLite writer gate (xds.registry.db._WriterGate): a writer kept waiting is logged with the
thread holding the gate, and one that waits past the busy timeout fails instead of hanging."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from xds.registry import db


@pytest.fixture
def engine(tmp_path: Path):
    engine = db.create_registry_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    with engine.connect().execution_options(xds_write=True) as conn, conn.begin():
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def hold_gate(engine, held: threading.Event, release: threading.Event) -> threading.Thread:
    def writer() -> None:
        with engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            conn.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            release.wait(10)

    thread = threading.Thread(target=writer, name="slow-writer")
    thread.start()
    assert held.wait(5)
    return thread


def test_a_writer_kept_waiting_is_logged_with_the_holder(engine, monkeypatch, caplog):
    monkeypatch.setattr(db, "GATE_WAIT_WARNING_S", 0.2)
    held, release = threading.Event(), threading.Event()
    holder = hold_gate(engine, held, release)
    threading.Timer(0.6, release.set).start()
    with caplog.at_level(logging.WARNING, "xds.registry.db"):
        with engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            conn.execute(text("INSERT INTO t VALUES (2)"))
    holder.join(5)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "waiting for slow-writer, in its write transaction for" in warning
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_writer_waiting_past_the_busy_timeout_fails_and_says_so(engine, monkeypatch, caplog):
    monkeypatch.setattr(db, "GATE_WAIT_WARNING_S", 0.1)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    held, release = threading.Event(), threading.Event()
    holder = hold_gate(engine, held, release)
    try:
        with (
            caplog.at_level(logging.WARNING, "xds.registry.db"),
            pytest.raises(Exception, match="database is locked"),
        ):
            with engine.connect().execution_options(xds_write=True) as conn, conn.begin():
                conn.execute(text("INSERT INTO t VALUES (2)"))
    finally:
        release.set()
        holder.join(5)
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR"]
    assert "still held by slow-writer" in caplog.records[-1].getMessage()
