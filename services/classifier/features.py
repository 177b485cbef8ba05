"""The features rows a head predicts on: a bounded cache in front of the embedder, and one
embedder call for the misses of concurrent requests.

**Repeats never leave the classifier.** Rows are kept by embedding identity and cleaned text
(``CLASSIFIER_FEATURE_CACHE_SIZE`` rows, least recently used dropped). A row is served only
while its identity is the one the embedder answered with last, and only if that answer is at
most ``CLASSIFIER_FEATURE_CACHE_CONFIRM_S`` old: when every request hits, one goes to the
embedder anyway that often, so a new model revision (a new identity) is seen within that time,
empties the cache, and no request ever mixes rows of two identities.

**Concurrent requests share a hop** (:mod:`shared.gathering`): while one embedder call is out,
the misses of requests that arrive meanwhile go together in the next call; a lone request is
sent at once. The embedder batches inside too: this saves the HTTP calls, their parsing and
their share of the event loop on both sides. If the embedder refuses a gathered call's input
(422), each request is sent again on its own, so only the one with the bad text fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from services.classifier.metrics import FEATURE_ROWS
from shared.clients.embedder import AsyncEmbedderClient, Embeddings
from shared.errors import InvalidInput
from shared.gathering import Gathering


@dataclass(frozen=True, slots=True)
class _Row:
    features: np.ndarray  # [sentence | lexical]
    truncated: bool


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One text's row as an embedder call answered it."""

    row: _Row
    cached: bool  # in the embedder's cache
    identity: str | None
    model: str


class FeatureRows:
    def __init__(self, embedder: AsyncEmbedderClient, size: int, confirm_s: float,
                 gather_max_texts: int = 256) -> None:
        self.embedder, self.confirm_s = embedder, confirm_s
        self._rows: LRUCache[tuple[str, str], _Row] | None = LRUCache(size) if size else None
        self._identity: str | None = None  # the embedder's, as it answered last
        self._model = ""
        self._confirmed_at = -float("inf")
        self._fetch: Gathering[str, str, _Fetched] = Gathering(
            self._send, max_items=gather_max_texts, alone=(InvalidInput,))

    def cached_rows(self) -> int:
        return 0 if self._rows is None else len(self._rows)

    async def features(self, texts: list[str]) -> Embeddings:
        """Features rows of ``texts`` (cleaned), in order, all of one embedding identity."""
        identity, model, rows = self._identity, self._model, self._hits(texts)
        cached = dict.fromkeys(rows, True)
        misses = [t for t in dict.fromkeys(texts) if t not in rows]
        if misses:
            fetched = await self._fetch("features", misses)
            if rows and fetched[0].identity != identity:  # the embedder changed meanwhile
                rows, cached, misses = {}, {}, list(dict.fromkeys(texts))
                fetched = await self._fetch("features", misses)
            identity, model = fetched[0].identity, fetched[0].model
            rows |= {t: f.row for t, f in zip(misses, fetched, strict=True)}
            cached |= {t: f.cached for t, f in zip(misses, fetched, strict=True)}
        FEATURE_ROWS.labels("cache").inc(len(texts) - len(misses))
        FEATURE_ROWS.labels("embedder").inc(len(misses))
        features = np.stack([rows[t].features for t in texts])
        return Embeddings(vectors=features[:, :features.shape[1] // 2], features=features,
                          cached=[cached[t] for t in texts],
                          truncated=[rows[t].truncated for t in texts], model=model,
                          identity=identity)

    def _hits(self, texts: list[str]) -> dict[str, _Row]:
        fresh = time.monotonic() - self._confirmed_at < self.confirm_s
        if self._rows is None or self._identity is None or not fresh:
            return {}
        found = {}
        for text in texts:
            row = self._rows.get((self._identity, text))
            if row is not None:
                found[text] = row
        return found

    async def _send(self, _key: str, texts: list[str], _since: float) -> list[_Fetched]:
        """One embedder call for ``texts`` (a request's misses, or several requests'); what
        it answers is kept (a new identity empties the cache first)."""
        distinct = list(dict.fromkeys(texts))
        answer = await self.embedder.features(distinct)
        assert answer.features is not None  # /v1/features answers them
        if answer.identity != self._identity:
            if self._rows is not None:
                self._rows.clear()
            self._identity = answer.identity
        self._model, self._confirmed_at = answer.model, time.monotonic()
        fetched = {}
        for i, text in enumerate(distinct):
            row = _Row(answer.features[i], answer.truncated[i])
            fetched[text] = _Fetched(row, answer.cached[i], answer.identity, answer.model)
            if self._rows is not None and answer.identity is not None:
                self._rows[(answer.identity, text)] = row
        return [fetched[t] for t in texts]
