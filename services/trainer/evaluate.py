"""Metrics for the report, from held-out (out-of-fold) probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from services.trainer.diagnostics import calibration, confused_pairs, tradeoff_curve


def scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {"weighted_f1": round(float(f1_score(y, pred, average="weighted", zero_division=0)), 5),
            "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 5),
            "accuracy": round(float(accuracy_score(y, pred)), 5)}


def per_class(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    idx = np.arange(len(labels))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    table = [{"label": lab, "precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
              "f1": round(float(f[i]), 4), "support": int(s[i])} for i, lab in enumerate(labels)]
    return {"per_class": table,
            "confusion_matrix": {"labels": labels,
                                 "matrix": confusion_matrix(y, pred, labels=idx).tolist()}}


def diagnosis(y: np.ndarray, oof: np.ndarray, labels: list[str], texts: list[str],
              in_scores: np.ndarray | None, oos_scores: np.ndarray | None) -> dict[str, Any]:
    """The report's account of errors, from out-of-fold probabilities ``oof``: the most
    confused label pairs with example texts, calibration, and the out-of-scope trade-off
    curve over the head's in-scope scores (its top probability when it has none)."""
    pred = oof.argmax(axis=1)
    scores = in_scores if in_scores is not None else oof.max(axis=1)
    return {"confused_pairs": confused_pairs(y, pred, labels, texts),
            "calibration": calibration(oof, y),
            "tradeoff_curve": tradeoff_curve(scores, pred == y, oos_scores)}
