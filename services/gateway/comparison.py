"""Production against its candidate (shadow or canary) over one window, from the raw rows.

Rollups leave shadow rows out and do not tell roles apart, so this reads ``inferences``
itself. Every query filters on ``model_name`` and ``created_at`` (the
``ix_inferences_model_time`` index, and on PostgreSQL the partition key, so only the window's
partitions are read), and the window is at most :data:`MAX_WINDOW`: candidates run for hours
or days, not months. A shadow row carries its production row's ``created_at``, so pairing
them joins on the production row's whole primary key. No FastAPI here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Integer, Select, and_, cast, func, select
from sqlalchemy.orm import Session, aliased

from shared.candidate_policy import wilson
from shared.db.models import Inference
from shared.db.rollups import ABSTAINED

MAX_WINDOW = timedelta(days=7)
TOP_LABELS = 10
_MIRRORED = aliased(Inference, name="mirrored")  # the production row a shadow row mirrors


def rows_of(name: str, start: datetime, end: datetime, role: str,
            version: int | None = None) -> ColumnElement[bool]:
    """The window's rows of one role (and version) of model ``name``."""
    where = and_(Inference.model_name == name, Inference.created_at >= start,
                 Inference.created_at < end, Inference.role == role)
    return and_(where, Inference.model_version == version) if version is not None else where


def count(where: ColumnElement[bool]) -> Select[int]:
    """How many rows ``where`` selects."""
    return select(func.count()).select_from(Inference).where(where)


def side(s: Session, where: ColumnElement[bool]) -> dict[str, Any]:
    """Requests, versions, mean confidence, abstain rate, top labels and latency of some rows."""
    count, confidence, abstained = s.execute(
        select(func.count(), func.avg(Inference.probability),
               func.sum(cast(Inference.abstained, Integer)))
        .where(where)).one()
    labels = s.execute(select(Inference.label, func.count()).where(where)
                       .group_by(Inference.label)
                       .order_by(func.count().desc(), Inference.label).limit(TOP_LABELS)).all()
    versions = s.execute(select(Inference.model_version, func.count()).where(where)
                         .group_by(Inference.model_version)).all()
    return {"requests": count, "versions": {str(v): n for v, n in versions},
            "mean_confidence": _round(confidence), "abstain_rate": _share(abstained, count),
            "labels": [{"label": label or ABSTAINED, "share": _share(n, count)}
                       for label, n in labels],
            "latency_ms": {"total": percentiles(s, Inference.total_ms, where),
                           "head": percentiles(s, Inference.head_ms, where)}}


def percentiles(s: Session, column: Any, where: ColumnElement[bool],
                quantiles: tuple[float, ...] = (0.5, 0.95)) -> dict[str, float | None]:
    """Exact percentiles of a latency column over the rows (None where no row has it)."""
    values = np.array(s.scalars(select(column).where(where, column.is_not(None))).all(),
                      dtype=float)
    return {f"p{round(q * 100)}": (round(float(np.quantile(values, q)), 3) if values.size
                                   else None) for q in quantiles}


def feedback(s: Session, where: ColumnElement[bool]) -> tuple[int, int]:
    """``(correct, rows)`` of the rows that received feedback (an abstention is wrong)."""
    rows, correct = s.execute(select(func.count(), _correct(Inference.label, Inference))
                              .where(where, Inference.feedback_label.is_not(None))).one()
    return int(correct or 0), int(rows)


def shadow_feedback(s: Session, where: ColumnElement[bool]) -> tuple[tuple[int, int],
                                                                     tuple[int, int]]:
    """``(correct, rows)`` of the shadow rows ``where`` selects, scored against the feedback
    their production rows received (a shadow's id is never returned, so it gets none of its
    own), and of those production rows themselves: the same inputs on both sides."""
    rows, shadow_correct, production_correct = s.execute(
        select(func.count(), _correct(Inference.label, _MIRRORED),
               _correct(_MIRRORED.label, _MIRRORED))
        .select_from(Inference).join(_MIRRORED, _paired())
        .where(where, _MIRRORED.feedback_label.is_not(None))).one()
    return (int(shadow_correct or 0), int(rows)), (int(production_correct or 0), int(rows))


def agreement(s: Session, where: ColumnElement[bool]) -> dict[str, Any]:
    """How often the shadow rows ``where`` selects gave their production row's answer (both
    abstaining counts as agreeing)."""
    same = func.coalesce(Inference.label, "") == func.coalesce(_MIRRORED.label, "")
    pairs, agreed = s.execute(
        select(func.count(), func.sum(cast(same, Integer)))
        .select_from(Inference).join(_MIRRORED, _paired()).where(where)).one()
    return {"pairs": pairs, "rate": _share(agreed, pairs)}


def accuracy(correct_rows: tuple[int, int]) -> dict[str, Any]:
    """Accuracy on feedback with its Wilson 95 % interval and the rows behind it."""
    correct, rows = correct_rows
    interval = wilson(correct, rows)
    return {"rows": rows, "correct": correct, "accuracy": _share(correct, rows),
            "ci95": [round(b, 4) for b in interval] if interval else None}


def _paired() -> ColumnElement[bool]:
    return and_(_MIRRORED.id == Inference.shadow_of,
                _MIRRORED.created_at == Inference.created_at)


def _correct(label: Any, row: Any) -> Any:
    hit = func.coalesce(label, "") == row.feedback_label
    return func.sum(cast(hit, Integer))


def _share(part: float | None, whole: float | None) -> float | None:
    return round(float(part or 0) / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return round(float(value), 4) if value is not None else None
