"""Model backends behind one small protocol, so the engine never knows about torch.

A backend tokenizes (to count and truncate) and runs forward passes on already-batched,
already-tokenized texts. Batching, queueing and caching live above it.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Tokens:
    ids: list[int]
    truncated: bool


class Backend(Protocol):
    info: ModelInfo

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        """Token ids per text, truncated at ``info.max_tokens``."""

    def forward(self, batch: list[Tokens]) -> np.ndarray:
        """(len(batch), dimension) float32, L2-normalised; rows in ``batch`` order."""


def load_backend(settings: EmbedderSettings) -> Backend:
    """Build the configured backend. Imports torch only when the torch backend is asked for."""
    if settings.backend == "fake":
        from services.embedder.backends.fake import FakeBackend
        return FakeBackend()
    from services.embedder.backends.torch_backend import TorchBackend
    return TorchBackend.load(settings)
