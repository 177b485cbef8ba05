"""Migration 0007 on real PostgreSQL and SQLite: feedback given before it becomes the first
entry of each inference's feedback history, and downgrade / upgrade round-trips."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, select

from shared.db.migrate import alembic_config, upgrade
from shared.db.models import FeedbackEvent
from shared.db.types import utcnow
from tests.gateway.helpers import record, ship


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    return bare_engine


def test_earlier_feedback_is_carried_into_the_history(engine: Engine) -> None:
    upgrade(engine, "0006")
    now = utcnow()
    given = record(now, label="a", feedback_label="b", feedback_at=now)
    ship(engine, [given, record(now, label="a", feedback_label=None, feedback_at=None)])
    upgrade(engine)
    with engine.connect() as c:
        history = c.execute(select(FeedbackEvent.inference_id, FeedbackEvent.label,
                                   FeedbackEvent.predicted, FeedbackEvent.client,
                                   FeedbackEvent.created_at)).all()
    assert [tuple(h) for h in history] == [(given["id"], "b", "a", None, now)]

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    upgrade(engine)
    with engine.connect() as c:
        assert len(c.execute(select(FeedbackEvent.id)).all()) == 1
