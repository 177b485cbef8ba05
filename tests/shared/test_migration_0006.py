"""Migration 0006 on real PostgreSQL and SQLite: rows logged under 0005 survive the upgrade
exactly once (in daily partitions on PostgreSQL), the backfilled rollups equal the rows' own
figures, the views read the same counts as the rows, and downgrade / upgrade round-trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, select, text

from shared.db.migrate import alembic_config, upgrade
from shared.db.models import (
    Inference,
    InferenceRollup,
    InferenceRollupLabel,
    InferenceRollupLatency,
)
from shared.db.partitions import partition_days
from shared.db.rollups import Deltas, deltas_of

START = datetime(2024, 3, 1, 22, 30, 15, tzinfo=UTC)
ROLLUPS = (InferenceRollup, InferenceRollupLabel, InferenceRollupLatency)
PARTITIONED = ("SELECT count(*) FROM pg_partitioned_table "
               "WHERE partrelid = to_regclass('inferences')")


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    return bare_engine


def records(n: int = 60, start: datetime = START) -> list[dict[str, Any]]:
    """``n`` inferences over ~4 days: two models, abstentions, untimed rows, some feedback."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        label = None if i % 7 == 0 else ("billing", "refund", "greeting")[i % 3]
        out.append({
            "id": f"r{i:04d}", "created_at": start + timedelta(minutes=97 * i, microseconds=i),
            "model_name": ("intents", "spam")[i % 2], "model_version": 1 + i % 3 // 2,
            "head_type": "logreg", "embedder_model": "m", "input_text": f"t{i}",
            "label": label, "probability": 0.4 + (i % 6) / 10, "top_k": {},
            "abstained": label is None, "cache_hit": i % 4 == 0, "embed_ms": 0.5 * i,
            "head_ms": 0.1, "total_ms": None if i % 6 == 0 else 0.7 * (i % 40) ** 1.7,
            "feedback_label": None if i % 5 else ("billing" if i % 10 else "refund")})
    return out


def expected(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], float]:
    """The rollups of ``rows`` as the gateway's deltas count them, flattened like stored()."""
    d: Deltas = deltas_of(rows)
    for r in rows:
        if r["feedback_label"] is not None:
            d.feedback(r, rows=1, correct=int(r["feedback_label"] == r["label"]))
    sums = [c.name for c in InferenceRollup.__table__.columns if not c.primary_key]
    out: dict[tuple[Any, ...], float] = {("inference_rollups", *k, c): float(s.get(c, 0))
                                         for k, s in d.hourly.items() for c in sums}
    for k, n in d.labels.items():
        out[("inference_rollup_labels", *k, "inferences")] = n
        out[("inference_rollup_labels", *k, "sum_probability")] = d.label_probability[k]
    out |= {("inference_rollup_latency", *k, "inferences"): n for k, n in d.latency.items()}
    return out


def stored(c: Connection) -> dict[tuple[Any, ...], float]:
    """Every rollup figure: ``{(table, *key, column): value}``."""
    out: dict[tuple[Any, ...], float] = {}
    for model in ROLLUPS:
        table = model.__table__
        first = ["model_name", "model_version", "hour"]  # as Deltas keys them
        keys = first + [c.name for c in table.primary_key.columns if c.name not in first]
        for row in c.execute(select(table)).mappings():
            out |= {(table.name, *(row[k] for k in keys), col): float(row[col])
                    for col in row if col not in keys}
    return out


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as c:
        config.attributes["connection"] = c
        command.downgrade(config, revision)


def check(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """The rows are all there once each; rollups and views agree with them."""
    with engine.connect() as c:
        assert sorted(c.execute(text("SELECT id FROM inferences")).scalars()) == \
            [r["id"] for r in rows]
        assert stored(c) == pytest.approx(expected(rows))
        raw = "SELECT model_name, coalesce(label, '(abstained)'), count(*) FROM inferences"
        view = "SELECT model_name, label, sum(inferences) FROM inference_labels_daily"
        assert {(m, lb, int(n)) for m, lb, n in c.execute(text(f"{raw} GROUP BY 1, 2"))} == \
            {(m, lb, int(n)) for m, lb, n in c.execute(text(f"{view} GROUP BY 1, 2"))}
        hourly = "SELECT model_name, sum(inferences) FROM inference_hourly GROUP BY 1"
        assert {m: int(n) for m, n in c.execute(text(hourly))} == \
            {"intents": len(rows) // 2, "spam": len(rows) // 2}


def test_upgrade_keeps_every_row_and_backfills_the_rollups(engine: Engine) -> None:
    upgrade(engine, "0005")
    rows = records()
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), rows)
    upgrade(engine)
    check(engine, rows)
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.connect() as c:
            assert c.execute(text(PARTITIONED)).scalar() == 1
            assert c.execute(text("SELECT count(*) FROM inferences_default")).scalar() == 0
            days = partition_days(c)
        assert {r["created_at"].date() for r in rows} <= set(days)
        assert datetime.now(UTC).date() + timedelta(days=7) in days

    downgrade(engine, "0005")  # the plain table and the 0004 views, every row kept
    with engine.connect() as c:
        assert c.execute(text("SELECT sum(inferences) FROM inference_hourly")).scalar() == 60
        if postgres:
            assert c.execute(text(PARTITIONED)).scalar() == 0
    upgrade(engine)
    check(engine, rows)


def test_upgrade_of_an_empty_database(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as c:
        assert stored(c) == {}
        assert c.execute(text("SELECT count(*) FROM inference_hourly")).scalar() == 0
        if engine.dialect.name == "postgresql":
            today = datetime.now(UTC).date()
            assert set(partition_days(c)) == {today + timedelta(days=n) for n in range(8)}
