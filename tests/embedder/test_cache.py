"""The phrase cache: LRU hits, Redis hits across replicas, only misses computed (real Redis)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import httpx
import numpy as np
import pytest
import redis
from prometheus_client import REGISTRY

from services.embedder.app import create_app
from services.embedder.backends import Backend
from services.embedder.cache import RedisTier, pack, unpack
from services.embedder.engine import Embedded
from shared.contracts import EmbeddingResponse
from shared.contracts.embeddings import FeaturesResponse
from tests.conftest import RedisProcess, running, settings
from tests.embedder.fakes import SlowBackend

pytestmark = pytest.mark.anyio


def hits(tier: str) -> float:
    """Process-wide counter (metrics are global): tests compare before and after."""
    labels = {"tier": tier, "result": "hit"}
    return REGISTRY.get_sample_value("polyhead_embedder_cache_lookups_total", labels) or 0.0


def parse(response: httpx.Response) -> EmbeddingResponse:
    return EmbeddingResponse.model_validate(response.json())


def test_values_are_compact_bytes_and_round_trip() -> None:
    """One entry holds a text's whole features row: [sentence | lexical]."""
    row = np.linspace(-1, 1, 768, dtype=np.float32)
    raw = pack(Embedded(row, tokens=7, truncated=True))
    assert len(raw) == 5 + 768 * 4
    back = unpack(raw, 768)
    np.testing.assert_array_equal(back.features, row)
    np.testing.assert_array_equal(back.sentence, row[:384])
    assert (back.tokens, back.truncated) == (7, True)


async def test_lru_hit_costs_no_compute() -> None:
    backend = SlowBackend(delay_s=0)
    lru_hits = hits("lru")
    async with running(create_app(settings(), backend=backend)) as client:
        first = parse(await client.post("/v1/embeddings", json={"input": "track my order"}))
        calls = len(backend.forward_calls)
        second = parse(await client.post("/v1/embeddings", json={"input": "track my order"}))
        assert len(backend.forward_calls) == calls
    assert (first.data[0].cached, second.data[0].cached) == (False, True)
    np.testing.assert_array_equal(first.matrix(), second.matrix())
    assert second.usage.total_tokens == first.usage.total_tokens == 3
    assert hits("lru") == lru_hits + 1


async def test_only_the_misses_of_a_request_are_computed_once_each() -> None:
    backend = SlowBackend(delay_s=0)
    async with running(create_app(settings(), backend=backend)) as client:
        await client.post("/v1/embeddings", json={"input": ["known one", "known two"]})
        backend.forward_calls.clear()
        body = parse(await client.post("/v1/embeddings", json={
            "input": ["new a", "known one", "new b", "new a", "known  two "]}))
    assert sum(backend.forward_calls) == 2  # "new a" (twice in the request) and "new b"
    assert [d.cached for d in body.data] == [False, True, False, False, True]
    np.testing.assert_array_equal(body.matrix()[0], body.matrix()[3])


async def test_redis_shares_vectors_between_replicas(redis_url: str, namespace: str) -> None:
    config = settings(redis_url=redis_url, cache_namespace=namespace, redis_ttl_s=600)
    first_backend, second_backend = SlowBackend(delay_s=0), SlowBackend(delay_s=0)
    async with running(create_app(config, backend=first_backend)) as replica_a:
        computed = parse(await replica_a.post("/v1/embeddings",
                                              json={"input": ["cancel my card", "hi there"]}))
    keys = redis.Redis.from_url(redis_url).keys(f"{namespace}:*")
    assert len(keys) == 2
    ttl = redis.Redis.from_url(redis_url).ttl(keys[0])
    assert 0 < ttl <= 600
    redis_hits = hits("redis")
    async with running(create_app(config, backend=second_backend)) as replica_b:
        second_backend.forward_calls.clear()
        served = parse(await replica_b.post("/v1/embeddings",
                                            json={"input": ["hi there", "cancel my card"]}))
        again = parse(await replica_b.post("/v1/embeddings", json={"input": "hi there"}))
    assert second_backend.forward_calls == []
    assert [d.cached for d in served.data] == [True, True]
    np.testing.assert_array_equal(served.matrix()[::-1], computed.matrix())
    assert again.data[0].cached  # promoted into replica B's LRU
    assert hits("redis") == redis_hits + 2
    redis.Redis.from_url(redis_url).delete(*keys)


async def test_a_corrupt_redis_entry_is_computed_again_and_overwritten(
        redis_url: str, namespace: str) -> None:
    config = settings(redis_url=redis_url, cache_namespace=namespace, redis_ttl_s=600)
    async with running(create_app(config, backend=SlowBackend(delay_s=0))) as replica_a:
        computed = parse(await replica_a.post("/v1/embeddings", json={"input": ["a", "b"]}))
    store = redis.Redis.from_url(redis_url)
    keys = sorted(store.keys(f"{namespace}:*"))
    good = store.get(keys[0])
    assert isinstance(good, bytes)
    store.set(keys[0], b"not an entry")
    store.set(keys[1], good + b"\0\0\0\0")  # one float too many
    backend = SlowBackend(delay_s=0)
    async with running(create_app(config, backend=backend)) as replica_b:
        served = parse(await replica_b.post("/v1/embeddings", json={"input": ["a", "b"]}))
        for _ in range(50):  # the rewrite is queued off the request path
            if all(len(store.get(k) or b"") == len(good) for k in keys):
                break
            await asyncio.sleep(0.02)
    assert sum(backend.forward_calls) == 2 and not any(d.cached for d in served.data)
    np.testing.assert_array_equal(served.matrix(), computed.matrix())
    assert [len(store.get(k) or b"") for k in keys] == [len(good)] * 2
    store.delete(*keys)


async def test_redis_never_answers_with_another_identity(redis_url: str, namespace: str) -> None:
    """An int8 replica and an fp32 replica of one model share Redis, never each other's vectors."""
    config = settings(redis_url=redis_url, cache_namespace=namespace, redis_ttl_s=600)
    fp32, int8 = SlowBackend(delay_s=0), SlowBackend(delay_s=0)
    int8.info = replace(int8.info, identity="fake-embedder@0:int8")
    async with running(create_app(config, backend=fp32)) as fp32_replica:
        body = parse(await fp32_replica.post("/v1/embeddings", json={"input": "cancel my card"}))
        assert body.embedding_identity == "fake-embedder@0:fp32"
    async with running(create_app(config, backend=int8)) as int8_replica:
        body = parse(await int8_replica.post("/v1/embeddings", json={"input": "cancel my card"}))
        models = (await int8_replica.get("/v1/models")).json()["data"][0]
    assert int8.forward_calls == [1] and not body.data[0].cached  # computed, not fp32's vector
    assert body.embedding_identity == models["identity"] == "fake-embedder@0:int8"
    keys = redis.Redis.from_url(redis_url, decode_responses=True).keys(f"{namespace}:*")
    assert sorted(str(k).split(":")[-3] for k in keys) == ["fp32", "int8"]
    redis.Redis.from_url(redis_url).delete(*keys)


async def test_one_entry_serves_both_routes_and_older_entries_are_never_read(
        redis_url: str, namespace: str) -> None:
    """A text embedded once answers /v1/features from the cache (its sentence part is the
    embedding); an entry written before the lexical half (a sentence vector under the old key)
    is never read as features."""
    config = settings(redis_url=redis_url, cache_namespace=namespace, redis_ttl_s=600)
    backend = SlowBackend(delay_s=0)
    digest = hashlib.blake2b(b"older entry", digest_size=16).hexdigest()
    old_key = f"{namespace}:{backend.info.identity}:{digest}"  # the key before ROW was in it
    redis.Redis.from_url(redis_url).set(old_key, pack(Embedded(np.ones(16, np.float32), 2, False)))
    async with running(create_app(config, backend=backend)) as client:
        embedded = parse(await client.post("/v1/embeddings", json={"input": "cancel my card"}))
        features = FeaturesResponse.model_validate((await client.post(
            "/v1/features", json={"input": ["cancel my card", "older entry"]})).json())
    assert backend.forward_calls == [1, 1]  # "older entry" computed, not read
    assert [d.cached for d in features.data] == [True, False]
    np.testing.assert_array_equal(features.matrix()[0, :16], embedded.matrix()[0])
    assert features.matrix().shape == (2, 32) and features.dimension == 16
    keys = redis.Redis.from_url(redis_url).keys(f"{namespace}:*")
    redis.Redis.from_url(redis_url).delete(*keys)


def mget_calls(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))


async def test_concurrent_lookups_share_one_round_trip(private_redis: RedisProcess,
                                                      namespace: str) -> None:
    """A cohort of concurrent requests costs one MGET, each getting its own entries; a lookup
    whose request went away does not disturb the others."""
    from redis.asyncio import Redis

    tier = RedisTier(Redis.from_url(private_redis.url), "fake-embedder@0:fp32", 4,
                     settings(cache_namespace=namespace))
    rows = {f"text {i}": Embedded(np.full(4, i, np.float32), i, False) for i in range(6)}
    redis.Redis.from_url(private_redis.url).mset({tier.key(t): pack(e) for t, e in rows.items()})
    lookups = [[f"text {i}", f"text {i + 1}", "never stored"] for i in range(5)]
    before = mget_calls(private_redis.url)
    found = await asyncio.gather(*(tier.get_many(texts) for texts in lookups))
    assert mget_calls(private_redis.url) == before + 1
    for texts, entries in zip(lookups, found, strict=True):
        assert sorted(entries) == texts[:2]
        for text in texts[:2]:
            np.testing.assert_array_equal(entries[text].features, rows[text].features)

    gone = asyncio.create_task(tier.get_many(["text 1"]))
    kept = asyncio.create_task(tier.get_many(["text 2"]))
    await asyncio.sleep(0)  # both wait for the same MGET
    gone.cancel()
    assert list(await kept) == ["text 2"]
    await tier.close()


@pytest.mark.model
async def test_normalised_variants_share_one_entry_and_one_vector(real_backend: Backend) -> None:
    """all-MiniLM-L6-v2 is uncased: case and spacing variants are one phrase for the cache."""
    async with running(create_app(settings(), backend=real_backend)) as client:
        body = parse(await client.post("/v1/embeddings", json={
            "input": ["Where is my  parcel?", "where is my parcel?", "  WHERE IS MY PARCEL? "]}))
    assert [d.cached for d in body.data] == [False, False, False]  # one compute, three answers
    matrix = body.matrix()
    np.testing.assert_array_equal(matrix[0], matrix[1])
    np.testing.assert_array_equal(matrix[0], matrix[2])
    direct = real_backend.forward(real_backend.tokenize(["Where is my  parcel?"]))[0]
    assert float(direct @ matrix[0]) >= 0.99999
