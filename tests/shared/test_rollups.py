"""Rollups on real PostgreSQL and SQLite: deltas add up, the SQL backfill counts exactly what the
deltas count (into the same hour keys, so later deltas land on the same rows), and the report
views' percentiles interpolate as :func:`shared.db.rollups.percentile` does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.db.rollups import LATENCY_BUCKETS_MS, backfill, deltas_of, hour_of, percentile
from tests.shared.test_migration_0006 import START, expected, records, stored


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    upgrade(bare_engine)
    return bare_engine


def test_writing_the_same_deltas_twice_adds_up(engine: Engine) -> None:
    rows = [r | {"feedback_label": None} for r in records()]
    for _ in range(2):
        with engine.begin() as c:
            deltas_of(rows).write(c)
    with engine.connect() as c:
        assert stored(c) == pytest.approx({k: 2 * v for k, v in expected(rows).items()})


def test_backfill_counts_what_the_deltas_count(engine: Engine) -> None:
    rows = records()
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), rows)
    start, end = START + timedelta(days=1, minutes=10), START + timedelta(days=2, minutes=5)
    for _ in range(2):  # a second run replaces, never adds
        with engine.begin() as c:
            backfill(c, start, end)
    hours = (hour_of(start), hour_of(end) + timedelta(hours=1))
    inside = [r for r in rows if hours[0] <= hour_of(r["created_at"]) < hours[1]]
    assert 10 < len(inside) < len(rows)
    with engine.connect() as c:
        assert stored(c) == pytest.approx(expected(inside))

    # A row shipped later into a backfilled hour lands on that hour's rollup rows.
    late = inside[0] | {"id": "late", "created_at": hour_of(inside[0]["created_at"]),
                        "feedback_label": None}
    with engine.begin() as c:
        deltas_of([late]).write(c)
    with engine.connect() as c:
        assert stored(c) == pytest.approx(expected([*inside, late]))


def test_views_read_the_rollups(engine: Engine) -> None:
    latencies = [float(ms) for ms in range(1, 99)] + [40000.0, 50000.0]  # p99: the open bucket
    rows = [r | {"total_ms": ms, "created_at": START, "model_name": "intents",
                 "model_version": 1, "label": "billing", "probability": 0.5 + i / 400}
            for i, (r, ms) in enumerate(zip(records(100), latencies, strict=True))]
    with engine.begin() as c:
        deltas_of(rows).write(c)
    with engine.connect() as c:
        hour = c.execute(text("SELECT inferences, mean_ms, p50_ms, p95_ms, p99_ms "
                              "FROM inference_hourly")).one()
        label = c.execute(text("SELECT label, inferences, mean_confidence "
                               "FROM inference_labels_daily")).one()
    buckets = dict.fromkeys(LATENCY_BUCKETS_MS, 0)
    buckets |= {key[-1]: n for key, n in deltas_of(rows).latency.items()}
    assert (hour.inferences, hour.mean_ms) == (100, pytest.approx(sum(latencies) / 100))
    assert [hour.p50_ms, hour.p95_ms, hour.p99_ms] == \
        pytest.approx([percentile(buckets, q) for q in (0.5, 0.95, 0.99)])
    assert hour.p99_ms == LATENCY_BUCKETS_MS[-2]
    assert (label.label, label.inferences) == ("billing", 100)
    assert float(label.mean_confidence) == pytest.approx(sum(r["probability"] for r in rows) / 100)
