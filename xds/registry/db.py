"""Database engines for the registry and start-up migrations.

SQLite is the embedded default: WAL journal (readers never block the writer), foreign keys on, and a
busy timeout so concurrent writers wait instead of failing. Write transactions start with
``BEGIN IMMEDIATE`` (pass ``execution_options(xds_write=True)``) so two writers never deadlock
upgrading a read lock, after taking a writer gate (:class:`_WriterGate`) that queues them. PostgreSQL is the production backend through psycopg 3
(``postgresql+psycopg://``).

:func:`migrate` brings a database to the newest schema revision. The Alembic configuration is built
in code, so it works from an installed package with no ``alembic.ini`` on disk.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
GATE_WAIT_WARNING_S = 5.0  # a writer waiting this long for the writer gate is logged, with the holder
SQLITE_CHECKPOINT_EVERY = 20  # commits of an engine between WAL checkpoints (~1000 pages of ITI-42)

log = logging.getLogger("xds.registry.db")

# Key of the PostgreSQL advisory lock held while migrating, so nodes starting together migrate once.
_MIGRATION_LOCK_KEY = 0x584453_52454721  # "XDSREG!"

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_registry_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An Engine for ``url``: ``sqlite:///path`` or ``postgresql+psycopg://user@host/db``.

    A plain ``postgresql://`` URL is taken to mean psycopg 3.
    """
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, echo)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
    if u.get_backend_name() == "postgresql":
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    return create_engine(u, **kwargs)


def same_database(a: Engine, b: Engine) -> bool:
    """Do connections of ``a`` and ``b`` reach one database (so one transaction can write the
    tables of both)? Two engines on one in-memory SQLite URL hold two databases."""
    if a is b:
        return True
    if a.url.render_as_string(hide_password=False) != b.url.render_as_string(hide_password=False):
        return False
    return not (a.url.get_backend_name() == "sqlite" and a.url.database in (None, "", ":memory:"))


def _sqlite_engine(u: Any, echo: bool) -> Engine:
    memory = u.database in (None, "", ":memory:")
    if not memory:
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"echo": echo}
    if memory:
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: SQLAlchemy's "begin" event issues BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                # checkpoints run in a thread of their own (_Checkpointer), not inside the COMMIT
                # of whichever writer crossed the threshold
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cur.close()

    gate = _WriterGate(None) if memory else _WriterGate.for_database(u.database)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get("xds_write", False):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        gate.acquire(dbapi_conn)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.release(dbapi_conn)
            raise

    # the gate opens once the transaction has ended (SQLAlchemy's commit/rollback events come before)
    dialect = engine.dialect
    for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        setattr(dialect, name, gate.releasing(getattr(dialect, name), checkpoint=name == "do_commit"))
    return engine


class _WriterGate:
    """One write transaction at a time on a SQLite file, across the threads of a process (a lock)
    and across processes (``flock`` on ``<database>-writer.lock``), taken before ``BEGIN
    IMMEDIATE``. Writers then queue in the kernel and the next one starts as soon as the last one
    ends, instead of polling in SQLite's busy handler, which sleeps up to 100 ms between attempts
    and, with a few dozen concurrent ITI-42 requests in two uvicorn workers, left the database idle
    most of the time. The kernel drops the lock of a process that dies.

    The engines of one process on the same file (registry, repository index, imaging) share one
    gate: two open file descriptions of the lock file would exclude each other in the kernel, where
    no timeout applies. Both waits are bounded by the busy timeout, so a writer that never ends
    makes the others fail with "database is locked" instead of hanging."""

    _shared: dict[str, _WriterGate] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def for_database(cls, database: str) -> _WriterGate:
        path = os.path.realpath(database) + "-writer.lock"
        with cls._shared_lock:
            gate = cls._shared.get(path)
            if gate is None:
                gate = cls._shared[path] = cls(path)
            return gate

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.pid = 0
        self.holder: int | None = None  # id() of the DBAPI connection in its write transaction
        self.holder_thread = ""  # for the log of a writer that waits long
        self.since = 0.0
        self.commits = itertools.count(1)

    def acquire(self, dbapi_conn: Any) -> None:
        started = time.monotonic()
        deadline = started + SQLITE_BUSY_TIMEOUT_MS / 1000
        if not self.lock.acquire(timeout=min(GATE_WAIT_WARNING_S, SQLITE_BUSY_TIMEOUT_MS / 1000)):
            # a writer this slow is a fault to find (a stuck disk, a transaction left open): say who
            held_by, since = self.holder_thread, self.since
            log.warning("writer gate of %s: waiting for %s, in its write transaction for %.1f s",
                        self.path or "an in-memory database", held_by, time.monotonic() - since)
            if not self.lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
                log.error("writer gate of %s: gave up after %.1f s, still held by %s",
                          self.path or "an in-memory database", time.monotonic() - started, self.holder_thread)
                raise sqlite3.OperationalError("database is locked (writer gate)")
        try:
            if self.path is not None:
                if self.fd is None or self.pid != os.getpid():  # not an fd inherited through fork
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                    self.pid = os.getpid()
                self._flock(deadline)
        except BaseException:
            self.lock.release()
            raise
        self.holder = id(getattr(dbapi_conn, "dbapi_connection", dbapi_conn))
        self.holder_thread = threading.current_thread().name
        self.since = time.monotonic()

    def _flock(self, deadline: float) -> None:
        """The inter-process lock: at once when free (the common case), else polled with a
        growing pause (0.2 to 5 ms) until ``deadline``."""
        pause = 0.0002
        warn_at = time.monotonic() + GATE_WAIT_WARNING_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    log.error("writer gate of %s: gave up waiting for another process's writer", self.path)
                    raise sqlite3.OperationalError("database is locked (writer gate of another process)") from None
                if now >= warn_at:
                    log.warning("writer gate of %s: waiting for another process's writer for %.1f s",
                                self.path, now - warn_at + GATE_WAIT_WARNING_S)
                    warn_at = float("inf")
                time.sleep(pause)
                pause = min(pause * 2, 0.005)

    def release(self, dbapi_conn: Any) -> None:
        # SQLAlchemy hands the dialect the pool's proxy or the DBAPI connection itself
        dbapi_conn = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
        if self.holder is None or self.holder != id(dbapi_conn):
            return
        self.holder = None
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()

    def releasing(self, method: Any, *, checkpoint: bool = False) -> Any:
        def wrapper(dbapi_conn: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = method(dbapi_conn, *args, **kwargs)
            finally:
                self.release(dbapi_conn)
            if checkpoint and self.path is not None and next(self.commits) % SQLITE_CHECKPOINT_EVERY == 0:
                _Checkpointer.request(self.path.removesuffix("-writer.lock"))
            return result

        return wrapper


class _Checkpointer:
    """One thread per process that checkpoints the WAL of the databases named to it, each on a
    connection of its own. A checkpoint is two fsyncs (10-300 ms on a slow disk): run by the
    committing thread, it held back that request's answer, and with a group-commit writer (the
    audit trail) every request waiting for that writer's next commit."""

    _pending: dict[str, None] = {}
    _cond = threading.Condition()
    _pid = 0

    @classmethod
    def request(cls, database: str) -> None:
        with cls._cond:
            if cls._pid != os.getpid():  # first request in this process (or a forked child)
                cls._pid = os.getpid()
                cls._pending = {}
                threading.Thread(target=cls._run, name="xds-wal-checkpoint", daemon=True).start()
            cls._pending[database] = None
            cls._cond.notify()

    @classmethod
    def _run(cls) -> None:
        while True:
            with cls._cond:
                while not cls._pending:
                    cls._cond.wait()
                database = next(iter(cls._pending))
                del cls._pending[database]
            try:
                # mode=rw: a database removed meanwhile is not created again
                raw = sqlite3.connect(Path(database).as_uri() + "?mode=rw", uri=True)
            except sqlite3.Error as e:
                log.debug("WAL checkpoint of %s skipped: %s", database, e)
                continue
            try:
                wal_checkpoint(raw)
            finally:
                raw.close()


def wal_checkpoint(dbapi_conn: Any) -> None:
    """Copy the WAL into the database file (PASSIVE: never waits for readers or writers). With a
    slow disk a checkpoint (two fsyncs) takes 10-300 ms: SQLite's automatic one runs inside the
    COMMIT of the writer that crossed its threshold, which still holds the writer gate then, so
    every writer would wait for the disk; the node's run in :class:`_Checkpointer`."""
    raw = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
    try:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as e:  # another checkpoint running; the next one will do
        log.debug("WAL checkpoint skipped: %s", e)


class DriverStatement:
    """A hot statement (SQLAlchemy Core) compiled once per dialect and run on the DBAPI cursor of a
    SQLAlchemy connection, in its transaction: the column types' bind processors (JSON, DateTime)
    still apply and driver errors come back as SQLAlchemy's (IntegrityError, OperationalError), but
    SQLAlchemy's per-execution work (cache key, compiled-cache lookup, result setup) is skipped. For
    statements whose results need no type processing (ids, strings, numbers)."""

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any], dict[str, Any]]] = {}

    def _prepare(self, conn: Any, params: dict[str, Any]) -> tuple[str, Any]:
        entry = self._compiled.get(conn.dialect.name)
        if entry is None:
            compiled = self.stmt.compile(dialect=conn.dialect)
            names = compiled.positiontup
            entry = self._compiled[conn.dialect.name] = (
                compiled.string, tuple(names) if names is not None else None,
                dict(compiled._bind_processors), dict(compiled.params),
            )
        sql, names, processors, defaults = entry
        values = {**defaults, **params}
        for name, process in processors.items():
            if name in values:
                values[name] = process(values[name])
        return sql, tuple(values[n] for n in names) if names is not None else values

    def _execute(self, conn: Any, params: dict[str, Any], result: Any) -> Any:
        sql, values = self._prepare(conn, params)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(sql, values)
            return result(cursor)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, sql, values, exc) from exc
        finally:
            cursor.close()

    def run(self, conn: Any, params: dict[str, Any]) -> int:
        """Execute with ``params`` (by the statement's parameter names); the rowcount."""
        return self._execute(conn, params, lambda cursor: cursor.rowcount)

    def rows(self, conn: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._execute(conn, params, lambda cursor: cursor.fetchall())

    def scalar(self, conn: Any, params: dict[str, Any]) -> Any:
        """The first column of the first row (or the RETURNING value), None without a row."""

        def first(cursor: Any) -> Any:
            row = cursor.fetchone()
            return row[0] if row is not None else None

        return self._execute(conn, params, first)

    def run_many(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        prepared = [self._prepare(conn, row) for row in rows]
        sql, many = prepared[0][0], [values for _, values in prepared]
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, many)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, sql, many, exc) from exc
        finally:
            cursor.close()


def _wrapped(conn: Any, sql: str, params: Any, exc: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it (IntegrityError, OperationalError: callers retry)."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect)


def alembic_config(url: str | None = None) -> Any:
    """The Alembic Config of the registry, built without an ini file."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url_or_engine: str | Engine, revision: str = "heads") -> None:
    """Upgrade the database to ``revision`` (the newest by default), all revisions in one
    transaction. Safe to call from several processes at once: SQLite serialises them with BEGIN
    IMMEDIATE, PostgreSQL with an advisory lock held for the transaction."""
    from alembic import command

    engine = create_registry_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        cfg = alembic_config()
        with engine.connect().execution_options(xds_write=True) as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # A batch migration recreates a table; with foreign keys on, dropping the old one
                # would cascade-delete its children. The pragma only works outside a transaction.
                _raw(conn).execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
            finally:
                if sqlite:
                    _raw(conn).execute("PRAGMA foreign_keys=ON")
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def _raw(conn: Any) -> Any:
    """The DBAPI connection, for statements that must run outside any SQLAlchemy transaction."""
    return conn.connection.dbapi_connection


def head_revision() -> str:
    """The newest revision the code ships (what :func:`migrate` upgrades to)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"registry migrations have {len(heads)} heads: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
