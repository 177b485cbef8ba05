"""Feedback on a logged prediction: the true label on its row, every feedback kept in
``inference_feedback``, and the rollup's feedback counts kept equal to the rows'
(:mod:`shared.db.rollups`), in one transaction. No FastAPI here."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.gateway import FeedbackResponse
from shared.db.models import FeedbackEvent, Inference, Model, ModelVersion
from shared.db.rollups import Deltas
from shared.db.types import utcnow
from shared.errors import InvalidInput
from shared.registry import labels_of


def store_feedback(sessions: sessionmaker[Session], inference_id: str, label: str, *,
                   client: str | None = None, new_label: bool = False
                   ) -> FeedbackResponse | None:
    """Set the row's ``feedback_label`` (replacing any earlier one), keep the feedback in the
    history and count it in the rollups; ``None`` when no row has this id (yet: rows ship a
    moment after their answer) or the row is a shadow's (its id is never given to callers:
    feedback goes to the production row it mirrors). A label the predicting version does not
    know is refused (:class:`InvalidInput`, nothing written) unless ``new_label``.

    The first statement writes (``feedback_at``), so it locks the row, on PostgreSQL and on
    SQLite alike, before the earlier feedback is read: two feedbacks racing on one row count
    it once.
    """
    with sessions.begin() as s:
        row = s.execute(
            update(Inference).where(Inference.id == inference_id, Inference.role != "shadow")
            .values(feedback_at=utcnow())
            .returning(Inference.created_at, Inference.model_name, Inference.model_version,
                       Inference.label, Inference.feedback_label)).first()
        if row is None:
            return None
        if not new_label:
            _check_label(s, row.model_name, row.model_version, label)
        s.execute(update(Inference)
                  .where(Inference.id == inference_id, Inference.created_at == row.created_at)
                  .values(feedback_label=label))
        s.add(FeedbackEvent(inference_id=inference_id, model_name=row.model_name,
                            model_version=row.model_version, label=label, predicted=row.label,
                            client=client))
        first = row.feedback_label is None  # else a replaced feedback: rows stay, correct moves
        before = 0 if first else int(row.feedback_label == row.label)
        deltas = Deltas()
        correct = int(label == row.label) - before
        deltas.feedback(dict(row._mapping), rows=int(first), correct=correct)
        deltas.write(s.connection())
        return FeedbackResponse(inference_id=inference_id, label=label, predicted=row.label)


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
