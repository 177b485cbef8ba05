"""A deterministic stand-in model: hash-seeded vectors, whitespace tokens, no torch.

Only for API-shape and plumbing tests. Claims about the real model are tested with the real one.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from services.embedder.backends.base import ModelInfo, SentenceFromFeatures, Tokens


class FakeBackend(SentenceFromFeatures):
    def __init__(self, dimension: int = 16, max_tokens: int = 32) -> None:
        self.info = ModelInfo(model_id="fake-embedder", aliases=frozenset({"fake-embedder"}),
                              dimension=dimension, max_tokens=max_tokens, device="cpu",
                              dtype="float32", lowercase=False, backend="fake",
                              identity="fake-embedder@0:fp32")
        self.forward_calls: list[int] = []  # batch sizes, so tests can see the batching
        self._vocab: dict[str, int] = {}
        self._vocab_lock = threading.Lock()  # the engine's workers tokenize at once

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        out = []
        for text in texts:
            with self._vocab_lock:
                ids = [self._vocab.setdefault(w, len(self._vocab) + 1) for w in text.split()]
            limit = self.info.max_tokens
            out.append(Tokens(ids=ids[:limit], truncated=len(ids) > limit))
        return out

    def features(self, batch: list[Tokens]) -> np.ndarray:
        self.forward_calls.append(len(batch))
        rows = []
        for tokens in batch:
            seed = int.from_bytes(hashlib.blake2b(str(tokens.ids).encode(), digest_size=8).digest(),
                                  "little")
            halves = np.random.default_rng(seed).standard_normal((2, self.info.dimension))
            rows.append((halves / np.linalg.norm(halves, axis=1, keepdims=True)).ravel())
        return np.asarray(rows, dtype=np.float32).reshape(len(batch), self.info.feature_dimension)
