"""How in scope a text looks to a head: the score a head abstains below.

Two signals, each standardised by its mean and spread over the training rows' out-of-fold
(held-out) predictions, then summed:

- the head's top probability (low: the head hesitates between its labels);
- the cosine similarity of the embedding to the nearest *prototype*: up to a few k-means
  centres of each label's training embeddings (low: nothing like it was in the training data).

Either signal alone misses texts the other catches: nonsense can land confidently on one side
of a linear boundary, and an in-scope text can sit between two close labels. The prototypes
are a small stand-in for every training embedding (8 per label instead of ~100), stored as
float16 and used as float32 after that rounding, in training and serving alike.
NumPy only: the classifier serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TERMS = ("top_probability", "nearest_prototype_cosine")


@dataclass
class Scope:
    prototypes: np.ndarray  # (m, dim), unit rows
    center: tuple[float, float]  # out-of-fold in-scope mean of each term
    scale: tuple[float, float]  # and its standard deviation

    def __post_init__(self) -> None:
        # The stored precision is the one used, so training and serving score alike.
        self.prototypes = np.asarray(self.prototypes, dtype=np.float16).astype(np.float32)

    def terms(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(n, 2): top probability and nearest-prototype cosine of each row."""
        nearest = (np.asarray(x, dtype=np.float32) @ self.prototypes.T).max(axis=1)
        return np.stack([probs.max(axis=1), nearest], axis=1)

    def score(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Higher means more in scope; 0 is a typical held-out in-scope text."""
        standard = (self.terms(x, probs) - np.array(self.center)) / np.array(self.scale)
        return np.asarray(standard.sum(axis=1), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Memory the scope adds to a served head (float32 prototypes)."""
        return int(self.prototypes.nbytes)

    def meta(self) -> dict[str, Any]:
        return {"terms": list(TERMS), "center": list(self.center), "scale": list(self.scale),
                "prototypes": int(len(self.prototypes))}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], prototypes: np.ndarray) -> Scope:
        if meta.get("terms") != list(TERMS):
            raise ValueError(f"unsupported in-scope terms {meta.get('terms')}")
        center, scale = meta["center"], meta["scale"]
        return cls(prototypes=prototypes, center=(float(center[0]), float(center[1])),
                   scale=(float(scale[0]), float(scale[1])))
