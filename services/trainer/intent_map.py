"""Fit a version's intent map (:class:`shared.intent_map.IntentMap`): where the review queue
groups texts into candidate new intents.

The projection is a linear discriminant analysis of the sentence vectors: the directions of
most between-label spread for the within-label spread (shrunk towards the identity, as a label
may have five rows), at most ``DIMS`` of them. The cut distance is measured the way it is
used, on intents the projection never saw: the labels are split in two halves (``SPLITS``
seeded times), a projection fitted on each half clusters ``ROWS_PER_LABEL`` rows of each label
of the other half, and the distance whose clusters agree best with those labels (adjusted Rand
index, averaged) is kept. A half has half the labels, so the map keeps at most half as many
directions as there are labels, and none below ``MIN_DIMS``: then the queue clusters raw
sentence vectors (:data:`services.classifier.clusters.DISTANCE_THRESHOLD`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.linalg import eigh
from sklearn.metrics import adjusted_rand_score

from shared.intent_map import IntentMap

DIMS = 64
MIN_DIMS = 8
# Of the mean within-label variance, added to each dimension's: much when labels have few
# rows (their spread is poorly known), little when they have many; chosen like the cut.
SHRINKS = (1.0, 4.0, 16.0, 64.0)
SPLITS = 2
ROWS_PER_LABEL = 20
DISTANCES = tuple(round(0.3 + 0.05 * i, 2) for i in range(13))  # 0.30 ... 0.90


def fit_intent_map(x: np.ndarray, y: np.ndarray, *, seed: int
                   ) -> tuple[IntentMap | None, dict[str, Any]]:
    """The map of sentence vectors ``x`` with labels ``y`` (label indexes), and its report."""
    counts = np.bincount(y)
    usable = np.flatnonzero(counts >= 2)
    dims = min(DIMS, len(usable) // 2 - 1)
    if dims < MIN_DIMS:
        return None, {"note": f"needs {2 * (MIN_DIMS + 1)} labels with 2 rows or more, found "
                              f"{len(usable)}: the review queue clusters raw sentence vectors"}
    rng = np.random.default_rng(seed)
    spaces: list[float | None] = [None, *SHRINKS]  # None: the sentence vectors themselves
    agreement = np.zeros((len(spaces), len(DISTANCES)))
    for _ in range(SPLITS):
        order = rng.permutation(usable)
        halves = order[:len(order) // 2], order[len(order) // 2:]
        for fitted, held in (halves, halves[::-1]):
            rows = np.concatenate([rng.choice(np.flatnonzero(y == c),
                                              min(int(counts[c]), ROWS_PER_LABEL), replace=False)
                                   for c in held])
            mean, within, between = scatter(x, y, fitted)
            for i, shrink in enumerate(spaces):
                mapped = (IntentMap(mean, None, 0.0) if shrink is None else IntentMap(
                    mean, directions(within, between, shrink, dims), 0.0)).rows(x[rows])
                tree = linkage(mapped, method="average", metric="cosine")
                agreement[i] += [adjusted_rand_score(y[rows], fcluster(tree, d, "distance"))
                                 for d in DISTANCES]
    agreement /= 2 * SPLITS
    space, cut = np.unravel_index(int(agreement.argmax()), agreement.shape)
    shrink, distance = spaces[space], DISTANCES[cut]
    report = {"held_out_labels_ari": round(float(agreement[space, cut]), 4),
              "sentence_ari": round(float(agreement[0].max()), 4), "distance": distance}
    if shrink is None:
        return IntentMap(np.zeros(x.shape[1], np.float32), None, distance), report | {
            "space": "sentence vectors: no discriminant did better on held-out labels"}
    mean, within, between = scatter(x, y, usable)
    return IntentMap(mean, directions(within, between, shrink, dims), distance), report | {
        "space": "linear discriminant of the sentence vectors", "dims": dims, "shrink": shrink}


def scatter(x: np.ndarray, y: np.ndarray, labels: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean of the rows of ``labels``, and their within-label and between-label
    covariances."""
    kept = np.isin(y, labels)
    rows, owners = np.asarray(x[kept], dtype=np.float64), y[kept]
    means = np.zeros((int(y.max()) + 1, rows.shape[1]))
    for c in labels:
        means[c] = rows[owners == c].mean(axis=0)
    mean = rows.mean(axis=0)
    within = np.cov(rows - means[owners], rowvar=False)
    between = np.cov(means[labels] - mean, rowvar=False)
    return mean.astype(np.float32), within, between


def directions(within: np.ndarray, between: np.ndarray, shrink: float, dims: int
               ) -> np.ndarray:
    """The ``dims`` leading discriminant directions, the within-label covariance shrunk by
    ``shrink`` times its mean variance towards the identity."""
    shrunk = within + shrink * np.trace(within) / len(within) * np.eye(len(within))
    _, vectors = eigh(between, shrunk)  # ascending eigenvalues
    return np.asarray(vectors[:, ::-1][:, :dims], dtype=np.float32)
