"""Locust scenario for the embedder: single phrases and small batches on ``/v1/embeddings``.

    locust -f loadtests/locustfile.py EmbedderUser --host http://127.0.0.1:8001 \\
        --headless -u 20 -r 5 -t 1m

Bodies are built with the shared request contract and every answer is validated against the
response contract, so a load test also catches a server that answers fast but wrong. Phrases
come from ``phrases.py`` (cache-realistic mix; ``LOCUST_REPEAT_RATIO``, ``LOCUST_ZIPF_S``...).
Other settings: ``LOCUST_BATCH_MIN``/``LOCUST_BATCH_MAX`` (texts per batch request, 2/16),
``LOCUST_ENCODING`` (float|base64), ``LOCUST_MAX_WAIT_S`` (think time per user, 0),
``LOCUST_SEED`` (reproducible draws per user).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
from typing import Any

import numpy as np
from locust import FastHttpUser, between, events, task
from phrases import PhraseConfig, PhraseGenerator, load_corpus  # locust puts this dir on sys.path
from pydantic import ValidationError

from shared.contracts import EmbeddingRequest, EmbeddingResponse

log = logging.getLogger("loadtests")

CONFIG = PhraseConfig.from_env()
CORPUS = load_corpus(CONFIG.csv_path)  # read once per process, shared by its users
BATCH_MIN = int(os.environ.get("LOCUST_BATCH_MIN", "2"))
BATCH_MAX = int(os.environ.get("LOCUST_BATCH_MAX", "16"))
ENCODING = os.environ.get("LOCUST_ENCODING", "float")
SEED = os.environ.get("LOCUST_SEED")
EmbeddingRequest(input="check the settings", encoding_format=ENCODING)
if not 1 <= BATCH_MIN <= BATCH_MAX:
    raise ValueError(f"need 1 <= LOCUST_BATCH_MIN <= LOCUST_BATCH_MAX: {BATCH_MIN}..{BATCH_MAX}")
_user_ids = itertools.count()


class CacheTally:
    """How many returned vectors were cache hits (per Locust process), printed at the end."""

    def __init__(self) -> None:
        self.texts = self.cached = 0
        self._lock = threading.Lock()

    def add(self, texts: int, cached: int) -> None:
        with self._lock:
            self.texts += texts
            self.cached += cached


TALLY = CacheTally()


class EmbedderUser(FastHttpUser):
    """One client: mostly single-phrase requests (the classifier's hot path), some batches."""

    wait_time = between(0.0, float(os.environ.get("LOCUST_MAX_WAIT_S", "0")))
    dimension: int | None = None  # first seen; every later vector must match

    def on_start(self) -> None:
        rng = random.Random(f"{SEED}-{next(_user_ids)}") if SEED is not None else random.Random()
        self.phrases = PhraseGenerator(CORPUS, CONFIG, rng)

    @task(3)
    def single(self) -> None:
        self._embed(self.phrases.next(), name="/v1/embeddings [1]")

    @task(1)
    def batch(self) -> None:
        n = self.phrases.rng.randint(BATCH_MIN, BATCH_MAX)
        self._embed(self.phrases.batch(n), name="/v1/embeddings [batch]")

    def _embed(self, texts: str | list[str], name: str) -> None:
        body = EmbeddingRequest(input=texts, encoding_format=ENCODING)
        expected = len(body.texts())
        with self.client.post("/v1/embeddings", json=body.model_dump(exclude_none=True),
                              name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            problem = self._check(response.content, expected)
            if problem:
                response.failure(problem)

    def _check(self, content: Any, expected: int) -> str | None:
        """None if the answer honours the contract, else what is wrong with it."""
        try:
            answer = EmbeddingResponse.model_validate_json(content)
        except ValidationError as exc:
            return f"response breaks the contract: {exc.errors()[0]['msg']}"
        if sorted(d.index for d in answer.data) != list(range(expected)):
            return f"expected indices 0..{expected - 1}, got {[d.index for d in answer.data]}"
        matrix = answer.matrix()
        if EmbedderUser.dimension is None:
            EmbedderUser.dimension = matrix.shape[1]
        if matrix.shape[1] != EmbedderUser.dimension:
            return f"dimension {matrix.shape[1]}, earlier answers had {EmbedderUser.dimension}"
        if not np.isfinite(matrix).all():
            return "non-finite values in embeddings"
        TALLY.add(expected, sum(d.cached for d in answer.data))
        return None


@events.test_start.add_listener
def _describe(environment: Any, **_: Any) -> None:
    log.info("phrases: repeat_ratio=%s zipf_s=%s pool=%d corpus=%d batch=%d..%d encoding=%s",
             CONFIG.repeat_ratio, CONFIG.zipf_s, CONFIG.pool_size, len(CORPUS),
             BATCH_MIN, BATCH_MAX, ENCODING)


@events.test_stop.add_listener
def _report(environment: Any, **_: Any) -> None:
    if TALLY.texts:
        log.info("cache: %d of %d vectors served from cache (%.1f%%; repeat_ratio %.0f%%)",
                 TALLY.cached, TALLY.texts, 100 * TALLY.cached / TALLY.texts,
                 100 * CONFIG.repeat_ratio)
