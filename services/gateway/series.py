"""A model's production figures as time series: per time bucket (an hour or a day) and per
version, what a report (:mod:`services.gateway.reports`) gives for a whole window: volume,
abstain rate, mean confidence, cache-hit rate, latency p50/p95/p99, mean embed and head ms,
feedback and accuracy on it, and label drift. No FastAPI here.

Like a report, series read the hourly rollups, never the raw rows, with three grouped queries
(figures, labels, latency histogram) whatever the number of buckets. Buckets are whole UTC
hours or days; the answer is columnar (one list per figure, one item per bucket), as charts
take it. A bucket without traffic has volume 0 and no rates (``null``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, func, literal_column, select, type_coerce
from sqlalchemy.orm import Session, sessionmaker

from services.gateway.drift import ALARM, min_answers, production_of, shares, training_counts
from services.gateway.reports import whole_hours
from shared.db.models import InferenceRollup, InferenceRollupLabel, InferenceRollupLatency
from shared.db.rollups import ABSTAINED, ROLLUP_SUMS, percentile
from shared.db.types import UTCDateTime
from shared.errors import InvalidInput, NotFound
from shared.registry import Registry

Step = Literal["hour", "day"]
STEPS: dict[Step, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 400
def whole_buckets(start: datetime, end: datetime, step: Step | None
                  ) -> tuple[datetime, datetime, Step]:
    """The window in whole buckets of ``step`` (UTC) and the step: when none is given, hours
    if the window has at most :data:`MAX_BUCKETS` of them, else days. 422 for more buckets
    than that or a window out of the years 1 to 9999."""
    try:
        start, end = whole_hours(start, end)
        step = step or ("hour" if end - start <= MAX_BUCKETS * STEPS["hour"] else "day")
        if step == "day":
            midnight = start.replace(hour=0)
            start, end = midnight, end + (midnight - end) % STEPS["day"]
    except OverflowError:
        raise InvalidInput("from and to must lie between 0001-01-02T00:00:00Z and "
                           "9999-12-31T23:00:00Z (with step=day, to before "
                           "9999-12-31T00:00:00Z)") from None
    if (end - start) / STEPS[step] > MAX_BUCKETS:
        raise InvalidInput(f"at most {MAX_BUCKETS} buckets: make the window shorter"
                           + (" or use step=day" if step == "hour" else ""), param="step")
    return start, end, step


def model_series(sessions: sessionmaker[Session], registry: Registry, name: str,
                 start: datetime, end: datetime, step: Step | None = None,
                 version: int | None = None) -> dict[str, Any]:
    """The series of model ``name`` (of one ``version``, if given) over the whole buckets
    around ``[start, end)``: ``versions`` has each version with traffic in the window, drift
    against its own training labels; ``all`` adds them up, drift against production's."""
    model = registry.model(name)  # 404 for an unknown model
    if version is not None and version not in {v.version for v in model.versions}:
        raise NotFound(f"model {name!r} has no version {version}; versions: "
                       f"{', '.join(str(v.version) for v in model.versions) or 'none'}",
                       param="version")
    start, end, step = whole_buckets(start, end, step)
    buckets = [start + i * STEPS[step] for i in range(int((end - start) / STEPS[step]))]
    window = _Window(name, start, end, step, version, {b: i for i, b in enumerate(buckets)})
    with sessions() as s:
        sums, _ = window.matrices(s, InferenceRollup, (),
                                  [func.sum(getattr(InferenceRollup, c)) for c in ROLLUP_SUMS])
        labels, names = window.matrices(s, InferenceRollupLabel, (InferenceRollupLabel.label,),
                                        [func.sum(InferenceRollupLabel.inferences)])
        latency, bounds = window.matrices(s, InferenceRollupLatency,
                                          (InferenceRollupLatency.le_ms,),
                                          [func.sum(InferenceRollupLatency.inferences)])
    n = len(buckets)
    empty = _Tables(np.zeros((n, len(ROLLUP_SUMS))), np.zeros((n, len(names))),
                    np.zeros((n, len(bounds))))
    shown = sorted(set(sums) | ({version} if version is not None else set()))
    trained = {v.version: training_counts(v) for v in model.versions}
    production = production_of(model)
    versions = {str(v): _figures(_Tables(sums.get(v, empty.sums), labels.get(v, empty.labels),
                                         latency.get(v, empty.latency)),
                                 names, bounds, trained.get(v, {})) for v in shown}
    everything = _figures(_Tables(sum(sums.values(), empty.sums),
                                  sum(labels.values(), empty.labels),
                                  sum(latency.values(), empty.latency)),
                          names, bounds, training_counts(production))
    everything["drift_against_version"] = production.version if production else None
    return {"model": name, "from": start.isoformat(), "to": end.isoformat(), "step": step,
            "drift_alarm": ALARM, "buckets": [b.isoformat() for b in buckets],
            "versions": versions, "all": everything}


@dataclass(frozen=True)
class _Window:
    """What the three queries share: the model, the window, its buckets and the version."""

    name: str
    start: datetime
    end: datetime
    step: Step
    version: int | None
    slots: dict[datetime, int]  # bucket start -> its row

    def matrices(self, s: Session, table: Any, keys: tuple[Any, ...], sums: list[Any]
                 ) -> tuple[dict[int, np.ndarray], list[Any]]:
        """``sums`` of ``table`` per bucket, version and ``keys`` (one query): per version, a
        matrix of a row per bucket and a column per sum (no key) or per key (one sum); and
        the keys of the columns."""
        bucket = _bucket(s, table.hour, self.step).label("bucket")
        query = (select(bucket, table.model_version, *keys, *sums)
                 .where(table.model_name == self.name, table.hour >= self.start,
                        table.hour < self.end)
                 .group_by(bucket, table.model_version, *keys))
        if self.version is not None:
            query = query.where(table.model_version == self.version)
        columns: dict[Any, int] = {}
        cells: dict[int, tuple[list[int], list[int], list[Any]]] = {}
        for row in s.execute(query):
            if row[1] not in cells:
                cells[row[1]] = ([], [], [])
            rows, cols, values = cells[row[1]]
            if keys:
                rows.append(self.slots[row[0]])
                cols.append(columns.setdefault(row[2], len(columns)))
                values.append(row[3])
            else:
                rows.extend([self.slots[row[0]]] * len(sums))
                cols.extend(range(len(sums)))
                values.extend(row[2:])
        width = len(columns) if keys else len(sums)
        out = {}
        for v, (rows, cols, values) in cells.items():
            out[v] = np.zeros((len(self.slots), width))
            out[v][rows, cols] = np.array(values, dtype=float)
        return out, list(columns)


def _bucket(s: Session, hour: Any, step: Step) -> Any:
    """SQL for the bucket of a rollup hour: the hour itself, or its UTC day."""
    if step == "hour":
        return hour
    day: ColumnElement[Any]
    if s.get_bind().dialect.name == "postgresql":
        day = func.date_bin(literal_column("INTERVAL '1 day'"), hour,
                            literal_column("TIMESTAMPTZ '2000-01-01 00:00:00+00'"))
    else:  # SQLite keeps the hour as text, 'YYYY-MM-DD HH:00:00.000000'
        day = func.strftime("%Y-%m-%d 00:00:00.000000", hour)
    return type_coerce(day, UTCDateTime())


class _Tables(NamedTuple):
    """One version's (or all versions') matrices, a row per bucket: the sums (columns
    ``ROLLUP_SUMS``), label counts and latency histogram (columns: the labels and bounds
    found)."""

    sums: np.ndarray
    labels: np.ndarray
    latency: np.ndarray


def _figures(tables: _Tables, names: list[str], bounds: list[float],
             trained: dict[str, int]) -> dict[str, Any]:
    """The figures per bucket of ``tables``; drift against the ``trained`` label counts."""
    sums, labels, latency = tables
    column = {c: sums[:, i] for i, c in enumerate(ROLLUP_SUMS)}
    volume, timed, feedback = column["inferences"], column["timed"], column["feedback"]
    answered = [i for i, k in enumerate(names) if k != ABSTAINED]
    psi = (shares(trained, [names[i] for i in answered], labels[:, answered])[2]
           if trained and answered else np.full(len(sums), np.nan))
    # A bucket with too few answers to tell drift from noise has none (null), like an empty one.
    enough = min_answers(len(set(trained) | {names[i] for i in answered}))
    psi[labels[:, answered].sum(axis=1) < enough] = np.nan
    return {
        "volume": [int(v) for v in volume],
        "abstain_rate": _ratios(column["abstained"], volume),
        "mean_confidence": _ratios(column["sum_probability"], volume),
        "cache_hit_rate": _ratios(column["cache_hits"], volume),
        "latency_ms": {f"p{round(q * 100)}": [
            _round(percentile(dict(zip(bounds, row, strict=True)), q)) for row in latency]
            for q in (0.5, 0.95, 0.99)},
        "mean_embed_ms": _ratios(column["sum_embed_ms"], timed),
        "mean_head_ms": _ratios(column["sum_head_ms"], timed),
        "feedback": {"rows": [int(f) for f in feedback],
                     "accuracy": _ratios(column["feedback_correct"], feedback)},
        "drift_psi": [_round(float(x)) for x in psi]}


def _ratios(totals: np.ndarray, counts: np.ndarray) -> list[float | None]:
    return [round(float(t / c), 4) if c else None for t, c in zip(totals, counts, strict=True)]


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)
