"""Gateway test fixtures: a database of either dialect with a published model ``intents``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shared.db import make_engine
from tests.classifier.helpers import publish
from tests.gateway.helpers import LABELS


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'polyhead.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def published_db(any_db_url: str, tmp_path: Path) -> Iterator[Engine]:
    """``any_db_url`` migrated, with the model ``intents`` published (v1, on random vectors)."""
    publish(any_db_url, tmp_path / "artifacts", "intents",
            [(f"text {i}", LABELS[i % 3]) for i in range(30)], None)
    engine = make_engine(any_db_url)
    yield engine
    engine.dispose()
