"""Reports read the hourly rollups, never the raw rows, and still tell the rows' truth: on
PostgreSQL and SQLite, rows shipped as the log shipper ships them (rows + rollup deltas in one
transaction), figures compared with the same figures computed from the rows themselves."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, select

from services.gateway.reports import model_report
from shared.db import session_factory
from shared.db.models import Inference
from shared.db.rollups import LATENCY_BUCKETS_MS, bucket_of, hour_of
from shared.db.types import utcnow
from shared.registry import Registry
from tests.gateway.helpers import LABELS, gateway_client, record, ship

pytestmark = pytest.mark.anyio


def traffic(start: datetime, hours: int, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` varied records spread over ``hours`` hours from ``start``: two versions, abstentions,
    cache hits and misses, latencies from 0.3 ms to seconds, some without latency figures."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        total = round(rng.lognormvariate(2.5, 1.2), 3) if rng.random() > 0.1 else None
        abstained = rng.random() < 0.15
        records.append(record(
            start + timedelta(seconds=rng.uniform(0, hours * 3600 - 1)),
            model_version=rng.choice((1, 2)), abstained=abstained,
            label=None if abstained else rng.choice(LABELS), probability=rng.random(),
            cache_hit=rng.choice((True, False, None)), total_ms=total,
            embed_ms=total * 0.6 if total else None, head_ms=total * 0.1 if total else None))
    return records


async def test_report_figures_equal_the_rows(published_db: Engine, any_db_url: str,
                                             tmp_path: Path) -> None:
    base = hour_of(utcnow()) - timedelta(hours=4)
    inside = traffic(base, 3, 400)
    ship(published_db, inside + [  # just outside the window, and another model inside it
        record(base - timedelta(microseconds=1)), record(base + timedelta(hours=3)),
        record(base + timedelta(hours=1), model_name="other")])
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        for i, row in enumerate(inside[:40]):  # feedback: right, wrong, then some replaced
            answer = (row["label"] or "a") if i % 3 else "b"
            sent = await client.post(f"/v1/inferences/{row['id']}/feedback",
                                     json={"label": answer})
            assert sent.status_code == 200, sent.text
        for row in inside[:10]:
            sent = await client.post(f"/v1/inferences/{row['id']}/feedback", json={"label": "c"})
            assert sent.status_code == 200, sent.text
        # from/to inside the first and last hours: the window is those whole hours.
        window = {"from": (base + timedelta(minutes=20)).isoformat(),
                  "to": (base + timedelta(hours=2, minutes=10)).isoformat()}
        response = await client.get("/v1/reports/models/intents", params=window)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["from"], report["to"]) == (base.isoformat(),
                                              (base + timedelta(hours=3)).isoformat())
    assert report["volume"] == len(inside)
    assert report["versions"] == {str(v): n for v, n in sorted(
        Counter(r["model_version"] for r in inside).items())}
    assert report["label_distribution"] == dict(Counter(r["label"] or "(abstained)"
                                                        for r in inside))
    assert report["abstain_rate"] == pytest.approx(np.mean([r["abstained"] for r in inside]),
                                                   abs=1e-4)
    assert report["cache_hit_rate"] == pytest.approx(
        np.mean([bool(r["cache_hit"]) for r in inside]), abs=1e-4)
    assert report["mean_confidence"] == pytest.approx(
        np.mean([r["probability"] for r in inside]), abs=1e-4)
    timed = [r for r in inside if r["total_ms"] is not None]
    assert report["mean_embed_ms"] == pytest.approx(np.mean([r["embed_ms"] for r in timed]),
                                                    abs=1e-3)
    with published_db.connect() as c:  # the rows' own truth, feedback included
        given = c.execute(select(Inference.label, Inference.feedback_label).where(
            Inference.model_name == "intents", Inference.feedback_label.is_not(None))).all()
    assert len(given) == 40
    assert report["feedback"] == {
        "rows": 40,
        "accuracy": pytest.approx(np.mean([label == truth for label, truth in given]), abs=1e-4)}
    exact = [r["total_ms"] for r in timed]
    for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        upper = bucket_of(float(np.percentile(exact, q * 100, method="inverted_cdf")))
        lower = max((b for b in LATENCY_BUCKETS_MS if b < upper), default=0.0)
        assert lower - 1e-4 <= report["latency_ms"][key] <= upper + 1e-4, (key, lower, upper)
    assert report["drift"]["against_version"] == 1


def test_reports_never_read_raw_rows(published_db: Engine) -> None:
    ship(published_db, traffic(hour_of(utcnow()) - timedelta(hours=2), 2, 50))
    statements: list[str] = []
    event.listen(published_db, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))  # (conn, cursor, statement, ...)
    sessions = session_factory(published_db)
    report = model_report(sessions, Registry(sessions), "intents",
                          utcnow() - timedelta(hours=3), utcnow())
    assert report["volume"] == 50 and statements
    assert not [s for s in statements if re.search(r"\b(FROM|JOIN)\s+inferences\b", s, re.I)]


async def test_empty_and_out_of_range_windows(published_db: Engine, any_db_url: str,
                                              tmp_path: Path) -> None:
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        empty = (await client.get("/v1/reports/models/intents", params={
            "from": "2020-01-01T00:00:00Z", "to": "2020-01-01T00:00:01Z"})).json()
        assert (empty["from"], empty["to"]) == ("2020-01-01T00:00:00+00:00",
                                                "2020-01-01T01:00:00+00:00")
        assert empty["volume"] == 0 and empty["latency_ms"] == {"p50": None, "p95": None,
                                                                 "p99": None}
        assert empty["feedback"] == {"rows": 0, "accuracy": None} and empty["drift"] is None
        for window in ({"to": "0001-01-01T10:19:17Z"},  # the default from: a day before year 1
                       {"from": "2020-01-01T00:00:00Z", "to": "9999-12-31T23:59:00Z"},
                       {"from": "0001-01-01T00:00:00+01:00", "to": "2020-01-01T00:00:00Z"}):
            response = await client.get("/v1/reports/models/intents", params=window)
            assert response.status_code == 422, (window, response.text)
            assert response.json()["error"]["message"] == (
                "from and to must lie between 0001-01-02T00:00:00Z and 9999-12-31T23:00:00Z")
        backwards = await client.get("/v1/reports/models/intents", params={
            "from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z"})
        assert backwards.status_code == 422
