"""Redis down or hung never fails or stalls a request, and is used again once it is back.

Each test runs a real redis-server of its own and stops, freezes and restarts it.
"""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest
import redis
from prometheus_client import REGISTRY

from services.embedder.app import create_app
from shared.settings import EmbedderSettings
from tests.conftest import RedisProcess, metric, running, settings
from tests.embedder.fakes import SlowBackend

pytestmark = pytest.mark.anyio


def config(server: RedisProcess, namespace: str) -> EmbedderSettings:
    return settings(redis_url=server.url, cache_namespace=namespace, redis_timeout_ms=50,
                    redis_retry_after_s=0.3)


def get_errors() -> float:
    """Failed Redis lookups so far (process-wide: tests compare before and after)."""
    return REGISTRY.get_sample_value("polyhead_embedder_redis_errors_total", {"op": "get"}) or 0.0


async def test_redis_outage_and_recovery(private_redis: RedisProcess, namespace: str) -> None:
    backend = SlowBackend(delay_s=0)
    async with running(create_app(config(private_redis, namespace), backend=backend)) as client:
        assert (await client.post("/v1/embeddings", json={"input": "before"})).status_code == 200
        private_redis.stop()
        failed_gets, start = get_errors(), time.perf_counter()
        for i in range(20):
            response = await client.post("/v1/embeddings", json={"input": f"during {i}"})
            assert response.status_code == 200
        # One try (and its short timeout) per pause of redis_retry_after_s, not one a request.
        tries = get_errors() - failed_gets
        assert 1 <= tries <= 1 + (time.perf_counter() - start) / 0.3, tries
        assert (await client.get("/ready")).json()["checks"]["redis"] == "unavailable"
        cached = await client.post("/v1/embeddings", json={"input": "before"})
        assert cached.json()["data"][0]["cached"]  # the LRU still serves

        private_redis.start()  # an empty Redis on the same port, as after a restart
        await anyio.sleep(0.4)  # the pause after the last failure ends (the loop keeps running)
        for _ in range(50):
            await client.post("/v1/embeddings", json={"input": "after"})
            keys = redis.Redis.from_url(private_redis.url).keys(f"{namespace}:*")
            if keys:
                break
            await anyio.sleep(0.05)
        assert keys, "writes to Redis did not resume"
        assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
        errors = metric((await client.get("/metrics")).text,
                        "polyhead_embedder_redis_errors_total", op="get")
        assert errors is not None and errors >= failed_gets + tries  # /metrics shows the outage


async def test_hung_redis_costs_at_most_a_timeout(private_redis: RedisProcess,
                                                  namespace: str) -> None:
    backend = SlowBackend(delay_s=0)
    async with running(create_app(config(private_redis, namespace), backend=backend)) as client:
        await client.post("/v1/embeddings", json={"input": "warm the connection"})
        pid = int(redis.Redis.from_url(private_redis.url).info("server")["process_id"])
        os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
        failed_gets, began = get_errors(), time.perf_counter()
        try:
            timings = []
            for i in range(10):
                start = time.perf_counter()
                response = await client.post("/v1/embeddings", json={"input": f"hung {i}"})
                timings.append(time.perf_counter() - start)
                assert response.status_code == 200
        finally:
            os.kill(pid, signal.SIGCONT)
    # A hung Redis costs a request its 50 ms timeout at most (1 s: room for a loaded machine;
    # without the timeout it would be the socket's, minutes), and only one request per pause.
    assert max(timings) < 1.0, timings
    tries = get_errors() - failed_gets
    assert 1 <= tries <= 1 + (time.perf_counter() - began) / 0.3 and tries < 10, tries


async def test_concurrent_requests_to_a_hung_redis_share_one_timeout(
        private_redis: RedisProcess, namespace: str) -> None:
    backend = SlowBackend(delay_s=0)
    async with running(create_app(config(private_redis, namespace), backend=backend)) as client:
        await client.post("/v1/embeddings", json={"input": "warm the connection"})
        pid = int(redis.Redis.from_url(private_redis.url).info("server")["process_id"])
        statuses: list[int] = []

        async def embed(text: str) -> None:
            statuses.append((await client.post("/v1/embeddings", json={"input": text})).status_code)

        failed_gets = get_errors()
        os.kill(pid, signal.SIGSTOP)
        try:
            start = time.perf_counter()
            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(embed, f"hung together {i}")
            elapsed = time.perf_counter() - start
        finally:
            os.kill(pid, signal.SIGCONT)
    assert statuses == [200] * 20
    assert elapsed < 0.5, elapsed
    assert get_errors() == failed_gets + 1  # one lookup for all: one timeout, one connection


async def test_unreachable_redis_at_start_is_not_fatal(namespace: str) -> None:
    dead = settings(redis_url="redis://127.0.0.1:1/0", cache_namespace=namespace)
    async with running(create_app(dead, backend=SlowBackend(delay_s=0))) as client:
        response = await client.post("/v1/embeddings", json={"input": "still works"})
        assert response.status_code == 200
