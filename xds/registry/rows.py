"""Rows of the registry tables handed to the database driver directly.

SQLAlchemy's per-row parameter handling of an ``executemany`` costs more than SQLite's insert
itself. :class:`RowWriter` turns the row dicts the store builds into DBAPI value tuples the way
an SQLAlchemy INSERT would (column defaults filled in, each column type's bind processing
applied) and sends them with the driver's ``executemany``, or ``COPY FROM STDIN`` on PostgreSQL
(psycopg 3) for the bulk loader's large batches. Driver errors come out as SQLAlchemy's
``IntegrityError`` / ``DBAPIError``, as from any other statement.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError, IntegrityError


class RowWriter:
    """One table's rows as DBAPI value tuples, written with ``executemany`` or ``COPY``."""

    def __init__(self, table: Table, dialect: Any) -> None:
        self.table = table
        self.names = [c.name for c in table.columns]
        self.defaults: list[tuple[str, Any, bool]] = []
        self.processors: list[Callable[[Any], Any] | None] = []
        for c in table.columns:
            d = c.default
            if d is None or not (d.is_scalar or d.is_callable):
                self.defaults.append((c.name, None, False))
            else:
                self.defaults.append((c.name, d.arg, d.is_callable))
            if dialect.name == "postgresql":  # psycopg adapts everything but JSON
                self.processors.append(json.dumps if isinstance(c.type, JSON) else None)
            else:
                self.processors.append(c.type._cached_bind_processor(dialect))
        self.getter = operator.itemgetter(*self.names)
        self.processed = [(i, p) for i, p in enumerate(self.processors) if p is not None]

    def values(self, row: dict[str, Any]) -> list[Any]:
        if len(row) == len(self.names):  # every column given (the store's rows): the fast way
            out = list(self.getter(row))
        else:
            out = [
                row[name] if name in row else (default(None) if call else default)
                for name, default, call in self.defaults
            ]
        for i, proc in self.processed:
            if out[i] is not None:
                out[i] = proc(out[i])
        return out

    def write(self, conn: Connection, rows: list[dict[str, Any]], *, copy: bool = False) -> None:
        cols = ", ".join(f'"{n}"' for n in self.names)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if copy and conn.dialect.name == "postgresql":
                with cursor.copy(f'COPY "{self.table.name}" ({cols}) FROM STDIN') as stream:
                    for row in rows:
                        stream.write_row(self.values(row))
            elif conn.dialect.name == "postgresql":
                # one multi-row INSERT: one round trip (psycopg's executemany syncs a pipeline)
                marks = "(" + ", ".join(["%s"] * len(self.names)) + ")"
                step = _MAX_PARAMETERS // len(self.names)
                for i in range(0, len(rows), step):
                    chunk = rows[i : i + step]
                    sql = f'INSERT INTO "{self.table.name}" ({cols}) VALUES ' + ", ".join(
                        [marks] * len(chunk)
                    )
                    cursor.execute(sql, [v for row in chunk for v in self.values(row)])
            else:
                marks = ", ".join("?" * len(self.names))
                sql = f'INSERT INTO "{self.table.name}" ({cols}) VALUES ({marks})'
                cursor.executemany(sql, [self.values(row) for row in rows])
        except conn.dialect.loaded_dbapi.IntegrityError as e:
            raise IntegrityError(f"insert into {self.table.name}", None, e) from e
        except conn.dialect.loaded_dbapi.Error as e:
            raise DBAPIError(f"insert into {self.table.name}", None, e) from e
        finally:
            cursor.close()


_MAX_PARAMETERS = 30_000  # per statement; PostgreSQL's protocol allows 65535

_WRITERS: dict[tuple[str, Table], RowWriter] = {}


def write_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], *, copy: bool = False) -> None:
    """Insert ``rows`` (dicts by column name) into ``table`` on ``conn``, in its transaction;
    ``copy``: with COPY on PostgreSQL."""
    key = (conn.dialect.name, table)
    writer = _WRITERS.get(key)
    if writer is None:
        writer = _WRITERS[key] = RowWriter(table, conn.dialect)
    writer.write(conn, rows, copy=copy)
