"""What the training report says about a model's errors, from held-out predictions.

Pure NumPy: the most confused label pairs with example texts, calibration (expected
calibration error and a reliability table), and the out-of-scope trade-off curve (what each
abstain threshold costs in-scope and catches out of scope).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np


def confused_pairs(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str],
                   texts: list[str], top: int = 10, examples: int = 3) -> list[dict[str, Any]]:
    """The ``top`` (true, predicted) label pairs most often mistaken, most frequent first, each
    with its count and its first ``examples`` texts. ``y_true`` and ``y_pred`` index
    ``labels``; a negative prediction (an abstention) is no confusion."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero((y_true != y_pred) & (y_pred >= 0))
    counts = Counter(zip(y_true[wrong].tolist(), y_pred[wrong].tolist(), strict=True))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], labels[item[0][0]],
                                                      labels[item[0][1]]))[:top]
    return [{"true": labels[t], "predicted": labels[p], "count": count,
             "examples": [texts[i] for i in wrong if y_true[i] == t and y_pred[i] == p
                          ][:examples]}
            for (t, p), count in ranked]


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """How far confidence (the top probability) is from accuracy. ``ece``: the mean gap over
    ``bins`` equal-width confidence bins, weighted by the rows in each; ``reliability``: each
    non-empty bin's range, rows, mean confidence and accuracy."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        rows = which == b
        if not rows.any():
            continue
        conf, acc = float(confidence[rows].mean()), float(correct[rows].mean())
        ece += rows.sum() / len(probs) * abs(acc - conf)
        table.append({"from": round(b / bins, 4), "to": round((b + 1) / bins, 4),
                      "count": int(rows.sum()), "confidence": round(conf, 4),
                      "accuracy": round(acc, 4)})
    return {"ece": round(ece, 4), "bins": bins, "reliability": table}


def tradeoff_curve(in_scores: np.ndarray, in_correct: np.ndarray,
                   oos_scores: np.ndarray | None = None, points: int = 20
                   ) -> list[dict[str, Any]]:
    """For ``points`` thresholds evenly over the range of the scores (higher = more in
    scope; a text scoring below the threshold abstains): in-scope accuracy with abstentions
    counted as errors, the in-scope abstain rate, and, given ``oos_scores``, the out-of-scope
    recall (the share of out-of-scope texts that abstain)."""
    in_scores, in_correct = np.asarray(in_scores, float), np.asarray(in_correct, bool)
    pooled = in_scores if oos_scores is None else np.concatenate([in_scores, oos_scores])
    curve = []
    for raw in np.linspace(pooled.min(), pooled.max(), points):
        # Floored to 6 decimals, as the trainer's threshold is: the one reported is the one
        # applied, and the lowest point keeps every text.
        threshold = float(np.floor(float(raw) * 1e6) / 1e6)
        kept = in_scores >= threshold
        point = {"threshold": threshold,
                 "in_scope_accuracy": round(float((in_correct & kept).mean()), 4),
                 "abstain_rate": round(float(1 - kept.mean()), 4)}
        if oos_scores is not None:
            point["oos_recall"] = round(float((np.asarray(oos_scores) < threshold).mean()), 4)
        curve.append(point)
    return curve
