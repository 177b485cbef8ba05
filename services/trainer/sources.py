"""Training data that needs no hand-made file: a version's own training rows, stored with it,
plus the inferences that received feedback since.

Every version keeps the cleaned rows it was trained on (:data:`TRAINING_ROWS` in its artifact
folder), so retraining from feedback starts from what production knows and adds the
corrections to it, instead of training on the handful of corrected rows alone.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from sqlalchemy import select

from services.trainer.dataset import Dataset, DatasetError, from_rows, stored_rows
from shared.artifacts import ArtifactStore
from shared.db.models import Inference
from shared.errors import NotFound
from shared.registry import Registry
from shared.text import clean

TRAINING_ROWS = "training_rows.csv"  # in a version's folder: text,label; out-of-scope rows too


@dataclass
class StoredTraining:
    """What the production version of a model was trained on."""

    version: int
    rows: list[tuple[int, str, str]] | None  # None: the version predates stored training rows
    oos_label: str | None


def training_rows_csv(data: Dataset, oos_label: str | None) -> bytes:
    """The rows a version learned from, as a ``text,label`` CSV (out-of-scope rows under
    ``oos_label``): what a later retraining starts from."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("text", "label"))
    writer.writerows(zip(data.texts, data.labels, strict=True))
    if oos_label is not None:
        writer.writerows((text, oos_label) for text in data.oos_texts)
    return out.getvalue().encode()


def production_training(registry: Registry, store: ArtifactStore,
                        model_name: str) -> StoredTraining | None:
    """The production version's stored training rows and ``oos_label``; ``None`` when the
    model has no production version."""
    try:
        version = registry.version(model_name, "production")
    except NotFound:
        return None
    files = store.read_version(version.artifact_uri, (TRAINING_ROWS, "training_config.json"))
    config = json.loads(files.get("training_config.json", b"{}"))
    rows = stored_rows(files[TRAINING_ROWS]) if TRAINING_ROWS in files else None
    return StoredTraining(version=version.version, rows=rows, oos_label=config.get("oos_label"))


def feedback_dataset(registry: Registry, model_name: str, base: StoredTraining | None, *,
                     oos_label: str | None) -> Dataset:
    """``base``'s rows (the production version's training data) plus every inference of
    ``model_name`` with a feedback label (its input text, the true label).

    Feedback wins: a base row whose text received feedback is replaced by it. Feedback rows go
    through the same checks as a CSV: one text corrected to two different labels is dropped as
    conflicting and reported, rather than silently picking one.
    """
    query = (select(Inference.id, Inference.input_text, Inference.feedback_label)
             .where(Inference.model_name == model_name, Inference.feedback_label.is_not(None))
             .order_by(Inference.created_at))
    with registry.sessions() as s:
        feedback: list[tuple[int | str, str, str]] = [
            (str(i), text, label) for i, text, label in s.execute(query) if label is not None]
    if not feedback:
        raise DatasetError(f"no inferences of model {model_name!r} have feedback yet; send "
                           "POST /v1/inferences/{id}/feedback with the true labels first")
    corrected = {clean(text): label for _, text, label in feedback}
    base_rows = (base.rows or []) if base else []
    kept = [row for row in base_rows if clean(row[1]) not in corrected]
    data = from_rows([*kept, *feedback], oos_label=oos_label)
    source: dict[str, object] = {"kind": "feedback", "model": model_name,
                                 "feedback_rows": len(feedback)}
    if base is not None:
        source |= {"base_version": base.version, "base_rows": len(base_rows),
                   "base_rows_corrected": sum(corrected[clean(text)] != label.strip()
                                              for _, text, label in base_rows
                                              if clean(text) in corrected)}
        if base.rows is None:
            data.report["warnings"].append(
                f"version {base.version} has no stored training rows (trained before they were "
                "kept): trained on the feedback rows alone")
    data.report["source"] = source
    return data
