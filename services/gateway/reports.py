"""Ops reports on the inference log: volume, latency, labels, confidence, abstentions,
accuracy on feedback, and label drift against the training data; and production against its
rollout candidate (:func:`candidate_report`, from the raw rows). No FastAPI here.

A report reads the hourly rollups (:mod:`shared.db.rollups`), never the raw rows, so its cost
grows with the hours and versions in its window, not with traffic. Its window is therefore
whole hours. The same figures, per hour, are the ``inference_hourly`` view.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.gateway import comparison
from services.gateway.drift import (
    ALARM,
    label_drift,
    min_answers,
    production_of,
    training_counts,
)
from shared.contracts.training import ModelInfo
from shared.db.models import (
    Inference,
    InferenceRollup,
    InferenceRollupLabel,
    InferenceRollupLatency,
)
from shared.db.rollups import ROLLUP_SUMS, hour_of, percentile
from shared.errors import Conflict
from shared.registry import Registry


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window a report covers, in UTC: ``start`` rounded down, ``end`` rounded up to the
    hour (aware datetimes; ``OverflowError`` out of the years 1 to 9999)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    up = hour_of(end)
    return hour_of(start), up if up == end else up + timedelta(hours=1)


def model_report(sessions: sessionmaker[Session], registry: Registry, name: str,
                 start: datetime, end: datetime) -> dict[str, Any]:
    """The report of model ``name`` over the whole hours around ``[start, end)``."""
    model = registry.model(name)  # 404 for an unknown model
    start, end = whole_hours(start, end)
    with sessions() as s:
        per_version = s.execute(
            select(InferenceRollup.model_version,
                   *[func.sum(getattr(InferenceRollup, c)) for c in ROLLUP_SUMS])
            .where(InferenceRollup.model_name == name, InferenceRollup.hour >= start,
                   InferenceRollup.hour < end)
            .group_by(InferenceRollup.model_version)).all()
        labels = _counts(s, InferenceRollupLabel, InferenceRollupLabel.label, name, start, end)
        buckets = _counts(s, InferenceRollupLatency, InferenceRollupLatency.le_ms, name, start,
                          end)
    sums = {c: sum(float(row[i] or 0) for row in per_version) for i, c in enumerate(ROLLUP_SUMS, 1)}
    volume, timed, feedback = int(sums["inferences"]), sums["timed"], int(sums["feedback"])
    report: dict[str, Any] = {
        "model": name, "from": start.isoformat(), "to": end.isoformat(), "volume": volume,
        "versions": {str(row[0]): int(row[1]) for row in per_version if row[1]},
        "latency_ms": {f"p{round(q * 100)}": _round(percentile(buckets, q))
                       for q in (0.5, 0.95, 0.99)},
        "mean_embed_ms": _ratio(sums["sum_embed_ms"], timed),
        "mean_head_ms": _ratio(sums["sum_head_ms"], timed),
        "mean_confidence": _ratio(sums["sum_probability"], volume),
        "abstain_rate": _ratio(sums["abstained"], volume),
        "cache_hit_rate": _ratio(sums["cache_hits"], volume),
        "label_distribution": {str(k): int(n) for k, n in labels.items() if n},
        "feedback": {"rows": feedback, "accuracy": _ratio(sums["feedback_correct"], feedback)}}
    report["drift"] = _drift(model, report["label_distribution"])
    return report


def candidate_report(sessions: sessionmaker[Session], registry: Registry, name: str,
                     start: datetime, end: datetime, version: int | None = None
                     ) -> dict[str, Any]:
    """Production against the candidate ``version`` (default the running one) over
    ``[start, end)``: requests, labels, confidence, abstentions, latency and accuracy on
    feedback of each; a shadow's agreement with production on the same inputs. 404 for an
    unknown model, 409 when there is no candidate to compare and no ``version``."""
    model = registry.model(name)
    running = model.candidate
    version = version or (running.version if running else None)
    if version is None:
        raise Conflict(f"model {name!r} has no candidate; pass version= to compare an "
                       "earlier one", param="version")
    with sessions() as s:
        shadow = comparison.rows_of(name, start, end, "shadow", version)
        if running is not None and running.version == version:
            mode = running.mode
        else:
            mode = "shadow" if s.scalar(select(Inference.id).where(shadow).limit(1)) else "canary"
        production_rows = comparison.rows_of(name, start, end, "production")
        candidate_rows = shadow if mode == "shadow" else comparison.rows_of(
            name, start, end, "canary", version)
        production, candidate = (comparison.side(s, production_rows),
                                 comparison.side(s, candidate_rows))
        if mode == "shadow":
            candidate_feedback, production_feedback = comparison.shadow_feedback(s, shadow)
            agreement = comparison.agreement(s, shadow)
        else:
            candidate_feedback = comparison.feedback(s, candidate_rows)
            production_feedback = comparison.feedback(s, production_rows)
            agreement = {"pairs": None, "rate": None, "note": "a canary answers other "
                         "requests than production: there are no same inputs to compare"}
    production["accuracy_on_feedback"] = comparison.accuracy(production_feedback)
    candidate["accuracy_on_feedback"] = comparison.accuracy(candidate_feedback)
    return {"model": name, "from": start.isoformat(), "to": end.isoformat(),
            "candidate_version": version, "mode": mode,
            "running": running.model_dump() if running else None,
            "production": production, "candidate": candidate, "agreement": agreement}


def _counts(s: Session, table: Any, key: Any, name: str, start: datetime,
            end: datetime) -> dict[Any, int]:
    """``{key: inferences}`` of one rollup table over the window, most frequent first."""
    total = func.sum(table.inferences)
    rows = s.execute(select(key, total)
                     .where(table.model_name == name, table.hour >= start, table.hour < end)
                     .group_by(key).order_by(total.desc(), key)).all()
    return {k: int(n) for k, n in rows}


def _drift(model: ModelInfo, served: dict[str, int]) -> dict[str, Any] | None:
    """Predicted-label distribution vs the production version's training labels: PSI and the
    labels that moved most."""
    version = production_of(model)
    drift = label_drift(training_counts(version), served)
    if drift is None:
        return None
    answers, enough = drift.answers, min_answers(len(drift.labels))
    return {"against_version": version.version if version else None,
            "psi": round(drift.psi, 4), "alarm": drift.psi > ALARM and answers >= enough,
            "answers": answers, "min_answers": enough,
            **({} if answers >= enough else {"note": f"too little data: {answers} answers, "
                                                      f"the alarm needs {enough}"}),
            "top_changes": drift.top_changes()}


def _ratio(total: float, count: float) -> float | None:
    return _round(total / count) if count else None


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), 4)
