"""The classifier's features rows: repeats skip the embedder, a row never serves another
embedding identity, a new identity empties the cache, concurrent misses share one embedder
call while a lone request goes at once, and a refused text fails only its own request."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from services.classifier.features import FeatureRows
from services.embedder.app import create_app
from services.embedder.backends.base import Tokens
from services.embedder.backends.fake import FakeBackend
from shared.clients.embedder import AsyncEmbedderClient
from shared.errors import InvalidInput
from shared.settings import EmbedderClientSettings
from tests.conftest import ServerThread, settings

pytestmark = pytest.mark.anyio


class Recording(httpx.AsyncHTTPTransport):
    """The real transport; it notes the texts of each call it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(json.loads(request.content)["input"])
        return await super().handle_async_request(request)


class Revised(FakeBackend):
    """The fake model at another revision: another identity, other vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.info = dataclasses.replace(self.info, identity="fake-embedder@1:fp32")

    def features(self, batch: list[Tokens]) -> np.ndarray:
        return np.roll(super().features(batch), 1, axis=1)


@pytest.fixture(scope="module")
def embedders() -> Iterator[tuple[str, str]]:
    """Two embedders: the fake model, and the same at another revision."""
    short = settings(backend="fake", max_chars_per_text=40)
    with ServerThread(create_app(short, backend=FakeBackend())) as first, \
            ServerThread(create_app(short, backend=Revised())) as revised:
        yield first.url, revised.url


def client(url: str, transport: Recording) -> AsyncEmbedderClient:
    return AsyncEmbedderClient(EmbedderClientSettings(url=url, retries=0), transport=transport)


async def test_repeats_skip_the_embedder_and_get_the_same_rows(
        embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as embedder:
        rows = FeatureRows(embedder, size=100, confirm_s=60)
        first = await rows.features(["where is my parcel", "hello"])
        again = await rows.features(["hello", "where is my parcel", "hello"])
        fresh = await embedder.features(["hello", "where is my parcel", "hello"])
    assert sent.calls[:1] == [["where is my parcel", "hello"]] and len(sent.calls) == 2
    assert first.cached == [False, False] and again.cached == [True, True, True]
    assert again.identity == fresh.identity == "fake-embedder@0:fp32"
    assert again.features is not None and fresh.features is not None
    np.testing.assert_array_equal(again.features, fresh.features)
    np.testing.assert_array_equal(again.vectors, fresh.vectors)


async def test_no_cache_sends_every_request(embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as embedder:
        rows = FeatureRows(embedder, size=0, confirm_s=60)
        for _ in range(3):
            await rows.features(["hello"])
    assert sent.calls == [["hello"]] * 3


async def test_a_new_identity_is_seen_within_the_confirmation_time_and_empties_the_cache(
        embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as before, client(embedders[1], sent) as after:
        rows = FeatureRows(before, size=100, confirm_s=0.2)
        await rows.features(["hello"])
        rows.embedder = after  # the embedder behind the URL is redeployed at a new revision
        while (answer := await rows.features(["hello"])).identity != "fake-embedder@1:fp32":
            assert answer.identity == "fake-embedder@0:fp32" and answer.cached == [True]
            await asyncio.sleep(0.05)
        expected = await after.features(["hello"])
    assert expected.features is not None and answer.features is not None
    np.testing.assert_array_equal(answer.features, expected.features)
    assert rows.cached_rows() == 1  # only the new revision's


async def test_a_request_never_mixes_rows_of_two_identities(
        embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as before, client(embedders[1], sent) as after:
        rows = FeatureRows(before, size=100, confirm_s=60)
        await rows.features(["hello"])
        rows.embedder = after
        # "hello" is cached at the old revision, "bye" is not: the embedder's answer for it
        # has the new identity, so both are taken from the embedder.
        answer = await rows.features(["hello", "bye"])
        expected = await after.features(["hello", "bye"])
    assert answer.identity == "fake-embedder@1:fp32"
    assert sent.calls[1:] == [["bye"], ["hello", "bye"], ["hello", "bye"]]
    assert expected.features is not None and answer.features is not None
    np.testing.assert_array_equal(answer.features, expected.features)


async def test_concurrent_misses_share_one_call_and_a_lone_request_goes_at_once(
        embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as embedder:
        rows = FeatureRows(embedder, size=0, confirm_s=60)
        await rows.features(["alone"])
        assert sent.calls == [["alone"]]  # nothing was out: sent at once, on its own
        texts = [f"text {i}" for i in range(8)]
        answers = await asyncio.gather(*(rows.features([t, "shared"]) for t in texts))
        separately = await embedder.features(["text 5", "shared"])
    # The first went alone; the seven that came while it was out went together.
    assert sent.calls[1:3] == [["text 0", "shared"],
                               ["text 1", "shared", *(f"text {i}" for i in range(2, 8))]]
    assert separately.features is not None and answers[5].features is not None
    np.testing.assert_array_equal(answers[5].features, separately.features)


async def test_a_refused_text_fails_only_its_own_request(embedders: tuple[str, str]) -> None:
    sent = Recording()
    async with client(embedders[0], sent) as embedder:
        rows = FeatureRows(embedder, size=0, confirm_s=60)
        results = await asyncio.gather(
            rows.features(["first"]), rows.features(["fine"]),
            rows.features(["x" * 41]),  # over the embedder's 40 characters
            rows.features(["also fine"]), return_exceptions=True)
    assert isinstance(results[2], InvalidInput)
    assert all(not isinstance(r, Exception) for i, r in enumerate(results) if i != 2), results
