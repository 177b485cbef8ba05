"""Where shipped records end up: the :class:`Sink` protocol and the SQL database behind it.

The shipper knows only the protocol, so a distributed log (Kafka...) can come in later
without touching the request path. A sink sorts its failures in two: :class:`SinkDown` (the
store is unreachable: try again later, with everything) and :class:`SinkRejected` (the store
refused this data: the shipper splits the batch to find the record at fault).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from services.gateway.inference_log.records import COLUMNS, Record
from shared.db.models import Inference
from shared.db.rollups import deltas_of


class SinkDown(Exception):
    """The store cannot take anything now (no connection, or a failure not about the data)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class SinkRejected(Exception):
    """The store refused the data itself (a value that does not fit, a constraint)."""


class Sink(Protocol):
    def write(self, records: Sequence[Record]) -> int:
        """Store the records, each at most once (by id); the count newly stored."""

    def close(self) -> None: ...


_COPY = f"COPY pg_temp.shipping ({', '.join(COLUMNS)}) FROM STDIN"
_MERGE = text(f"INSERT INTO inferences ({', '.join(COLUMNS)}) "  # nosec B608 - column names
              f"SELECT {', '.join(COLUMNS)} FROM pg_temp.shipping "  # from the model, no input
              "ON CONFLICT DO NOTHING RETURNING id")


class SqlSink:
    """PostgreSQL (``COPY`` into a temporary table, then one ``INSERT ... ON CONFLICT DO
    NOTHING``) or SQLite; the rows and their hourly rollups in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, records: Sequence[Record]) -> int:
        try:
            with self.engine.begin() as connection:
                inserted = self._rows(connection, records)
                deltas_of(r for r in records if r["id"] in inserted).write(connection)
        except (DBAPIError, psycopg.Error, sqlite3.Error) as exc:
            raise _sorted(exc) from exc
        return len(inserted)

    def _rows(self, connection: Any, records: Sequence[Record]) -> set[str]:
        if not self.postgres:
            statement = sqlite_insert(Inference).on_conflict_do_nothing().returning(Inference.id)
            return set(connection.scalars(statement, [dict(r) for r in records]))
        connection.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS shipping "
                                "(LIKE inferences INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(_COPY) as copy:
            for record in records:
                copy.write_row([_cell(c, record.get(c)) for c in COLUMNS])
        return set(connection.scalars(_MERGE))

    def close(self) -> None:
        self.engine.dispose()


def _cell(column: str, value: Any) -> Any:
    if column == "top_k":
        return orjson.dumps(value if value is not None else {}).decode()
    return value


def _sorted(exc: Exception) -> Exception:
    """Data problems are the data's; everything else means "not now"."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return SinkDown("database_down")
    if isinstance(original, _REJECTED):
        return SinkRejected(f"{type(original).__name__}: {original}".strip())
    return SinkDown("database_down" if isinstance(original, _DOWN) else "database_error")


_REJECTED = (psycopg.DataError, psycopg.IntegrityError, sqlite3.DataError, sqlite3.IntegrityError)
_DOWN = (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)
