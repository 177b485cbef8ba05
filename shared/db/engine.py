"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite.

On PostgreSQL every wait is bounded, so a dead, frozen or cut-off server costs a request a
few seconds and a 503 (``shared.errors``), never a hung worker: the connect (5 s), a
statement (``statement_timeout_s``, 30 s by default; migrations lift it), a transaction left
idle (60 s), a free connection from the pool (5 s), and a half-open TCP connection (keepalives
find a silent peer in about 25 s; unacknowledged writes give up after 15 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy.exc
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# What the database failing looks like from here: lost or refused connections, timeouts (a
# statement cancelled, no free connection in the pool). Anything else is a bug to log.
DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)


def normalize_url(url: str) -> str:
    """Accept the ``postgresql://`` and ``postgres://`` spellings; psycopg 3 drives them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | SecretStr, *, statement_timeout_s: float | None = 30.0,
                **kwargs: Any) -> Engine:
    """``url``: a settings' ``database_url`` (a secret: it may hold a password) or a plain one.
    ``statement_timeout_s``: PostgreSQL's bound on any one statement (None: none)."""
    if isinstance(url, SecretStr):
        url = url.get_secret_value()
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Added to the URL's own ``options`` (a search_path, say), which connect_args replace.
        given = parsed.query.get("options", "")
        options = " ".join([*(given if isinstance(given, tuple) else [given]),
                            "-c idle_in_transaction_session_timeout=60000"]).strip()
        if statement_timeout_s is not None:
            options += f" -c statement_timeout={round(statement_timeout_s * 1000)}"
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                             pool_timeout=5, connect_args={
                                 "connect_timeout": 5, "options": options, "keepalives": 1,
                                 "keepalives_idle": 10, "keepalives_interval": 5,
                                 "keepalives_count": 3, "tcp_user_timeout": 15000},
                             **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL: readers never block the one writer; the trainer's worker thread and API share it.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
