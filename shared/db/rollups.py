"""Hourly rollups of the inference log: what a report needs, kept up to date as rows ship.

A batch of inference records becomes a few *deltas* (per model, version and hour: counts and
sums; per label; per latency bucket), added to the rollup tables with
``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``, in the same transaction as the
rows themselves. Additions commute, so any number of gateways can ship at once. Only rows that
were really inserted are counted (a record shipped twice is counted once), and shadow rows
(role ``shadow``: a candidate's predictions that answered no one) are not counted at all.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Double, Table, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.models import InferenceRollup, InferenceRollupLabel, InferenceRollupLatency
from shared.db.types import UTCDateTime

# Upper bounds of the latency buckets, in ms (the last one catches everything slower).
LATENCY_BUCKETS_MS = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0,
                      150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0,
                      5000.0, 10000.0, 30000.0, float("inf"))
ABSTAINED = "(abstained)"  # the label key of predictions that abstained
_ANSWERED = "role <> 'shadow'"  # the rows the rollups count

# The columns of ``inference_rollups`` that add up across hours and versions: what reports sum.
ROLLUP_SUMS = ("inferences", "abstained", "cache_hits", "sum_probability", "timed",
               "sum_total_ms", "sum_embed_ms", "sum_head_ms", "feedback", "feedback_correct")


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_of(total_ms: float) -> float:
    return LATENCY_BUCKETS_MS[bisect.bisect_left(LATENCY_BUCKETS_MS, total_ms)]


class Deltas:
    """What a batch of records adds to the three rollup tables."""

    def __init__(self) -> None:
        self.hourly: dict[tuple[str, int, datetime], dict[str, float]] = {}
        self.labels: Counter[tuple[str, int, datetime, str]] = Counter()
        self.label_probability: dict[tuple[str, int, datetime, str], float] = defaultdict(float)
        self.latency: Counter[tuple[str, int, datetime, float]] = Counter()

    def add(self, record: Mapping[str, Any]) -> None:
        if record.get("role") == "shadow":
            return
        key = (record["model_name"], int(record["model_version"]), hour_of(record["created_at"]))
        sums = self.hourly.setdefault(key, defaultdict(float))
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
        label = (*key, record.get("label") or ABSTAINED)
        self.labels[label] += 1
        self.label_probability[label] += float(record.get("probability") or 0.0)

    def feedback(self, record: Mapping[str, Any], *, rows: int, correct: int) -> None:
        """Feedback given (``rows=1``), or replaced (``rows=0``), on an already-counted row."""
        key = (record["model_name"], int(record["model_version"]), hour_of(record["created_at"]))
        sums = self.hourly.setdefault(key, defaultdict(float))
        sums["feedback"] += rows
        sums["feedback_correct"] += correct

    def write(self, connection: Connection) -> None:
        """Add the deltas to the rollup tables (upserts; call inside the rows' transaction)."""
        names = ("model_name", "model_version", "hour")
        _upsert(connection, InferenceRollup.__table__,
                [dict(zip(names, k, strict=True)) | {c: s.get(c, 0) for c in ROLLUP_SUMS}
                 for k, s in self.hourly.items()], ROLLUP_SUMS)
        _upsert(connection, InferenceRollupLabel.__table__,
                [dict(zip((*names, "label"), k, strict=True))
                 | {"inferences": n, "sum_probability": self.label_probability[k]}
                 for k, n in self.labels.items()], ("inferences", "sum_probability"))
        _upsert(connection, InferenceRollupLatency.__table__,
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
    buckets = dict.fromkeys(LATENCY_BUCKETS_MS, 0) | dict(buckets)  # lower bounds: every bucket
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


# Backfill: the same figures as Deltas, computed by the database from the raw rows. {rows} is
# the raw rows with their rollup keys (hour, label_key, le_ms) as a derived table.
_ROWS = """(SELECT model_name, model_version, {hour} AS hour, label, probability, abstained,
        cache_hit, total_ms, embed_ms, head_ms, feedback_label,
        coalesce(nullif(label, ''), '{abstained}') AS label_key,
        CASE {buckets} ELSE :inf END AS le_ms
    FROM {source} WHERE {where}) AS r"""
_HOURLY = """INSERT INTO inference_rollups (model_name, model_version, hour, inferences,
        abstained, cache_hits, sum_probability, timed, sum_total_ms, sum_embed_ms, sum_head_ms,
        feedback, feedback_correct)
    SELECT model_name, model_version, hour, count(*),
        sum(CASE WHEN abstained THEN 1 ELSE 0 END), sum(CASE WHEN cache_hit THEN 1 ELSE 0 END),
        sum(probability), count(total_ms), coalesce(sum(total_ms), 0),
        coalesce(sum(CASE WHEN total_ms IS NOT NULL THEN embed_ms END), 0),
        coalesce(sum(CASE WHEN total_ms IS NOT NULL THEN head_ms END), 0),
        count(feedback_label), sum(CASE WHEN feedback_label = label THEN 1 ELSE 0 END)
    FROM {rows} GROUP BY model_name, model_version, hour"""
_LABELS = """INSERT INTO inference_rollup_labels (model_name, model_version, hour, label,
        inferences, sum_probability)
    SELECT model_name, model_version, hour, label_key, count(*), sum(probability)
    FROM {rows} GROUP BY model_name, model_version, hour, label_key"""
_LATENCY = """INSERT INTO inference_rollup_latency (model_name, model_version, hour, le_ms,
        inferences)
    SELECT model_name, model_version, hour, le_ms, count(*)
    FROM {rows} WHERE total_ms IS NOT NULL GROUP BY model_name, model_version, hour, le_ms"""
_TABLES = {"inference_rollups": _HOURLY, "inference_rollup_labels": _LABELS,
           "inference_rollup_latency": _LATENCY}


def backfill(connection: Connection, start: datetime | None = None,
             end: datetime | None = None, *, roles: bool = True) -> None:
    """Rebuild the rollups of every hour that meets ``[start, end)`` (default: all hours) from
    the raw rows, in set-based SQL: those hours' rollup rows are deleted, then each table is
    refilled by one ``INSERT ... SELECT ... GROUP BY``. Running it twice changes nothing.

    Run it in one transaction over hours that no gateway ships into meanwhile (the migration
    that creates the rollups, a repair, a benchmark): rows shipped into them while it runs could
    be counted twice, or make its insert fail. ``roles=False``: a schema from before migration
    0008 (no ``role`` column, so no shadow rows to leave out).
    """
    bounds: dict[str, datetime] = {}
    if start is not None:
        bounds["start"] = hour_of(start.astimezone(UTC))
    if end is not None:
        up = hour_of(end.astimezone(UTC))
        bounds["end"] = up if up == end else up + timedelta(hours=1)
    binds = [bindparam(k, v, type_=UTCDateTime()) for k, v in bounds.items()]
    where = _window("created_at", bounds) + (f" AND {_ANSWERED}" if roles else "")
    rows = _rows_sql(connection.dialect.name, "inferences", where)
    for table, insert in _TABLES.items():
        # Table names, column names and bucket bounds are constants of this module; the time
        # window is bound parameters.
        delete = f"DELETE FROM {table} WHERE {_window('hour', bounds)}"  # nosec B608
        connection.execute(text(delete).bindparams(*binds))
        connection.execute(text(insert.format(rows=rows))
                           .bindparams(*binds, bindparam("inf", float("inf"), type_=Double())))


def _rows_sql(dialect: str, source: str, where: str) -> str:
    """The rows of ``source`` with their rollup keys, as the ``{rows}`` of the inserts."""
    buckets = " ".join(f"WHEN total_ms <= {b!r} THEN {b!r}" for b in LATENCY_BUCKETS_MS[:-1])
    return _ROWS.format(hour=_hour_sql(dialect, "created_at"), abstained=ABSTAINED,
                        buckets=buckets, source=source, where=where)


def upsert_from_sql(source: str) -> list[str]:
    """PostgreSQL: three ``INSERT ... ON CONFLICT DO UPDATE`` statements that add the rollups
    of the rows in ``source`` (a table or CTE name with the columns of ``inferences``), for one
    statement that ships rows and rollups together (shadow rows left out). ``:inf`` must be
    bound to +Infinity."""
    rows = _rows_sql("postgresql", source, _ANSWERED)
    statements = []
    for table, insert in _TABLES.items():
        model = {t.name: t for t in (InferenceRollup.__table__, InferenceRollupLabel.__table__,
                                     InferenceRollupLatency.__table__)}[table]
        keys = [c.name for c in model.primary_key.columns]
        sums = [c.name for c in model.columns if c.name not in keys]
        # Table and column names from the models; no value goes into the text.
        add = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
        conflict = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {add}"  # nosec B608
        statements.append(insert.format(rows=rows) + conflict)
    return statements


def _window(column: str, bounds: Mapping[str, datetime]) -> str:
    """``column`` within the bound parameters ``:start`` (inclusive) and ``:end`` (exclusive)."""
    ops = {"start": ">=", "end": "<"}
    return " AND ".join(f"{column} {ops[k]} :{k}" for k in bounds) or "1 = 1"


def _hour_sql(dialect: str, column: str) -> str:
    """SQL for the hour of a timestamp column, as the rollups store it: ``hour_of`` in UTC
    (on SQLite, the text SQLAlchemy writes for such a datetime)."""
    if dialect == "postgresql":
        return f"date_bin('1 hour', {column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"
