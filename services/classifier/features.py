"""The features rows a head predicts on: a bounded cache in front of the embedder, and one
embedder call for the misses of concurrent requests.

**Repeats never leave the classifier.** Rows are kept by embedding identity and cleaned text
(``CLASSIFIER_FEATURE_CACHE_SIZE`` rows, least recently used dropped). A row is served only
while its identity is the one the embedder answered with last, and only if that answer is at
most ``CLASSIFIER_FEATURE_CACHE_CONFIRM_S`` old: when every request hits, one goes to the
embedder anyway that often, so a new model revision (a new identity) is seen within that time,
empties the cache, and no request ever mixes rows of two identities.

**Concurrent requests share a hop.** While one embedder call is out, the misses of requests
that arrive meanwhile wait and go together in the next call, sent the moment the first
returns; a lone request is sent at once and never waits. The embedder batches inside too:
this saves the HTTP calls, their parsing and their share of the event loop on both sides. If
the embedder refuses a gathered call's input (422), each request is sent again on its own so
that only the one with the bad text fails.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache

from services.classifier.metrics import FEATURE_ROWS
from shared.clients.embedder import AsyncEmbedderClient, Embeddings
from shared.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class _Row:
    features: np.ndarray  # [sentence | lexical]
    truncated: bool


@dataclass(eq=False)
class _Waiter:
    texts: list[str]
    answer: asyncio.Future[Embeddings] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class FeatureRows:
    def __init__(self, embedder: AsyncEmbedderClient, size: int, confirm_s: float) -> None:
        self.embedder, self.confirm_s = embedder, confirm_s
        self._rows: LRUCache[tuple[str, str], _Row] | None = LRUCache(size) if size else None
        self._identity: str | None = None  # the embedder's, as it answered last
        self._model = ""
        self._confirmed_at = -float("inf")
        self._busy = False  # an embedder call is out
        self._waiting: list[_Waiter] = []
        self._sending: set[asyncio.Task[None]] = set()

    def cached_rows(self) -> int:
        return 0 if self._rows is None else len(self._rows)

    async def features(self, texts: list[str]) -> Embeddings:
        """Features rows of ``texts`` (cleaned), in order, all of one embedding identity."""
        identity, rows = self._identity, self._hits(texts)
        cached = dict.fromkeys(rows, True)
        misses = [t for t in dict.fromkeys(texts) if t not in rows]
        model = self._model
        if misses:
            answer = await self._gathered(misses)
            if rows and answer.identity != identity:  # the embedder changed meanwhile
                rows, cached, misses = {}, {}, list(dict.fromkeys(texts))
                answer = await self._gathered(misses)
            identity, model = answer.identity, answer.model
            rows |= _rows(answer, misses)
            cached |= dict(zip(misses, answer.cached, strict=True))
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

    def _keep(self, texts: list[str], answer: Embeddings) -> None:
        """Remember what the embedder answered (a new identity empties the cache)."""
        if answer.identity != self._identity:
            if self._rows is not None:
                self._rows.clear()
            self._identity = answer.identity
        self._model, self._confirmed_at = answer.model, time.monotonic()
        if self._rows is not None and answer.identity is not None:
            for text, row in _rows(answer, texts).items():
                self._rows[(answer.identity, text)] = row

    async def _gathered(self, texts: list[str]) -> Embeddings:
        if self._busy:
            waiter = _Waiter(texts)
            self._waiting.append(waiter)
            return await waiter.answer
        self._busy = True
        try:
            answer = await self.embedder.features(texts)
            self._keep(texts, answer)
            return answer
        finally:
            self._send_waiting()

    def _send_waiting(self) -> None:
        """The next call, for every request that waited (or none: nothing is out then)."""
        waiters, self._waiting = self._waiting, []
        if not waiters:
            self._busy = False
            return
        task = asyncio.create_task(self._send(waiters))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, waiters: list[_Waiter]) -> None:
        texts = list(dict.fromkeys(t for w in waiters for t in w.texts))
        try:
            answer = await self.embedder.features(texts)
            self._keep(texts, answer)
            for waiter in waiters:
                _settle(waiter, _select(answer, texts, waiter.texts))
        except InvalidInput:
            for waiter in waiters:  # whose text was refused: each request on its own
                try:
                    _settle(waiter, await self.embedder.features(waiter.texts))
                except Exception as exc:  # noqa: BLE001  # raised in its request, as its own
                    _settle(waiter, exc)
        except Exception as exc:  # noqa: BLE001  # raised in each waiting request, as its own
            for waiter in waiters:
                _settle(waiter, exc)
        finally:
            self._send_waiting()


def _rows(answer: Embeddings, texts: list[str]) -> dict[str, _Row]:
    """``texts``' rows in ``answer`` (the texts it was asked for, in order)."""
    assert answer.features is not None  # /v1/features answers them
    return {t: _Row(answer.features[i], answer.truncated[i]) for i, t in enumerate(texts)}


def _select(answer: Embeddings, asked: list[str], texts: list[str]) -> Embeddings:
    """The part of a gathered ``answer`` (to ``asked``) that is one request's ``texts``."""
    where = {t: i for i, t in enumerate(asked)}
    rows = [where[t] for t in texts]
    assert answer.features is not None
    return Embeddings(vectors=answer.vectors[rows], features=answer.features[rows],
                      cached=[answer.cached[i] for i in rows],
                      truncated=[answer.truncated[i] for i in rows], model=answer.model,
                      identity=answer.identity)


def _settle(waiter: _Waiter, result: Embeddings | Exception) -> None:
    if waiter.answer.done():  # its request was cancelled (the caller went away)
        return
    if isinstance(result, Exception):
        waiter.answer.set_exception(result)
    else:
        waiter.answer.set_result(result)
