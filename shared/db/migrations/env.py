"""Alembic environment: runs on the connection :func:`shared.db.migrate.upgrade` hands over,
or on ``DATABASE_URL`` when called from the ``alembic`` command line."""

from __future__ import annotations

import os

from alembic import context

from shared.db.engine import make_engine
from shared.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    engine = make_engine(os.environ.get("DATABASE_URL", "sqlite:///var/polyhead.db"))
    connection = engine.connect()

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
