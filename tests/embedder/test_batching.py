"""Dynamic micro-batching: concurrent requests share forward passes, within every bound."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

from services.embedder.app import create_app
from services.embedder.backends import Tokens
from services.embedder.engine import BatchingEngine
from shared.contracts import EmbeddingResponse
from shared.errors import Overloaded
from tests.conftest import clinc_texts, running, settings
from tests.embedder.conftest import BackendFactory
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
@pytest.mark.parametrize("name", ["onnx", "torch"])
async def test_batched_results_equal_per_text_results(model_backend: BackendFactory,
                                                      name: str) -> None:
    """The real model, two batches at once: a text's vector does not depend on what it was
    batched with, nor on the batch running beside it."""
    real_backend = model_backend(name)
    texts = clinc_texts("val.csv", 48)
    alone = np.stack([real_backend.forward(real_backend.tokenize([t]))[0] for t in texts])
    app = create_app(settings(lru_size=0, max_wait_ms=20, concurrent_batches=2),
                     backend=real_backend)
    async with running(app) as client:
        responses = await embed_each(client, texts)
        one_batch = EmbeddingResponse.model_validate(
            (await client.post("/v1/embeddings", json={"input": texts})).json()).matrix()
    served = np.stack([EmbeddingResponse.model_validate(r.json()).matrix()[0] for r in responses])
    assert (served * alone).sum(1).min() >= 0.99999
    assert (one_batch * alone).sum(1).min() >= 0.99999
    np.testing.assert_allclose(served, alone, atol=2e-5)


async def test_workers_run_batches_at_once() -> None:
    backend = SlowBackend(delay_s=0.05)
    app = create_app(settings(concurrent_batches=2, max_wait_ms=5), backend=backend)
    async with running(app) as client:
        backend.forward_calls.clear()
        texts = [f"phrase number {i}" for i in range(60)]
        responses = await embed_each(client, texts)
    assert all(r.status_code == 200 for r in responses)
    assert sum(backend.forward_calls) == 60
    assert backend.most_running == 2
    for text, response in zip(texts, responses, strict=True):
        expected = backend.forward(backend.tokenize([text]))[0]
        np.testing.assert_array_equal(
            EmbeddingResponse.model_validate(response.json()).matrix()[0], expected)


async def test_a_request_split_between_workers_keeps_its_order() -> None:
    """50 texts, two workers: each takes at most its share (25), and the answer is in order."""
    backend = SlowBackend(delay_s=0.05)
    engine = BatchingEngine(backend, settings(concurrent_batches=2, max_wait_ms=0))
    texts = [f"text {i}" for i in range(50)]
    answer = asyncio.ensure_future(engine.embed(texts))
    await asyncio.sleep(0)  # every text queued before the workers start: no race with them
    engine.start()
    try:
        embedded = await answer
    finally:
        await asyncio.to_thread(engine.stop)
    assert sorted(backend.forward_calls) == [25, 25]
    assert backend.most_running == 2
    expected = backend.features(backend.tokenize(texts))
    np.testing.assert_array_equal(np.stack([e.features for e in embedded]), expected)


async def test_stop_ends_every_worker() -> None:
    engine = BatchingEngine(SlowBackend(delay_s=0.0), settings(concurrent_batches=3))
    others = set(threading.enumerate())
    engine.start()
    workers = set(threading.enumerate()) - others
    assert len(workers) == 3
    assert len(await engine.embed(["a", "b", "c"])) == 3
    await asyncio.to_thread(engine.stop)
    assert not [t for t in workers if t.is_alive()]


async def test_texts_a_batch_had_no_room_for_go_to_any_worker() -> None:
    """Two workers; the first takes a short and a long text, and the token budget leaves the
    long one for later. While it runs the short one (slowly), the other worker runs the third
    text and waits for more: the long text must not wait behind it."""

    class SlowOnShort(SlowBackend):
        def features(self, batch: list[Tokens]) -> np.ndarray:
            self.delay_s = 0.3 if batch[0].ids == short.ids else 0.01
            return super().features(batch)

    backend = SlowOnShort()
    [short] = backend.tokenize(["short"])
    long = " ".join(f"word{i}" for i in range(10))  # 2 x 10 tokens > the budget of 16
    engine = BatchingEngine(backend, settings(concurrent_batches=2, max_batch_size=8,
                                              max_batch_tokens=16, max_wait_ms=0))
    answer = asyncio.ensure_future(engine.embed(["short", long, "third"]))
    await asyncio.sleep(0)
    engine.start()
    try:
        assert len(await asyncio.wait_for(answer, 5)) == 3
    finally:
        await asyncio.to_thread(engine.stop)
    assert backend.forward_calls == [1, 1, 1]
