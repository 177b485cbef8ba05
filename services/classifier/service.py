"""Classify texts with a served head: clean, embed (one call per request), predict.

No FastAPI here; the router maps errors through the shared table.
"""

from __future__ import annotations

import time

import anyio

from services.classifier.heads import HeadSet
from services.classifier.metrics import record_classification
from shared.clients.embedder import AsyncEmbedderClient
from shared.contracts.classify import (ClassifyResponse, LabelScore, TextPrediction, Timings)
from shared.errors import Unavailable
from shared.heads import HeadMismatch
from shared.limits import check_texts
from shared.settings import ClassifierSettings
from shared.text import clean


class ClassifierService:
    def __init__(self, heads: HeadSet, embedder: AsyncEmbedderClient,
                 settings: ClassifierSettings) -> None:
        self.heads, self.embedder, self.settings = heads, embedder, settings

    def check(self, texts: list[str]) -> list[str]:
        """The input limits, and the same cleaning as training; returns the cleaned texts."""
        check_texts(texts, max_texts=self.settings.max_texts_per_request,
                    max_chars=self.settings.max_chars_per_text, param="texts")
        return [clean(text) for text in texts]

    async def classify(self, model: str, texts: list[str], top_k: int = 3) -> ClassifyResponse:
        start = time.perf_counter()
        served = self.heads.get(model)  # this request keeps this version, whatever reloads
        cleaned = self.check(texts)
        embeddings = await self.embedder.embed(cleaned)
        embedded = time.perf_counter()
        head = served.head
        try:
            head.check_embedder(embeddings.model, int(embeddings.vectors.shape[1]))
        except HeadMismatch as exc:
            raise Unavailable(f"model {model!r} v{served.version}: {exc}") from None
        predictions = await anyio.to_thread.run_sync(head.predict, embeddings.vectors, top_k)
        done = time.perf_counter()
        record_classification(model, served.version, len(predictions),
                              sum(p.abstained for p in predictions), done - start)
        return ClassifyResponse(
            model=model, version=served.version, head_type=head.kind,
            embedder_model=embeddings.model,
            predictions=[TextPrediction(label=p.label, probability=round(p.probability, 6),
                                        abstained=p.abstained, cached=cached,
                                        top=[LabelScore(label=label, probability=round(prob, 6))
                                             for label, prob in p.top])
                         for p, cached in zip(predictions, embeddings.cached, strict=True)],
            timings=Timings(embed_ms=round((embedded - start) * 1000, 3),
                            head_ms=round((done - embedded) * 1000, 3),
                            total_ms=round((done - start) * 1000, 3)))
