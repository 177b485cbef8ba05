"""A version's intent map: the directions of the embedding space along which its labels differ,
learned from its training rows, in which the review queue groups texts into candidate new
intents (:mod:`services.classifier.clusters`).

Raw sentence embeddings mix what a text is about with how it is said (length, tone, the words
of its domain), so texts of one new intent scatter. A linear discriminant projection fitted on
the labels a team already has keeps the directions that tell intents apart, and it carries
over to intents it never saw: on CLINC150 with 38 of 150 intents left out of training, the
left-out intents' texts in the review queue cluster with NMI 0.870 -> 0.918 and ARI
0.643 -> 0.798 (``bench/discovery.py``). The distance at which clusters are cut is set by the
trainer too, on labels held out of the projection (:mod:`services.trainer.intent_map`).

Stored beside the head as :data:`INTENT_MAP_FILE` and read only to cluster, so serving heads
take no memory for it. NumPy only: the classifier reads it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

INTENT_MAP_FILE = "intent_map.npz"


@dataclass(frozen=True)
class IntentMap:
    mean: np.ndarray  # (dim,) the training rows' mean sentence vector
    # (dim, dims) discriminant directions, most discriminant first; None: the sentence
    # vectors themselves (no discriminant clustered held-out labels better)
    projection: np.ndarray | None
    distance: float  # average cosine distance within a cluster, at most, in the mapped space

    def rows(self, sentence: np.ndarray) -> np.ndarray:
        """Unit rows of ``sentence`` vectors in the map's space."""
        mapped = np.asarray(sentence, dtype=np.float32)
        if self.projection is not None:
            mapped = (mapped - self.mean) @ self.projection
        norms = np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
        return np.asarray(mapped / norms, dtype=np.float32)

    def to_file(self) -> bytes:
        buf = io.BytesIO()
        arrays: dict[str, Any] = {"mean": self.mean.astype(np.float32),
                                  "distance": np.float64(self.distance)}
        if self.projection is not None:
            arrays["projection"] = self.projection.astype(np.float16)
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_file(cls, data: bytes) -> IntentMap:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            projection = z["projection"].astype(np.float32) if "projection" in z.files else None
            return cls(mean=z["mean"].astype(np.float32), projection=projection,
                       distance=float(z["distance"]))
