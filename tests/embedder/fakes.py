"""Test backends built on the fake model: slow or failing on purpose."""

from __future__ import annotations

import threading
import time

import numpy as np

from services.embedder.backends import Tokens
from services.embedder.backends.fake import FakeBackend


class SlowBackend(FakeBackend):
    """Each forward pass takes ``delay_s``, so concurrent requests pile up and get batched."""

    def __init__(self, delay_s: float = 0.05, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s
        self.widths: list[int] = []
        self.lengths: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.running = 0
        self.most_running = 0  # the most forward passes seen at once
        self._count = threading.Lock()

    def features(self, batch: list[Tokens]) -> np.ndarray:
        with self._count:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.release.wait(10)
            time.sleep(self.delay_s)
        finally:
            with self._count:
                self.running -= 1
        self.widths.append(max(len(t.ids) for t in batch))
        self.lengths.append([len(t.ids) for t in batch])
        return super().features(batch)


class BrokenBackend(FakeBackend):
    def features(self, batch: list[Tokens]) -> np.ndarray:
        raise RuntimeError("CUDA error: device-side assert (secret internal detail)")
