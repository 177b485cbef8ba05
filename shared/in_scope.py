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

A gate catches keyboard mashes that the encoder reads as words ("qwerty" as a keyboard, so
"asdfgh qwerty" near a ``spelling`` label): embeddings of random letter strings are kept with
the scope, and a text whose mean cosine to its ``NONSENSE_NEIGHBOURS`` nearest such strings
exceeds its nearest-prototype cosine by more than ``nonsense_margin`` (set in training from
correctly answered held-out texts: :func:`services.trainer.in_scope.gate_nonsense`) scores
``NONSENSE_SCORE``, far below any threshold. The strings are the same for every head (a
seeded draw), so heads of one embedder carry equal nonsense rows: a process keeps one
read-only copy of them (:func:`shared_rows`), which took a 10-label head from 0.78 MB of a
classifier's memory to a quarter of that (``bench/heads_density.py``).
NumPy only: the classifier serves it.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

TERMS = ("top_probability", "nearest_prototype_cosine")
NONSENSE_NEIGHBOURS = 5
NONSENSE_SCORE = -100.0  # finite, so reports and trade-off curves stay plain numbers

_SHARED: weakref.WeakValueDictionary[str, np.ndarray] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()  # heads load in worker threads


def shared_rows(rows: np.ndarray) -> np.ndarray:
    """One read-only array for all equal ``rows`` alive in this process (by content): equal
    arrays loaded by many heads take the memory of one, and are freed with the last head."""
    key = (f"{rows.dtype.str}{rows.shape}"
           + hashlib.blake2b(np.ascontiguousarray(rows).tobytes(), digest_size=16).hexdigest())
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            rows.setflags(write=False)
            _SHARED[key] = found = rows
    return found


@dataclass
class InScopeScore:
    prototypes: np.ndarray  # (m, dim), unit rows
    center: tuple[float, float]  # out-of-fold in-scope mean of each term
    scale: tuple[float, float]  # and its standard deviation
    nonsense: np.ndarray | None = None  # (k, dim) unit rows: random letter strings; None: no gate
    nonsense_margin: float = 0.0

    def __post_init__(self) -> None:
        # The stored precision is the one used, so training and serving score alike.
        self.prototypes = np.asarray(self.prototypes, dtype=np.float16).astype(np.float32)
        if self.nonsense is not None:
            self.nonsense = shared_rows(
                np.asarray(self.nonsense, dtype=np.float16).astype(np.float32))

    def terms(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(n, 2): top probability and nearest-prototype cosine of each row."""
        nearest = (np.asarray(x, dtype=np.float32) @ self.prototypes.T).max(axis=1)
        return np.stack([probs.max(axis=1), nearest], axis=1)

    def standardised(self, terms: np.ndarray) -> np.ndarray:
        """The sum of the standardised terms (without the nonsense gate)."""
        standard = (terms - np.array(self.center)) / np.array(self.scale)
        return np.asarray(standard.sum(axis=1), dtype=np.float32)

    def score(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Higher means more in scope; 0 is a typical held-out in-scope text."""
        terms = self.terms(x, probs)
        scores = self.standardised(terms)
        if self.nonsense is not None:
            gap = nonsense_gap(np.asarray(x, dtype=np.float32), self.nonsense, terms[:, 1])
            scores[gap > self.nonsense_margin] = NONSENSE_SCORE
        return scores

    @property
    def nbytes(self) -> int:
        """Memory of the scope's arrays (float32 prototypes and nonsense rows; the nonsense rows
        are one copy shared by the process's heads of one embedder: :func:`shared_rows`)."""
        return int(self.prototypes.nbytes + (0 if self.nonsense is None else self.nonsense.nbytes))

    def meta(self) -> dict[str, Any]:
        gate = None if self.nonsense is None else {
            "rows": int(len(self.nonsense)), "neighbours": NONSENSE_NEIGHBOURS,
            "margin": self.nonsense_margin}
        return {"terms": list(TERMS), "center": list(self.center), "scale": list(self.scale),
                "prototypes": int(len(self.prototypes)), "nonsense": gate}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], prototypes: np.ndarray,
                  nonsense: np.ndarray | None = None) -> InScopeScore:
        if meta.get("terms") != list(TERMS):
            raise ValueError(f"unsupported in-scope terms {meta.get('terms')}")
        gate = meta.get("nonsense")  # absent in heads saved before the gate (format 2)
        if gate and gate.get("neighbours") != NONSENSE_NEIGHBOURS:
            raise ValueError(f"unsupported nonsense gate {gate}")
        center, scale = meta["center"], meta["scale"]
        return cls(prototypes=prototypes, center=(float(center[0]), float(center[1])),
                   scale=(float(scale[0]), float(scale[1])),
                   nonsense=nonsense if gate else None,
                   nonsense_margin=float(gate["margin"]) if gate else 0.0)


def nonsense_gap(x: np.ndarray, nonsense: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """How much nearer each row is to random letter strings (mean cosine to its
    ``NONSENSE_NEIGHBOURS`` nearest) than to its nearest prototype (cosine ``nearest``)."""
    sims = x @ nonsense.T
    k = min(NONSENSE_NEIGHBOURS, sims.shape[1])
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return np.asarray(top.mean(axis=1) - nearest, dtype=np.float32)
