"""Training data that needs no hand-made file: inferences that received feedback."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.trainer.dataset import Dataset, DatasetError, from_rows
from shared.db.models import Inference


def feedback_dataset(sessions: sessionmaker[Session], model_name: str, *, min_per_class: int,
                     oos_label: str | None) -> Dataset:
    """Every inference of ``model_name`` with a feedback label: (input text, true label).

    Rows go through the same checks as a CSV: a text corrected to two different labels is
    dropped as conflicting and reported, rather than silently picking one.
    """
    query = (select(Inference.id, Inference.input_text, Inference.feedback_label)
             .where(Inference.model_name == model_name, Inference.feedback_label.is_not(None))
             .order_by(Inference.created_at))
    with sessions() as s:
        raw = [(str(i), text, label) for i, text, label in s.execute(query)]
    if not raw:
        raise DatasetError(f"no inferences of model {model_name!r} have feedback yet; send "
                           "POST /v1/inferences/{id}/feedback with the true labels first")
    data = from_rows(raw, min_per_class=min_per_class, oos_label=oos_label)
    data.report["source"] = {"kind": "feedback", "model": model_name}
    return data
