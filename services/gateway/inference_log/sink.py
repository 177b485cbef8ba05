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

import psycopg
from sqlalchemy import Double, Engine, bindparam, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from services.gateway.inference_log.records import COLUMNS, decode
from shared.db.models import Inference
from shared.db.rollups import deltas_of, upsert_from_sql


class SinkDown(Exception):
    """The store cannot take anything now (no connection, or a failure not about the data)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class SinkRejected(Exception):
    """The store refused the data itself (a value that does not fit, a constraint)."""


class Sink(Protocol):
    def write(self, payloads: Sequence[bytes]) -> int:
        """Store the records (JSON objects, as the local log holds them), each at most once
        (by id); the count newly stored."""

    def close(self) -> None: ...


# PostgreSQL: the JSON goes in as it is (one ``json`` array parameter) and one statement turns
# it into rows and adds the rollups of the rows really inserted: no decoding in Python, and no
# staging table (measured: a COPY into a temporary jsonb table and a second pass over it cost
# 8-27% more per batch). A record logged before inference roles existed has none: it was a
# production answer.
_COLUMNS = ", ".join(COLUMNS)
_VALUES = ", ".join("coalesce(role, 'production')" if c == "role" else c for c in COLUMNS)
# Table and column names are the model's and the rollups' own; the values are one parameter.
_INSERT = (f"INSERT INTO inferences ({_COLUMNS}) SELECT {_VALUES} FROM "  # nosec B608
           "json_populate_recordset(NULL::inferences, CAST(:records AS json)) "
           "ON CONFLICT DO NOTHING RETURNING *")
_ROLLUPS = ", ".join(f"rollup_{i} AS ({sql})"
                     for i, sql in enumerate(upsert_from_sql("inserted")))
_SHIP = text(f"WITH inserted AS ({_INSERT}), {_ROLLUPS} "  # nosec B608
             "SELECT count(*) FROM inserted").bindparams(
    bindparam("inf", float("inf"), type_=Double()))


class SqlSink:
    """PostgreSQL (one statement for the JSON records, the rows and their hourly rollups) or
    SQLite (decoded here, rollups added by :class:`shared.db.rollups.Deltas`); one transaction
    per batch either way."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, payloads: Sequence[bytes]) -> int:
        try:
            with self.engine.begin() as connection:
                if self.postgres:
                    return self._postgres(connection, payloads)
                return self._sqlite(connection, payloads)
        except (DBAPIError, psycopg.Error, sqlite3.Error) as exc:
            raise _sorted(exc) from exc

    @staticmethod
    def _postgres(connection: Any, payloads: Sequence[bytes]) -> int:
        try:
            records = (b"[" + b",".join(payloads) + b"]").decode()
        except UnicodeDecodeError as exc:
            raise SinkRejected(f"a record is not UTF-8: {exc}") from None
        return int(connection.scalar(_SHIP, {"records": records}))

    @staticmethod
    def _sqlite(connection: Any, payloads: Sequence[bytes]) -> int:
        try:
            records = [decode(p) for p in payloads]
        except ValueError as exc:
            raise SinkRejected(f"not a valid record: {exc}") from None
        statement = sqlite_insert(Inference).on_conflict_do_nothing().returning(Inference.id)
        inserted = set(connection.scalars(statement, records))
        deltas_of(r for r in records if r["id"] in inserted).write(connection)
        return len(inserted)

    def close(self) -> None:
        self.engine.dispose()


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
