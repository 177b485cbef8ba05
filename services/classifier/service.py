"""Classify or explain texts with a served head: clean, embed, predict.

Classification takes its features rows from :class:`~services.classifier.features.FeatureRows`
(repeats from this process's cache, misses of concurrent requests in one embedder call);
explanations and clusters, whose texts rarely repeat, make one embedder call each.

No FastAPI here; the router maps errors through the shared table.
"""

from __future__ import annotations

import logging
import time

import anyio

from services.classifier.clusters import cluster_texts
from services.classifier.explain import explanation, variants, words_of
from services.classifier.features import FeatureRows
from services.classifier.head_set import HeadSet, Served
from services.classifier.metrics import record_classification, record_explanation
from services.classifier.routing import predict, route, text_predictions
from shared.artifacts import ArtifactError
from shared.clients.embedder import AsyncEmbedderClient, Embeddings
from shared.contracts.classify import ClassifyResponse, Timings
from shared.contracts.explain import ExplainResponse
from shared.contracts.review import MAX_REVIEW_TEXTS, ClusterResponse, TextCluster
from shared.errors import Unavailable
from shared.heads import HeadMismatch
from shared.limits import check_text, check_texts
from shared.settings import ClassifierSettings
from shared.text import clean

log = logging.getLogger(__name__)


class ClassifierService:
    def __init__(self, heads: HeadSet, embedder: AsyncEmbedderClient,
                 settings: ClassifierSettings) -> None:
        self.heads, self.embedder, self.settings = heads, embedder, settings
        self.feature_rows = FeatureRows(embedder, settings.feature_cache_size,
                                        settings.feature_cache_confirm_s)
        # The text and its variants must go in one embedder call (one request's worth).
        self.explain_max_words = min(settings.explain_max_words,
                                     embedder.settings.batch_size - 1)

    def check(self, texts: list[str]) -> list[str]:
        """The input limits, and the same cleaning as training; returns the cleaned texts."""
        check_texts(texts, max_texts=self.settings.max_texts_per_request,
                    max_chars=self.settings.max_chars_per_text, param="texts")
        return [clean(text) for text in texts]

    async def classify(self, model: str, texts: list[str], top_k: int = 3,
                       version: int | None = None,
                       routing_key: str | None = None) -> ClassifyResponse:
        """Production's answer, or the pinned ``version``'s, or the canary's (see
        :mod:`services.classifier.routing`); a shadow predicts on the same embeddings."""
        start = time.perf_counter()
        # This request keeps these heads, whatever reloads.
        chosen = await route(self.heads, model, version, routing_key)
        served = chosen.answer
        cleaned = self.check(texts)
        embeddings = self._checked(served, await self.feature_rows.features(cleaned))
        embedded = time.perf_counter()
        chosen, predictions, head_s, shadow = await anyio.to_thread.run_sync(
            predict, chosen, embeddings, top_k, self.heads.failure_counts)
        served = chosen.answer
        record_classification(model, served.version, len(predictions),
                              sum(p.abstained for p in predictions), embedded - start + head_s)
        return ClassifyResponse(
            model=model, version=served.version, role=chosen.role, head_type=served.head.kind,
            embedder_model=embeddings.model,
            predictions=text_predictions(predictions, embeddings.cached), shadow=shadow,
            timings=Timings(embed_ms=round((embedded - start) * 1000, 3),
                            head_ms=round(head_s * 1000, 3),
                            total_ms=round((time.perf_counter() - start) * 1000, 3)))

    async def explain(self, model: str, text: str) -> ExplainResponse:
        """Leave-one-word-out (see :mod:`services.classifier.explain`): one embedder call."""
        served = self.heads.get(model)
        check_text(text, max_chars=self.settings.max_chars_per_text, param="text")
        words = words_of(text, self.explain_max_words)
        embeddings = await self._embed(served, [clean(text), *variants(text, words)])
        head, vectors = served.head, embeddings.head_rows

        def answer() -> ExplainResponse:
            [prediction] = head.predict(vectors[:1], 2)
            return explanation(model, served.version, head.labels, prediction,
                               head.predict_proba(vectors), words)

        explained = await anyio.to_thread.run_sync(answer)
        record_explanation(model, served.version)
        return explained

    async def cluster(self, model: str, texts: list[str]) -> ClusterResponse:
        """Group ``texts`` by meaning (see :mod:`services.classifier.clusters`), embedded in one
        embedder call; clusters name the production version's nearest labels."""
        served = self.heads.get(model)
        check_texts(texts, max_texts=MAX_REVIEW_TEXTS,
                    max_chars=self.settings.max_chars_per_text, param="texts")
        embeddings = await self._embed(served, [clean(text) for text in texts])
        try:
            intent_map = await anyio.to_thread.run_sync(self.heads.intent_map, model,
                                                        served.version)
        except ArtifactError:
            log.warning("model %s v%d: intent map unreadable; clustering sentence vectors",
                        model, served.version, exc_info=True)
            intent_map = None
        found = await anyio.to_thread.run_sync(
            cluster_texts, texts, embeddings.head_rows, served.head, intent_map)
        return ClusterResponse(model=model, version=served.version,
                               unclustered=found.unclustered, near_known=found.near_known,
                               clusters=[TextCluster(members=g.members, keywords=g.keywords,
                                                     proposed_label=g.proposed_label,
                                                     nearest_label=g.nearest_label,
                                                     similarity=g.similarity)
                                         for g in found.groups])

    async def _embed(self, served: Served, texts: list[str]) -> Embeddings:
        """One embedder call (sentence vectors and features rows)."""
        return self._checked(served, await self.embedder.features(texts))

    @staticmethod
    def _checked(served: Served, embeddings: Embeddings) -> Embeddings:
        """``embeddings``, if the head was trained on their embedder; else 503."""
        try:
            served.head.check_embedder(embeddings.model, int(embeddings.vectors.shape[1]),
                                       embeddings.identity)
        except HeadMismatch as exc:
            raise Unavailable(f"model {served.model!r} v{served.version}: {exc}",
                              param="model") from None  # this model's trouble, not the replica's
        return embeddings
