"""The database every service shares: registry, training jobs (and later the inference log).

PostgreSQL in production, SQLite in the embedded default; the same SQLAlchemy code runs on both.
The schema is owned by Alembic (:mod:`shared.db.migrate`), never by ``create_all``.
"""

from shared.db.engine import make_engine, session_factory

__all__ = ["make_engine", "session_factory"]
