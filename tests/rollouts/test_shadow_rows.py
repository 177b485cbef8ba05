"""Shadow rows in the inference log, on real PostgreSQL and SQLite: shipped like any row but
left out of the rollups (incrementally and by the backfill), and migration 0008: rows from
before are production, records logged before it ship as production, and it reverses."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select

from services.gateway.inference_log import SqlSink
from services.gateway.inference_log.records import encode
from shared.db.migrate import alembic_config, upgrade
from shared.db.models import Inference
from shared.db.rollups import backfill
from tests.shared.test_migration_0006 import expected, records, stored


def with_shadows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row as a production record, plus a shadow of it (another version, another label)."""
    production = [r | {"role": "production", "shadow_of": None, "feedback_label": None,
                       "feedback_at": None} for r in rows]
    return production + [r | {"id": f"s{r['id']}", "role": "shadow", "shadow_of": r["id"],
                              "model_version": 9, "label": "other", "total_ms": None}
                         for r in production]


def roles(engine: Engine) -> dict[str, str]:
    with engine.connect() as c:
        return {i: role for i, role in c.execute(select(Inference.id, Inference.role))}


def test_shadow_rows_ship_but_are_not_rolled_up(bare_engine: Engine) -> None:
    upgrade(bare_engine)
    rows = with_shadows(records(30))
    assert SqlSink(bare_engine).write([encode(r) for r in rows]) == 60
    production = [r for r in rows if r["role"] == "production"]
    with bare_engine.connect() as c:
        assert stored(c) == pytest.approx(expected(production))
    with bare_engine.begin() as c:
        backfill(c)
    with bare_engine.connect() as c:
        assert stored(c) == pytest.approx(expected(production))
    assert sorted(roles(bare_engine).values()) == ["production"] * 30 + ["shadow"] * 30


def test_migration_0008_keeps_rows_as_production_and_reverses(bare_engine: Engine) -> None:
    upgrade(bare_engine, "0007")
    old = [r | {"feedback_label": None, "feedback_at": None} for r in records(10)]
    logged_before = [encode(r) for r in old[5:]]  # by a gateway before 0008, shipped after
    with bare_engine.begin() as c:
        c.execute(Inference.__table__.insert(), old[:5])
    upgrade(bare_engine)
    assert SqlSink(bare_engine).write(logged_before) == 5
    assert set(roles(bare_engine).values()) == {"production"} and len(roles(bare_engine)) == 10

    SqlSink(bare_engine).write([encode(r) for r in with_shadows(records(3))[3:]])
    config = alembic_config()
    with bare_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")  # shadow rows go; the rest stays
    upgrade(bare_engine)
    assert len(roles(bare_engine)) == 10
