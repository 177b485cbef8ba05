"""Ops reports on the inference log: volume, latency, labels, confidence, abstentions,
accuracy on feedback, and label drift against the training data. No FastAPI here.

The same figures, per hour, are the ``inference_hourly`` view (migration 0004).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.db.models import Inference
from shared.registry import Registry


def model_report(sessions: sessionmaker[Session], registry: Registry, name: str,
                 start: datetime, end: datetime) -> dict[str, Any]:
    registry.model(name)  # 404 for an unknown model
    where = (Inference.model_name == name, Inference.created_at >= start,
             Inference.created_at < end)
    with sessions() as s:
        totals = s.execute(select(
            func.count(), func.avg(Inference.probability),
            func.avg(case((Inference.abstained, 1.0), else_=0.0)),
            func.avg(case((Inference.cache_hit, 1.0), else_=0.0)),
            func.avg(Inference.embed_ms), func.avg(Inference.head_ms),
            func.count(Inference.feedback_label),
            func.avg(case((Inference.feedback_label.is_(None), None),
                          (Inference.feedback_label == Inference.label, 1.0), else_=0.0)),
        ).where(*where)).one()
        labels = dict(s.execute(select(func.coalesce(Inference.label, "(abstained)"), func.count())
                                .where(*where).group_by(Inference.label)).all())
        versions = {str(v): n for v, n in s.execute(
            select(Inference.model_version, func.count()).where(*where)
            .group_by(Inference.model_version)).all()}
        latency = _percentiles(s, where)
    volume = int(totals[0])
    report: dict[str, Any] = {
        "model": name, "from": start.isoformat(), "to": end.isoformat(), "volume": volume,
        "versions": versions, "latency_ms": latency,
        "mean_embed_ms": _round(totals[4]), "mean_head_ms": _round(totals[5]),
        "mean_confidence": _round(totals[1]), "abstain_rate": _round(totals[2]),
        "cache_hit_rate": _round(totals[3]), "label_distribution": labels,
        "feedback": {"rows": int(totals[6]), "accuracy": _round(totals[7])}}
    report["drift"] = _drift(registry, name, labels)
    return report


def _percentiles(s: Session, where: tuple[Any, ...]) -> dict[str, float | None]:
    if s.get_bind().dialect.name == "postgresql":
        row = s.execute(select(*[
            func.percentile_cont(q).within_group(cast(Inference.total_ms, Float))
            for q in (0.5, 0.95, 0.99)]).where(*where)).one()
        values = list(row)
    else:  # SQLite (the embedded default): small volumes, compute here
        data = [v for (v,) in s.execute(select(Inference.total_ms).where(*where)) if v is not None]
        values = list(np.percentile(data, [50, 95, 99])) if data else [None] * 3
    return {k: _round(v) for k, v in zip(("p50", "p95", "p99"), values, strict=True)}


def _drift(registry: Registry, name: str, served: dict[str, int]) -> dict[str, Any] | None:
    """Predicted-label distribution vs the production version's training labels: population
    stability index (PSI; > 0.2 is the usual alarm) and the labels that moved most."""
    model = registry.model(name)
    version = next((v for v in model.versions if v.version == model.production_version), None)
    trained = (version.metrics.get("class_counts") if version else None) or {}
    answered = {k: v for k, v in served.items() if k != "(abstained)"}
    if not trained or not answered:
        return None
    labels = sorted(set(trained) | set(answered))
    p = np.array([trained.get(k, 0) for k in labels], dtype=float)
    q = np.array([answered.get(k, 0) for k in labels], dtype=float)
    p, q = (p + 0.5) / (p + 0.5).sum(), (q + 0.5) / (q + 0.5).sum()  # smoothed shares
    psi = float(np.sum((q - p) * np.log(q / p)))
    moved = sorted(range(len(labels)), key=lambda i: -abs(q[i] - p[i]))[:5]
    return {"against_version": version.version if version else None, "psi": round(psi, 4),
            "alarm": psi > 0.2,
            "top_changes": [{"label": labels[i], "training_share": round(float(p[i]), 4),
                             "served_share": round(float(q[i]), 4)} for i in moved]}


def _round(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 4)
