"""Clients for the embedder, used by the classifier heads and the trainer.

``embed`` answers sentence vectors (``/v1/embeddings``); ``features`` answers what heads take
(``/v1/features``): the same sentence vectors, and beside them the features rows
[sentence | lexical].

Pooled connections, explicit timeouts, retries with backoff on connection errors and on
429/503 (honouring ``Retry-After``, capped), and the request id forwarded. Vectors travel as
base64 float32, which is smaller and much faster to parse than JSON floats. Failures surface
as polyhead errors, so a service calling this answers 503 (embedder down) or 422 (input refused)
through the shared error table without extra code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from pydantic import ValidationError

from shared.contracts.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    FeaturesResponse,
    ModelList,
)
from shared.decorators import RetryBudget, retry
from shared.errors import InvalidInput, PolyheadError, Unavailable
from shared.http import polyhead_error_message
from shared.metrics import record_breaker_state
from shared.request_id import outgoing_headers
from shared.settings import EmbedderClientSettings

_MAX_RETRY_AFTER_S = 2.0
EMBEDDINGS, FEATURES = "/v1/embeddings", "/v1/features"
_ANSWERS: dict[str, type[EmbeddingResponse]] = {EMBEDDINGS: EmbeddingResponse,
                                                FEATURES: FeaturesResponse}
log = logging.getLogger(__name__)


class _Retryable(Exception):
    """429 or 503 from the embedder: worth another try after a pause."""


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray       # (n, dimension) float32, L2-normalised sentence vectors, input order
    cached: list[bool]
    truncated: list[bool]
    model: str
    identity: str | None = None  # model@revision:precision; None from an embedder without it
    # (n, 2 * dimension) [sentence | lexical] rows from ``features``; None from ``embed``
    features: np.ndarray | None = None

    @property
    def head_rows(self) -> np.ndarray:
        """What a head predicts on: the features rows, or the sentence vectors without them
        (a head takes the columns it was trained on: :meth:`shared.heads.Head.inputs`)."""
        return self.vectors if self.features is None else self.features


def _chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def _body(texts: list[str]) -> dict[str, Any]:
    return EmbeddingRequest(input=texts, encoding_format="base64").model_dump(exclude_none=True)


def _parse(response: httpx.Response, answer: type[EmbeddingResponse]) -> EmbeddingResponse:
    """Turn an HTTP answer into ``answer``, or into the polyhead error it stands for."""
    if response.status_code in (429, 503):
        raise _Retryable(response.headers.get("retry-after", "1"))
    if response.status_code >= 400:
        message = polyhead_error_message(response)
        if message is None:  # not the embedder (a proxy?): log, not echo
            log.warning("embedder answered HTTP %d without an error body: %.300s",
                        response.status_code, response.text)
            message = f"HTTP {response.status_code}"
        if response.status_code < 500:
            raise InvalidInput(f"embedder refused the input: {message}")
        log.warning("embedder failed with HTTP %d: %s", response.status_code, message)
        raise Unavailable(f"the embedder failed (HTTP {response.status_code}); retry shortly")
    try:
        return answer.model_validate_json(response.content)
    except ValidationError as exc:
        log.warning("embedder answered something that is not an embeddings response: %s", exc)
        raise Unavailable("the embedder answered something that is not an embeddings "
                          "response") from exc


def _merge(parts: list[EmbeddingResponse]) -> Embeddings:
    if len({p.embedding_identity for p in parts}) > 1:  # replicas of two backends answered
        raise Unavailable("the embedder answered with two different embeddings (a rollout in "
                          "progress?); retry shortly", retry_after_s=1)
    data = [item for part in parts for item in sorted(part.data, key=lambda d: d.index)]
    rows = np.stack([d.vector() for d in data]) if data else np.zeros((0, 0), np.float32)
    vectors, features = rows, None
    dimensions = {p.dimension for p in parts if isinstance(p, FeaturesResponse)}
    if dimensions:  # features rows: [sentence | lexical]
        dimension = dimensions.pop()
        if dimensions or (data and rows.shape[1] != 2 * dimension):
            log.warning("embedder features do not match their dimension %d: %s", dimension,
                        rows.shape)
            raise Unavailable("the embedder answered features of the wrong length")
        vectors, features = rows[:, :dimension], rows
    return Embeddings(vectors=vectors, cached=[d.cached for d in data],
                      truncated=[d.truncated for d in data], model=parts[0].model if parts else "",
                      identity=parts[0].embedding_identity if parts else None, features=features)


def _retry_after_s(value: str) -> float:
    """Seconds from a Retry-After header; an HTTP date or garbage counts as 1 s."""
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return 1.0


def _unavailable(exc: BaseException, url: str) -> PolyheadError:
    if isinstance(exc, _Retryable):
        return Unavailable("embedder is overloaded or not ready; retry shortly",
                           retry_after_s=_retry_after_s(str(exc)))
    # Where it was and what failed are for the logs (with the request id); never for callers.
    log.warning("embedder at %s is unreachable: %r", url, exc)
    return Unavailable("the embedder is unreachable; retry shortly", retry_after_s=1)


def _retrying(settings: EmbedderClientSettings, post: Any, budget: RetryBudget) -> Any:
    """``post`` retried on connection errors and 429/503, as the settings say (sync or async),
    within a retry budget shared by all calls of the client."""
    return retry(attempts=settings.retries + 1, on=(httpx.TransportError, _Retryable),
                 budget=budget)(post)


def _http_options(settings: EmbedderClientSettings) -> dict[str, Any]:
    return {"base_url": settings.url,
            "timeout": httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            "limits": httpx.Limits(max_connections=settings.max_connections,
                                   max_keepalive_connections=settings.max_connections)}


class AsyncEmbedderClient:
    """``async with AsyncEmbedderClient() as c: e = await c.embed(["hello"])``

    Behind a circuit breaker (purgatory): after ``breaker_threshold`` failed calls in a row the
    client fails fast with :class:`Unavailable` for ``breaker_ttl_s``, so a dead embedder costs
    callers a quick 503 instead of a pile of hung requests; then one trial call decides.
    """

    def __init__(self, settings: EmbedderClientSettings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings or EmbedderClientSettings()
        self._http = httpx.AsyncClient(transport=transport, **_http_options(self.settings))
        self.budget = RetryBudget(self.settings.retry_budget_ratio)
        self._post = _retrying(self.settings, self._post_once, self.budget)
        # Refused input is the caller's fault, not the embedder's: it never opens the circuit.
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=self.settings.breaker_threshold,
            default_ttl=self.settings.breaker_ttl_s, exclude=[InvalidInput])
        self._breakers.add_listener(record_breaker_state)  # the gauge in shared.metrics

    async def embed(self, texts: list[str]) -> Embeddings:
        """Sentence vectors of ``texts`` (``/v1/embeddings``)."""
        return await self._call(EMBEDDINGS, texts)

    async def features(self, texts: list[str]) -> Embeddings:
        """Sentence vectors and features rows of ``texts`` (``/v1/features``)."""
        return await self._call(FEATURES, texts)

    async def _call(self, path: str, texts: list[str]) -> Embeddings:
        try:
            async with await self._breakers.get_breaker("embedder"):
                return await self._post_chunks(path, texts)
        except OpenedState:
            raise Unavailable(f"the embedder failed {self.settings.breaker_threshold} times in a "
                              "row; failing fast until it recovers",
                              retry_after_s=self.settings.breaker_ttl_s) from None

    async def _post_chunks(self, path: str, texts: list[str]) -> Embeddings:
        self.budget.earn()
        try:
            parts = [await self._post(path, chunk)
                     for chunk in _chunks(texts, self.settings.batch_size)]
        except (httpx.TransportError, _Retryable) as exc:
            raise _unavailable(exc, self.settings.url) from exc
        return _merge(parts)

    async def models(self) -> ModelList:
        response = await self._http.get("/v1/models", headers=outgoing_headers())
        response.raise_for_status()
        return ModelList.model_validate_json(response.content)

    async def _post_once(self, path: str, texts: list[str]) -> EmbeddingResponse:
        response = await self._http.post(path, json=_body(texts), headers=outgoing_headers())
        return _parse(response, _ANSWERS[path])

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncEmbedderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class EmbedderClient:
    """Blocking twin of :class:`AsyncEmbedderClient`, for scripts and sync job workers."""

    def __init__(self, settings: EmbedderClientSettings | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings or EmbedderClientSettings()
        self._http = httpx.Client(transport=transport, **_http_options(self.settings))
        self.budget = RetryBudget(self.settings.retry_budget_ratio)
        self._post = _retrying(self.settings, self._post_once, self.budget)

    def embed(self, texts: list[str]) -> Embeddings:
        """Sentence vectors of ``texts`` (``/v1/embeddings``)."""
        return self._post_chunks(EMBEDDINGS, texts)

    def features(self, texts: list[str]) -> Embeddings:
        """Sentence vectors and features rows of ``texts`` (``/v1/features``)."""
        return self._post_chunks(FEATURES, texts)

    def _post_chunks(self, path: str, texts: list[str]) -> Embeddings:
        self.budget.earn()
        try:
            parts = [self._post(path, chunk) for chunk in _chunks(texts, self.settings.batch_size)]
        except (httpx.TransportError, _Retryable) as exc:
            raise _unavailable(exc, self.settings.url) from exc
        return _merge(parts)

    def _post_once(self, path: str, texts: list[str]) -> EmbeddingResponse:
        return _parse(self._http.post(path, json=_body(texts), headers=outgoing_headers()),
                      _ANSWERS[path])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmbedderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
