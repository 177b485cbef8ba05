"""Dynamic micro-batching: concurrent requests share forward passes, within every bound."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from services.embedder.app import create_app
from services.embedder.backends import Backend
from services.embedder.engine import BatchingEngine
from shared.contracts import EmbeddingResponse
from shared.errors import Overloaded
from tests.conftest import clinc_texts, running, settings
from tests.embedder.fakes import SlowBackend

pytestmark = pytest.mark.anyio


async def embed_each(client: httpx.AsyncClient, texts: list[str]) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post("/v1/embeddings", json={"input": t})
                                  for t in texts))


async def test_concurrent_requests_share_forward_passes() -> None:
    backend = SlowBackend(delay_s=0.05)
    async with running(create_app(settings(max_wait_ms=5), backend=backend)) as client:
        backend.forward_calls.clear()
        responses = await embed_each(client, [f"phrase number {i}" for i in range(40)])
    assert all(r.status_code == 200 for r in responses)
    assert sum(backend.forward_calls) == 40
    assert len(backend.forward_calls) <= 5, backend.forward_calls
    assert max(backend.forward_calls) >= 10


async def test_batches_respect_size_and_token_bounds_and_are_length_sorted() -> None:
    backend = SlowBackend(delay_s=0.02)
    texts = [" ".join(["w"] * (1 + i % 12)) + f" t{i}" for i in range(60)]
    app = create_app(settings(max_batch_size=8, max_batch_tokens=40, max_wait_ms=5),
                     backend=backend)
    async with running(app) as client:
        backend.forward_calls.clear()
        backend.lengths.clear()
        responses = await embed_each(client, texts)
    assert all(r.status_code == 200 for r in responses)
    assert max(backend.forward_calls) <= 8
    for lengths in backend.lengths:
        assert lengths == sorted(lengths)
        assert len(lengths) == 1 or len(lengths) * max(lengths) <= 40


async def test_full_queue_answers_429_with_retry_after() -> None:
    backend = SlowBackend(delay_s=0.0)
    backend.release.clear()  # hold the worker: the queue can only grow
    app = create_app(settings(max_queue_texts=4, max_batch_size=2, max_wait_ms=0),
                     backend=backend)
    async with running(app) as client:
        first = asyncio.ensure_future(client.post("/v1/embeddings", json={"input": ["a", "b"]}))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(client.post("/v1/embeddings", json={"input": ["c", "d"]}))
        await asyncio.sleep(0.05)
        refused = await client.post("/v1/embeddings", json={"input": ["e", "f", "g"]})
        backend.release.set()
        assert (await first).status_code == 200 and (await second).status_code == 200
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "queue is full" in refused.json()["error"]["message"]


async def test_engine_alone_refuses_when_full() -> None:
    backend = SlowBackend(delay_s=0.0)
    backend.release.clear()
    engine = BatchingEngine(backend, settings(max_queue_texts=3, max_batch_size=1, max_wait_ms=0))
    engine.start()
    try:
        held = asyncio.ensure_future(engine.embed(["a", "b", "c"]))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await engine.embed(["d"])
        backend.release.set()
        assert len(await held) == 3
    finally:
        backend.release.set()
        await asyncio.to_thread(engine.stop)


@pytest.mark.model
async def test_batched_results_equal_per_text_results(real_backend: Backend) -> None:
    """The real model: a text's vector does not depend on what it was batched with."""
    texts = clinc_texts("val.csv", 48)
    alone = np.stack([real_backend.forward(real_backend.tokenize([t]))[0] for t in texts])
    app = create_app(settings(lru_size=0, max_wait_ms=20), backend=real_backend)
    async with running(app) as client:
        responses = await embed_each(client, texts)
        one_batch = EmbeddingResponse.model_validate(
            (await client.post("/v1/embeddings", json={"input": texts})).json()).matrix()
    served = np.stack([EmbeddingResponse.model_validate(r.json()).matrix()[0] for r in responses])
    assert (served * alone).sum(1).min() >= 0.99999
    assert (one_batch * alone).sum(1).min() >= 0.99999
    np.testing.assert_allclose(served, alone, atol=2e-5)
