"""The phrase cache: an in-process LRU in front of Redis, shared by all embedder replicas.

Keys are the embedding identity (model, revision, precision: ``shared.embedding_identity``)
plus the normalised text (hashed for Redis), so replicas of other backends or precisions
sharing one Redis never answer each other's phrases; the LRU belongs to one process, which
serves one identity. An entry is a text's whole features row, [sentence | lexical]
(:class:`~services.embedder.engine.Embedded`): one entry serves ``/v1/embeddings`` and
``/v1/features`` alike, at twice the bytes of a sentence vector (3,072 for MiniLM's 384-d).
Redis keys name the row's layout (:data:`ROW`), so entries of another layout (sentence vectors
alone, written before the lexical half) are never read as features. Values are compact bytes: a
5-byte header (token count, truncated flag) then little-endian float32; a value of any other
length is a miss (computed again and overwritten), never an error. Lookups of concurrent
requests share one MGET (those made while one is out go in the next), and writes pile up for one
pipeline: per request, the event loop's Redis work was a quarter of its CPU. Redis is a bonus,
never a dependency: every Redis call is bounded by a short timeout, and after a failure Redis
is left alone for ``redis_retry_after_s`` so a dead or slow Redis costs at most one timeout
per pause, then is used again when it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from typing import cast

import numpy as np
from cachetools import LRUCache
from redis.asyncio import Redis

from services.embedder import metrics
from services.embedder.engine import Embedded
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
_HEADER = struct.Struct("<I?")
_MAX_PENDING_WRITES = 10_000
ROW = "sentence+lexical"  # what a value holds; in the Redis key


def pack(item: Embedded) -> bytes:
    return _HEADER.pack(item.tokens, item.truncated) + item.features.astype("<f4").tobytes()


def unpack(raw: bytes, row_floats: int) -> Embedded:
    """The entry ``pack`` wrote of a row of ``row_floats``; ValueError for anything else."""
    if len(raw) != _HEADER.size + 4 * row_floats:
        raise ValueError(f"not a cache entry of {row_floats} floats ({len(raw)} bytes)")
    tokens, truncated = _HEADER.unpack_from(raw)
    features = np.frombuffer(raw, dtype="<f4", offset=_HEADER.size).astype(np.float32)
    features.flags.writeable = False
    return Embedded(features, tokens, truncated)


class RedisTier:
    """``row_floats``: the length of every entry's features row (twice the model's dimension)."""

    def __init__(self, client: Redis, identity: str, row_floats: int,
                 settings: EmbedderSettings) -> None:
        self.client = client
        self._row_floats = row_floats
        self._prefix = f"{settings.cache_namespace}:{identity}:{ROW}:"
        self._ttl = settings.redis_ttl_s
        self._timeout = settings.redis_timeout_ms / 1000
        self._pause_s = settings.redis_retry_after_s
        self._down_until = 0.0
        self._pending: dict[str, bytes] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._lookups: list[tuple[list[str], asyncio.Future[dict[str, Embedded]]]] = []
        self._reader: asyncio.Task[None] | None = None

    def key(self, text: str) -> str:
        return self._prefix + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    @property
    def healthy(self) -> bool:
        return time.monotonic() >= self._down_until

    async def get_many(self, texts: list[str]) -> dict[str, Embedded]:
        """The entries found for ``texts``. Lookups made while an MGET is out wait for the
        next one, together: one round trip for a whole cohort of concurrent requests."""
        if not texts or not self.healthy:
            return {}
        waiter: asyncio.Future[dict[str, Embedded]] = asyncio.get_running_loop().create_future()
        self._lookups.append((texts, waiter))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        return await waiter

    async def _read(self) -> None:
        lookups: list[tuple[list[str], asyncio.Future[dict[str, Embedded]]]] = []
        try:
            while self._lookups:
                lookups, self._lookups = self._lookups, []
                wanted = list(dict.fromkeys(t for texts, _ in lookups for t in texts))
                found = await self._mget(wanted) if self.healthy else {}
                for texts, waiter in lookups:
                    if not waiter.done():  # done: its request went away
                        waiter.set_result({t: found[t] for t in texts if t in found})
                lookups = []
        finally:  # cancelled (shutting down): whoever still waits is served without Redis
            self._reader = None
            lookups, self._lookups = lookups + self._lookups, []
            for _, waiter in lookups:
                if not waiter.done():
                    waiter.set_result({})

    async def _mget(self, texts: list[str]) -> dict[str, Embedded]:
        try:
            async with asyncio.timeout(self._timeout):
                raws = await self.client.mget([self.key(t) for t in texts])
        except Exception as exc:  # noqa: BLE001 - down, slow or refusing: serve without Redis
            self._pause("get", exc)
            return {}
        # The client does not decode responses: values are the bytes ``pack`` wrote, or else a
        # corrupt entry, which is a miss: computed again, and overwritten.
        found: dict[str, Embedded] = {}
        for text, raw in zip(texts, raws, strict=True):
            if raw is not None:
                try:
                    found[text] = unpack(cast(bytes, raw), self._row_floats)
                except ValueError:
                    metrics.REDIS_ERRORS.labels("decode").inc()
        return found

    def put_many(self, items: dict[str, Embedded]) -> None:
        """Queue writes; one pipeline flushes whatever piled up (off the request path)."""
        if not items or not self.healthy or len(self._pending) >= _MAX_PENDING_WRITES:
            return
        for text, item in items.items():
            self._pending[self.key(text)] = pack(item)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                pipe = self.client.pipeline(transaction=False)
                for key, value in batch.items():
                    pipe.set(key, value, ex=self._ttl)
                async with asyncio.timeout(self._timeout * 4):
                    await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - any failure: drop the writes, pause Redis
            self._pending.clear()
            self._pause("set", exc)
        finally:
            self._flusher = None

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.wait([self._flusher], timeout=1.0)
        await self.client.aclose()

    def _pause(self, op: str, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.labels(op).inc()
        if self.healthy:
            log.warning("redis unavailable; serving without it",
                        extra={"op": op, "error": type(exc).__name__, "pause_s": self._pause_s})
        self._down_until = time.monotonic() + self._pause_s


class PhraseCache:
    """LRU first, then Redis for the LRU's misses; found Redis entries are promoted."""

    def __init__(self, lru_size: int, redis: RedisTier | None) -> None:
        self.lru: LRUCache[str, Embedded] | None = LRUCache(lru_size) if lru_size else None
        self.redis = redis
        self._hits = {"lru": [0, 0], "redis": [0, 0]}  # tier -> [hits, lookups]

    async def get_many(self, texts: list[str]) -> tuple[dict[str, Embedded], dict[str, Embedded]]:
        """(found in LRU, found in Redis) for ``texts`` (distinct, normalised)."""
        from_lru: dict[str, Embedded] = {}
        missing = texts
        if self.lru is not None:
            missing = []
            for text in texts:
                hit = self.lru.get(text)
                if hit is None:
                    missing.append(text)
                else:
                    from_lru[text] = hit
            self._count("lru", len(from_lru), len(texts))
        from_redis: dict[str, Embedded] = {}
        if self.redis is not None and missing and self.redis.healthy:
            from_redis = await self.redis.get_many(missing)
            self._count("redis", len(from_redis), len(missing))
            if self.lru is not None:
                self.lru.update(from_redis)
        return from_lru, from_redis

    def put_many(self, items: dict[str, Embedded]) -> None:
        if self.lru is not None:
            self.lru.update(items)
        if self.redis is not None:
            self.redis.put_many(items)

    def _count(self, tier: str, hits: int, lookups: int) -> None:
        if not lookups:
            return
        metrics.CACHE_LOOKUPS.labels(tier, "hit").inc(hits)
        metrics.CACHE_LOOKUPS.labels(tier, "miss").inc(lookups - hits)
        totals = self._hits[tier]
        totals[0] += hits
        totals[1] += lookups
        metrics.CACHE_HIT_RATIO.labels(tier).set(totals[0] / totals[1])
