"""Feedback on a logged prediction: the true label on its row, and the rollup's feedback counts
kept equal to the rows' (:mod:`shared.db.rollups`), in one transaction. No FastAPI here."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.gateway import FeedbackResponse
from shared.db.models import Inference
from shared.db.rollups import Deltas
from shared.db.types import utcnow


def store_feedback(sessions: sessionmaker[Session], inference_id: str,
                   label: str) -> FeedbackResponse | None:
    """Set the row's ``feedback_label`` (replacing any earlier one) and count it in the
    rollups; ``None`` when no row has this id (yet: rows ship a moment after their answer).

    The first statement writes (``feedback_at``), so it locks the row, on PostgreSQL and on
    SQLite alike, before the earlier feedback is read: two feedbacks racing on one row count
    it once.
    """
    with sessions.begin() as s:
        row = s.execute(
            update(Inference).where(Inference.id == inference_id).values(feedback_at=utcnow())
            .returning(Inference.created_at, Inference.model_name, Inference.model_version,
                       Inference.label, Inference.feedback_label)).first()
        if row is None:
            return None
        s.execute(update(Inference)
                  .where(Inference.id == inference_id, Inference.created_at == row.created_at)
                  .values(feedback_label=label))
        first = row.feedback_label is None  # else a replaced feedback: rows stay, correct moves
        before = 0 if first else int(row.feedback_label == row.label)
        deltas = Deltas()
        deltas.feedback(row._mapping, rows=int(first), correct=int(label == row.label) - before)
        deltas.write(s.connection())
        return FeedbackResponse(inference_id=inference_id, label=label, predicted=row.label)
