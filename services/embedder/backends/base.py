"""The protocol every backend implements, and what it says about itself: the model's
:class:`ModelInfo`, a batch's :class:`Tokens`, and the :class:`Concurrency` it runs with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shared.settings import EmbedderSettings


@dataclass(frozen=True)
class ModelInfo:
    model_id: str          # the name answered in responses
    aliases: frozenset[str]  # names a request's ``model`` may use
    dimension: int
    max_tokens: int        # longer texts are truncated to this many tokens
    device: str
    dtype: str
    lowercase: bool        # the tokenizer lowercases: the cache key may too
    backend: str           # "torch" | "onnx" | "onnx-int8" | "fake"
    identity: str          # shared.embedding_identity: model@revision:precision
    chosen_by: str = "EMBEDDER_BACKEND"  # why this backend: the setting, or a measurement

    @property
    def feature_dimension(self) -> int:
        """The length of a features row: [sentence | lexical], each ``dimension`` long."""
        return 2 * self.dimension


@dataclass(frozen=True, slots=True)
class Tokens:
    ids: list[int]
    truncated: bool


class Backend(Protocol):
    info: ModelInfo

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        """Token ids per text, truncated at ``info.max_tokens``."""

    def features(self, batch: list[Tokens]) -> np.ndarray:
        """(len(batch), feature_dimension) float32 rows [sentence | lexical], each half
        L2-normalised; rows in ``batch`` order."""

    def forward(self, batch: list[Tokens]) -> np.ndarray:
        """(len(batch), dimension) float32: the sentence half of :meth:`features`."""


class SentenceFromFeatures:
    """The part of :class:`Backend` every backend shares: ``forward`` from ``features``."""

    info: ModelInfo

    def features(self, batch: list[Tokens]) -> np.ndarray:
        raise NotImplementedError

    def forward(self, batch: list[Tokens]) -> np.ndarray:
        return self.features(batch)[:, :self.info.dimension]


@dataclass(frozen=True)
class Concurrency:
    """How the model uses the CPU: ``batches`` forward passes at once (the engine's worker
    threads), each on ``threads`` runtime threads."""

    batches: int
    threads: int


def concurrency(settings: EmbedderSettings, device: str) -> Concurrency:
    """``EMBEDDER_CONCURRENT_BATCHES`` x ``EMBEDDER_THREADS``, zeros filled in from the cores
    this process may use: by default one single-threaded batch per core, so no runtime thread
    waits at a barrier for a partner the event loop has taken. On CUDA one batch at a time."""
    if device == "cuda":
        return Concurrency(1, settings.threads)
    # The cores this process may run on (a container's CPU set); macOS has no affinity call.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    batches = settings.concurrent_batches or max(1, cores // (settings.threads or 1))
    return Concurrency(batches, settings.threads or max(1, cores // batches))
