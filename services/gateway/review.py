"""The review queue: the inferences a model abstained on or answered with little confidence,
that nobody has labelled yet, grouped by meaning (candidate new intents).

The queue reads only the newest ``SCAN_ROWS`` inferences of the window (the index on
``(model_name, created_at)``, read backwards, stops there), so a review costs the same with a
thousand inferences as with a billion. Texts are de-duplicated after the cleaning heads apply
(:func:`shared.text.clean`), keeping every inference id of each, so labelling a text labels
all its inferences. A classifier replica sets apart the texts like a known label's and
clusters the rest (``POST /v1/cluster/{model}``, :mod:`services.classifier.clusters`): the
production version's embedder, labels and intent map. Labels from the queue go in as feedback
(:func:`label`). No FastAPI here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
from sqlalchemy import func, or_, select

from services.gateway.feedback import INFERENCE_ID, label_rows
from services.gateway.service import PredictService
from services.gateway.time_windows import window
from shared.contracts.review import (
    ReviewCluster,
    ReviewLabelRequest,
    ReviewLabelResponse,
    ReviewResponse,
    ReviewText,
)
from shared.db.models import Inference
from shared.errors import NotFound, Unavailable
from shared.registry import Registry, labels_of
from shared.text import clean

SCAN_ROWS = 50_000  # newest inferences of the window a review reads, at most
# Characters of each text sent to be clustered: enough to say what a text is about, and fewer
# when there are many, so that all of them, even at 4 bytes a character, stay under the
# classifier's default 1 MiB body limit (CLASSIFIER_MAX_BODY_BYTES).
CLUSTERED_CHARS = 256
CLUSTER_BODY_BYTES = 900_000
DEFAULT_DAYS = 7
# Answers below it queue. Wide on purpose: a head answers many texts of an intent it never
# learned with a known label at 0.5-0.7, and the texts near a known label's examples are set
# apart from the candidate new intents (services.classifier.clusters.near_known).
DEFAULT_MAX_CONFIDENCE = 0.7


@dataclass
class Queued:
    """A distinct text of the queue, from its newest inference, and all its inference ids."""

    text: str
    label: str | None
    probability: float
    abstained: bool
    last_seen: datetime
    ids: list[str] = field(default_factory=list)

    def answer(self) -> ReviewText:
        return ReviewText(text=self.text, inference_ids=self.ids, label=self.label,
                          probability=self.probability, abstained=self.abstained,
                          last_seen=self.last_seen)


def queued(registry: Registry, model: str, start: datetime, end: datetime,
           max_confidence: float, limit: int) -> tuple[list[Queued], int]:
    """The queue's distinct texts, newest first (at most ``limit``), and how many inferences
    were read to find them."""
    newest = (select(Inference.id, Inference.created_at, Inference.input_text, Inference.label,
                     Inference.probability, Inference.abstained, Inference.role,
                     Inference.feedback_label)
              .where(Inference.model_name == model, Inference.created_at >= start,
                     Inference.created_at < end)
              .order_by(Inference.created_at.desc()).limit(SCAN_ROWS).subquery())
    counted = select(newest, func.count().over().label("scanned")).subquery()
    query = (select(counted)
             .where(counted.c.role != "shadow", counted.c.feedback_label.is_(None),
                    or_(counted.c.abstained, counted.c.probability < max_confidence))
             .order_by(counted.c.created_at.desc()))
    texts: dict[str, Queued] = {}
    scanned = 0
    with registry.sessions() as s:
        for row in s.execute(query):
            scanned = row.scanned
            key = clean(row.input_text)
            if key not in texts:
                if len(texts) == limit:
                    continue  # later rows may still be inferences of texts already queued
                texts[key] = Queued(row.input_text, row.label, row.probability, row.abstained,
                                    row.created_at)
            texts[key].ids.append(row.id)
    return list(texts.values()), scanned


async def review(registry: Registry, service: PredictService, model: str,
                 start: datetime | None, end: datetime | None, max_confidence: float,
                 limit: int) -> ReviewResponse:
    """The review queue of ``model``, clustered; 404 for a model the registry does not know,
    503 when no classifier replica can cluster."""
    start, end = window(start, end, default=timedelta(days=DEFAULT_DAYS))
    info = await anyio.to_thread.run_sync(registry.model, model)
    production = next((v for v in info.versions if v.version == info.production_version), None)
    texts, scanned = await anyio.to_thread.run_sync(
        queued, registry, model, start, end, max_confidence, limit)
    answer = ReviewResponse(
        model=model, version=info.production_version,
        labels=labels_of(production.metrics) if production else [], start=start, end=end,
        max_confidence=max_confidence, scanned=scanned, scan_limit=SCAN_ROWS,
        texts=len(texts), inferences=sum(len(t.ids) for t in texts), clusters=[],
        unclustered=[], near_known=[])
    if not texts:
        return answer
    try:
        chars = min(CLUSTERED_CHARS, CLUSTER_BODY_BYTES // (4 * len(texts)))
        grouped = await service.cluster(model, [clean(t.text)[:chars] for t in texts])
    except NotFound as exc:  # the registry has it, but no replica serves it (yet)
        raise Unavailable(f"no classifier replica serves model {model!r} right now; retry "
                          "shortly", retry_after_s=5) from exc
    answer.version = grouped.version
    answer.clusters = [ReviewCluster(
        texts=[texts[i].answer() for i in c.members],
        inferences=sum(len(texts[i].ids) for i in c.members), keywords=c.keywords,
        proposed_label=c.proposed_label, nearest_label=c.nearest_label,
        similarity=c.similarity) for c in grouped.clusters]
    answer.unclustered = [texts[i].answer() for i in grouped.unclustered]
    answer.near_known = [texts[i].answer() for i in grouped.near_known]
    return answer


def label(registry: Registry, model: str, body: ReviewLabelRequest,
          client: str) -> ReviewLabelResponse:
    """Store ``body.label`` as feedback on each inference of ``model`` named, in one
    transaction (:func:`services.gateway.feedback.label_rows`); the other ids come back in
    ``not_found``. Blocking: run it in a thread."""
    registry.model(model)  # 404 for an unknown model
    ids = list(dict.fromkeys(body.inference_ids))
    with registry.sessions.begin() as s:
        rows = label_rows(s, [i for i in ids if INFERENCE_ID.fullmatch(i)], body.label,
                          model=model, client=client, new_label=body.new_label)
    found = {row.id for row in rows}
    return ReviewLabelResponse(label=body.label, labelled=len(found),
                               not_found=[i for i in ids if i not in found])
