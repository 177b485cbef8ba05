"""The shared client against the real embedder app (fake model), in-process."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from asgi_correlation_id import correlation_id
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Receive, Scope, Send

from services.embedder.app import create_app
from services.embedder.backends.fake import FakeBackend
from shared.clients import AsyncEmbedderClient, EmbedderClient
from shared.errors import InvalidInput, Unavailable
from shared.settings import EmbedderClientSettings
from tests.conftest import ServerThread, free_port, settings

pytestmark = pytest.mark.anyio


class SeenHeaders:
    """Wraps the app to record the request headers it received."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.request_ids: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.request_ids.append(headers.get(b"x-request-id", b"").decode())
        await self.app(scope, receive, send)


async def test_embeds_in_chunks_and_forwards_the_request_id() -> None:
    app = create_app(settings(), backend=FakeBackend())
    async with LifespanManager(app) as manager:
        seen = SeenHeaders(manager.app)
        client = AsyncEmbedderClient(EmbedderClientSettings(url="http://e", batch_size=2),
                                     transport=httpx.ASGITransport(app=seen))
        async with client:
            token = correlation_id.set("trace-7")
            try:
                result = await client.embed(["a b", "c", "d e f", "a b", "g"])
            finally:
                correlation_id.reset(token)
            models = await client.models()
            with pytest.raises(InvalidInput, match="empty or only whitespace"):
                await client.embed(["fine", " "])
    assert result.vectors.shape == (5, 16) and result.vectors.dtype == np.float32
    np.testing.assert_array_equal(result.vectors[0], result.vectors[3])
    assert result.cached == [False, False, False, True, False]  # "a b" again, in chunk 2
    assert seen.request_ids[:3] == ["trace-7"] * 3  # three chunks, one id
    assert models.data[0].id == "fake-embedder"


async def test_features_split_into_sentence_vectors_and_rows_sync_and_async() -> None:
    """``features``: the sentence vectors (what ``embed`` answers) and the whole rows, chunked
    like ``embed``; the blocking client answers the same over real HTTP."""
    backend = FakeBackend()
    texts = ["a b", "c", "d e f", "a b", "g"]
    app = create_app(settings(), backend=backend)
    async with LifespanManager(app) as manager:
        client = AsyncEmbedderClient(EmbedderClientSettings(url="http://e", batch_size=2),
                                     transport=httpx.ASGITransport(app=manager.app))
        async with client:
            embedded = await client.embed(texts)
            result = await client.features(texts)
    assert result.features is not None and result.features.shape == (5, 32)
    np.testing.assert_array_equal(result.vectors, embedded.vectors)
    np.testing.assert_array_equal(result.features[:, :16], result.vectors)
    assert result.head_rows is result.features and embedded.head_rows is embedded.vectors
    assert result.cached == [True] * 5 and result.identity == embedded.identity
    with ServerThread(create_app(settings(), backend=backend)) as server, \
            EmbedderClient(EmbedderClientSettings(url=server.url, batch_size=2)) as sync_client:
        again = sync_client.features(texts)
    assert again.features is not None
    np.testing.assert_array_equal(again.features, result.features)


async def test_unreachable_embedder_is_a_fast_unavailable() -> None:
    config = EmbedderClientSettings(url=f"http://127.0.0.1:{free_port()}", retries=1,
                                    connect_timeout_s=0.5)
    async with AsyncEmbedderClient(config) as client:
        with pytest.raises(Unavailable, match="unreachable"):
            await client.embed(["hello"])
        with pytest.raises(Unavailable, match="unreachable"):
            await client.features(["hello"])
    with EmbedderClient(config) as sync_client, pytest.raises(Unavailable):
        sync_client.features(["hello"])


async def test_not_ready_embedder_is_retried_then_unavailable() -> None:
    app = create_app(settings(model="/nonexistent"))
    # The start-up imports transformers before it finds no model: seconds on a cold process.
    async with LifespanManager(app, startup_timeout=60) as manager:
        client = AsyncEmbedderClient(EmbedderClientSettings(url="http://e", retries=1),
                                     transport=httpx.ASGITransport(app=manager.app))
        async with client:
            with pytest.raises(Unavailable, match="overloaded or not ready"):
                await client.embed(["hello"])


def test_retry_after_parsing_never_crashes() -> None:
    from shared.clients.embedder import _retry_after_s
    assert _retry_after_s("1") == 1.0
    assert _retry_after_s("30") == 2.0  # capped: a client does not sleep for minutes
    assert _retry_after_s("Wed, 21 Oct 2026 07:28:00 GMT") == 1.0
