"""What one embeddings request does, independent of HTTP: check, normalise, cache, compute.

Only the cache misses of a request reach the batching engine, and each distinct normalised
text is computed once even when a request repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.embedder import metrics
from services.embedder.backends import ModelInfo
from services.embedder.cache import PhraseCache
from services.embedder.engine import BatchingEngine, Embedded
from shared.errors import InvalidInput, NotFound
from shared.limits import check_texts
from shared.settings import EmbedderSettings
from shared.text import normalize

Source = Literal["lru", "redis", "computed"]


@dataclass(frozen=True, slots=True)
class Result:
    embedded: Embedded
    source: Source


class EmbeddingService:
    def __init__(self, engine: BatchingEngine, cache: PhraseCache,
                 settings: EmbedderSettings) -> None:
        self.engine = engine
        self.cache = cache
        self.info: ModelInfo = engine.backend.info
        self._max_texts = settings.max_texts_per_request
        self._max_chars = settings.max_chars_per_text

    def check_request(self, texts: list[str], model: str | None, dimensions: int | None) -> None:
        """Raise a clear 4xx error for anything we will not embed."""
        if model is not None and model not in self.info.aliases:
            raise NotFound(f"model '{model}' is not served here; this embedder serves "
                           f"'{self.info.model_id}'", param="model")
        if dimensions is not None and dimensions != self.info.dimension:
            raise InvalidInput(f"dimensions must be {self.info.dimension} for this model",
                               param="dimensions")
        if not texts:
            raise InvalidInput("input must contain at least one text", param="input")
        check_texts(texts, max_texts=self._max_texts, max_chars=self._max_chars, param="input")

    async def embed(self, texts: list[str]) -> list[Result]:
        keys = [normalize(t, lowercase=self.info.lowercase) for t in texts]
        distinct = list(dict.fromkeys(keys))
        from_lru, from_redis = await self.cache.get_many(distinct)
        misses = [k for k in distinct if k not in from_lru and k not in from_redis]
        computed = dict(zip(misses, await self.engine.embed(misses), strict=True)) if misses else {}
        if computed:
            self.cache.put_many(computed)
        found: dict[str, Result] = {}
        for source, table in (("lru", from_lru), ("redis", from_redis), ("computed", computed)):
            for key, embedded in table.items():
                found[key] = Result(embedded, source)  # type: ignore[arg-type]  # one of the Literal's names
            if table:
                metrics.TEXTS.labels(source).inc(len(table))
        return [found[k] for k in keys]
