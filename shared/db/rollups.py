"""Hourly rollups of the inference log: what a report needs, kept up to date as rows ship.

A batch of inference records becomes a few *deltas* (per model, version and hour: counts and
sums; per label; per latency bucket), added to the rollup tables with
``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``, in the same transaction as the
rows themselves. Additions commute, so any number of gateways can ship at once. Only rows that
were really inserted are counted (a record shipped twice is counted once).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.models import InferenceRollup, InferenceRollupLabel, InferenceRollupLatency

# Upper bounds of the latency buckets, in ms (the last one catches everything slower).
LATENCY_BUCKETS_MS = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0,
                      150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0,
                      5000.0, 10000.0, 30000.0, float("inf"))
ABSTAINED = "(abstained)"  # the label key of predictions that abstained

_SUMS = ("inferences", "abstained", "cache_hits", "sum_probability", "timed", "sum_total_ms",
         "sum_embed_ms", "sum_head_ms", "feedback", "feedback_correct")


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_of(total_ms: float) -> float:
    return LATENCY_BUCKETS_MS[bisect.bisect_left(LATENCY_BUCKETS_MS, total_ms)]


class Deltas:
    """What a batch of records adds to the three rollup tables."""

    def __init__(self) -> None:
        self.hourly: dict[tuple[str, int, datetime], Counter[str]] = {}
        self.labels: Counter[tuple[str, int, datetime, str]] = Counter()
        self.latency: Counter[tuple[str, int, datetime, float]] = Counter()

    def add(self, record: Mapping[str, Any]) -> None:
        key = (record["model_name"], int(record["model_version"]), hour_of(record["created_at"]))
        sums = self.hourly.setdefault(key, Counter())
        sums["inferences"] += 1
        sums["abstained"] += bool(record.get("abstained"))
        sums["cache_hits"] += bool(record.get("cache_hit"))
        sums["sum_probability"] += float(record.get("probability") or 0.0)
        if (total_ms := record.get("total_ms")) is not None:
            sums["timed"] += 1
            sums["sum_total_ms"] += float(total_ms)
            sums["sum_embed_ms"] += float(record.get("embed_ms") or 0.0)
            sums["sum_head_ms"] += float(record.get("head_ms") or 0.0)
            self.latency[(*key, bucket_of(float(total_ms)))] += 1
        self.labels[(*key, record.get("label") or ABSTAINED)] += 1

    def feedback(self, record: Mapping[str, Any], *, rows: int, correct: int) -> None:
        """Feedback given (``rows=1``), or replaced (``rows=0``), on an already-counted row."""
        key = (record["model_name"], int(record["model_version"]), hour_of(record["created_at"]))
        sums = self.hourly.setdefault(key, Counter())
        sums["feedback"] += rows
        sums["feedback_correct"] += correct

    def write(self, connection: Connection) -> None:
        """Add the deltas to the rollup tables (upserts; call inside the rows' transaction)."""
        names = ("model_name", "model_version", "hour")
        _upsert(connection, InferenceRollup.__table__,  # type: ignore[arg-type]  # a Table
                [dict(zip(names, k, strict=True)) | {c: s.get(c, 0) for c in _SUMS}
                 for k, s in self.hourly.items()], _SUMS)
        _upsert(connection, InferenceRollupLabel.__table__,  # type: ignore[arg-type]
                [dict(zip((*names, "label"), k, strict=True)) | {"inferences": n}
                 for k, n in self.labels.items()], ("inferences",))
        _upsert(connection, InferenceRollupLatency.__table__,  # type: ignore[arg-type]
                [dict(zip((*names, "le_ms"), k, strict=True)) | {"inferences": n}
                 for k, n in self.latency.items()], ("inferences",))


def deltas_of(records: Iterable[Mapping[str, Any]]) -> Deltas:
    deltas = Deltas()
    for record in records:
        deltas.add(record)
    return deltas


def _upsert(connection: Connection, table: Table, rows: list[dict[str, Any]],
            sums: tuple[str, ...]) -> None:
    if not rows:
        return
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: table.c[c] + statement.excluded[c] for c in sums})
    connection.execute(statement, rows)


def percentile(buckets: Mapping[float, int], q: float) -> float | None:
    """The ``q`` quantile of a histogram ``{upper bound: count}``, interpolated linearly inside
    its bucket (as Prometheus' ``histogram_quantile``); the open last bucket gives its lower
    bound."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for upper in sorted(buckets):
        count = buckets[upper]
        if count and seen + count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower
