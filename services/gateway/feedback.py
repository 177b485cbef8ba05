"""Feedback on logged predictions: the true label on each row, every feedback kept in
``inference_feedback``, and the rollup's feedback counts kept equal to the rows'
(:mod:`shared.db.rollups`), in one transaction; for one inference (the feedback route) or many
(labelling from the review queue). No FastAPI here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.gateway import FeedbackResponse
from shared.db.models import FeedbackEvent, Inference, Model, ModelVersion
from shared.db.rollups import Deltas
from shared.db.types import utcnow
from shared.errors import InvalidInput
from shared.registry import labels_of

INFERENCE_ID = re.compile(r"[0-9a-f]{32}")  # uuid4 hex: the gateway makes no other id
# A labelled row: id, created_at, model_name, model_version, label, feedback_label (before).
Labelled = Row[str, datetime, str, int, str | None, str | None]


def store_feedback(sessions: sessionmaker[Session], inference_id: str, label: str, *,
                   client: str | None = None, new_label: bool = False
                   ) -> FeedbackResponse | None:
    """Feedback on one inference; ``None`` when no row has this id (yet: rows ship a moment
    after their answer) or the row is a shadow's (its id is never given to callers: feedback
    goes to the production row it mirrors). See :func:`label_rows`."""
    with sessions.begin() as s:
        rows = label_rows(s, [inference_id], label, client=client, new_label=new_label)
    if not rows:
        return None
    return FeedbackResponse(inference_id=inference_id, label=label, predicted=rows[0].label)


def label_rows(s: Session, ids: Sequence[str], label: str, *, model: str | None = None,
               client: str | None = None, new_label: bool = False) -> list[Labelled]:
    """Set ``feedback_label`` on the rows of ``ids`` (of ``model`` when given; never a
    shadow's), replacing any earlier one, keep each feedback in the history and count it in the
    rollups, in the session's transaction; the rows labelled. A label a predicting version
    does not know is refused (:class:`InvalidInput`, nothing written) unless ``new_label``.

    The first statement writes (``feedback_at``), so it locks the rows, on PostgreSQL and on
    SQLite alike, before the earlier feedback is read: two feedbacks racing on one row count
    it once.
    """
    where = [Inference.id.in_(list(ids)), Inference.role != "shadow"]
    if model is not None:
        where.append(Inference.model_name == model)
    rows = list(s.execute(
        update(Inference).where(*where).values(feedback_at=utcnow())
        .returning(Inference.id, Inference.created_at, Inference.model_name,
                   Inference.model_version, Inference.label, Inference.feedback_label)).all())
    if not rows:
        return rows
    if not new_label:
        for model_name, version in sorted({(r.model_name, r.model_version) for r in rows}):
            _check_label(s, model_name, version, label)
    s.execute(update(Inference)  # by the full key: one partition each on PostgreSQL
              .where(tuple_(Inference.id, Inference.created_at)
                     .in_([(r.id, r.created_at) for r in rows]))
              .values(feedback_label=label))
    s.add_all(FeedbackEvent(inference_id=r.id, model_name=r.model_name,
                            model_version=r.model_version, label=label, predicted=r.label,
                            client=client) for r in rows)
    deltas = Deltas()
    for r in rows:
        first = r.feedback_label is None  # else a replaced feedback: rows stay, correct moves
        before = 0 if first else int(r.feedback_label == r.label)
        deltas.feedback(dict(r._mapping), rows=int(first), correct=int(label == r.label) - before)
    deltas.write(s.connection())
    return rows


def _check_label(s: Session, model_name: str, version: int, label: str) -> None:
    """Refuse a label that ``version`` of the model was not trained on (its classes and its
    out-of-scope label). A version whose labels are not recorded accepts any."""
    metrics = s.scalar(select(ModelVersion.metrics).join(Model)
                       .where(Model.name == model_name, ModelVersion.version == version))
    known = labels_of(metrics or {})
    if known and label not in known:
        raise InvalidInput(
            f"unknown label {label!r}: version {version} of model {model_name!r} knows "
            f"{', '.join(known)}; to teach it a new label, send \"new_label\": true",
            param="label")
