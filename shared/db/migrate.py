"""Bring a database to the newest schema with Alembic, safely from many processes at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from shared.db.engine import is_postgres

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x706F6C79  # "poly": one advisory lock for every polyhead service


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade head``; on PostgreSQL under an advisory lock so replicas don't race."""
    config = alembic_config()
    with engine.begin() as connection:
        if is_postgres(engine):
            # A migration may rewrite a big table: no statement timeout for it (or its lock).
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
