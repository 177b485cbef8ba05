"""Which head answers a request (production, a pinned version or the canary) and the shadow's
predictions beside it, on the same embeddings.

Canary assignment is sticky: a routing key (the caller's, passed by the gateway) is hashed
with the model name to a point in [0, 1), and the canary answers the keys below its share. A
request without a key is drawn at random, as is every shadow sample. A canary head that fails
to predict leaves the request to production; the failure is counted
(:class:`shared.candidate_failures.FailureCounts`) for the gateway's rollout watcher.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass

import anyio

from services.classifier.head_set import HeadSet, Served
from services.classifier.metrics import record_candidate_predict_failure, record_shadow
from shared.candidate_failures import FailureCounts
from shared.clients.embedder import Embeddings
from shared.contracts.classify import LabelScore, ShadowAnswer, TextPrediction
from shared.contracts.rollout import Role
from shared.heads import HeadPrediction

log = logging.getLogger(__name__)


def in_share(model: str, routing_key: str | None, share: float) -> bool:
    """Whether ``routing_key`` falls in the first ``share`` of ``model``'s hash space (always
    the same answer for the same key and share); random without a key."""
    if routing_key is None:
        return random.random() < share
    digest = hashlib.sha256(f"{model}\x00{routing_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class Route:
    answer: Served
    role: Role
    shadow: Served | None = None
    fallback: Served | None = None  # a canary's production: answers when the canary fails


async def route(heads: HeadSet, model: str, version: int | None,
                routing_key: str | None) -> Route:
    """The heads of one request, taken once: the request keeps them whatever reloads."""
    production, rollout = heads.get(model), heads.candidate(model)
    if version is not None:
        served = heads.loaded(model, version)
        if served is None:
            served = await anyio.to_thread.run_sync(heads.load_pinned, model, version)
        return Route(served, "pinned")
    if rollout is None:
        return Route(production, "production")
    share = rollout.candidate.share
    if rollout.candidate.mode == "canary":
        if in_share(model, routing_key, share):
            return Route(rollout.served, "canary", fallback=production)
        return Route(production, "production")
    # A shadow samples requests, not callers: every caller's traffic gets compared.
    sampled = in_share(model, None, share)
    return Route(production, "production", shadow=rollout.served if sampled else None)


def text_predictions(predictions: list[HeadPrediction],
                     cached: list[bool]) -> list[TextPrediction]:
    return [TextPrediction(label=p.label, probability=round(p.probability, 6),
                           abstained=p.abstained, cached=hit,
                           top=[LabelScore(label=label, probability=round(prob, 6))
                                for label, prob in p.top])
            for p, hit in zip(predictions, cached, strict=True)]


def predict(chosen: Route, embeddings: Embeddings, top_k: int, failures: FailureCounts
            ) -> tuple[Route, list[HeadPrediction], float, ShadowAnswer | None]:
    """The route that answered (production when a canary failed: counted in ``failures``
    for the rollout watcher, never the caller's problem), its predictions and their seconds,
    then the shadow's answer if the request has one: all in one worker thread (blocking: run
    it in one)."""
    start = time.perf_counter()
    try:
        predictions = chosen.answer.head.predict(embeddings.head_rows, top_k)
    except Exception:
        if chosen.fallback is None:
            raise
        log.warning("canary %s v%d could not predict; production answers", chosen.answer.model,
                    chosen.answer.version, exc_info=True)
        failures.add(chosen.answer.model, chosen.answer.version, "predict",
                     len(embeddings.cached))
        record_candidate_predict_failure(chosen.answer.model, chosen.answer.version,
                                         len(embeddings.cached))
        chosen = Route(chosen.fallback, "production")
        start = time.perf_counter()
        predictions = chosen.answer.head.predict(embeddings.head_rows, top_k)
    seconds = time.perf_counter() - start
    shadow = (shadow_answer(chosen.shadow, embeddings, top_k)
              if chosen.shadow is not None else None)
    return chosen, predictions, seconds, shadow


def shadow_answer(shadow: Served, embeddings: Embeddings, top_k: int) -> ShadowAnswer | None:
    """The shadow's predictions on the request's embeddings; None (logged, counted) if it
    cannot answer: a shadow never fails the request."""
    start = time.perf_counter()
    try:
        shadow.head.check_embedder(embeddings.model, int(embeddings.vectors.shape[1]))
        predictions = shadow.head.predict(embeddings.head_rows, top_k)
    except Exception:
        log.warning("shadow %s v%d could not predict", shadow.model, shadow.version,
                    exc_info=True)
        record_shadow(shadow.model, shadow.version, len(embeddings.cached), ok=False)
        return None
    record_shadow(shadow.model, shadow.version, len(predictions), ok=True)
    return ShadowAnswer(version=shadow.version, head_type=shadow.head.kind,
                        head_ms=round((time.perf_counter() - start) * 1000, 3),
                        predictions=text_predictions(predictions, embeddings.cached))
