"""Metrics for the report and the out-of-scope threshold, from held-out probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


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


def calibrate_threshold(probs: np.ndarray, y: np.ndarray, oos_probs: np.ndarray | None, *,
                        max_accuracy_drop: float) -> dict[str, Any]:
    """Pick the confidence below which the head abstains.

    Counting an abstention on an in-scope text as an error, take the highest threshold whose
    in-scope accuracy stays within ``max_accuracy_drop`` of answering everything: it rejects
    as many out-of-scope texts as that accuracy allows. Held-out (out-of-fold) probabilities
    only, so the threshold is not fitted to texts the head has memorised.
    """
    top = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    base = float(correct.mean())
    candidates = np.unique(np.concatenate([[0.0], top]))
    # In-scope accuracy at threshold t: correct and top >= t. Vectorised over sorted candidates.
    order = np.argsort(top)
    sorted_top, sorted_correct = top[order], correct[order]
    lost = np.concatenate([[0], np.cumsum(sorted_correct)])  # correct answers below each cut
    cut = np.searchsorted(sorted_top, candidates, side="left")
    accuracy = (correct.sum() - lost[cut]) / len(y)
    ok = accuracy >= base - max_accuracy_drop - 1e-12
    threshold = float(candidates[ok].max())
    result = {"threshold": round(threshold, 6), "in_scope_accuracy": round(float(accuracy[ok][-1]), 5),
              "in_scope_accuracy_without": round(base, 5), "max_accuracy_drop": max_accuracy_drop,
              "in_scope_abstain_rate": round(float((top < threshold).mean()), 5)}
    if oos_probs is not None and len(oos_probs):
        result["oos_recall"] = round(float((oos_probs.max(axis=1) < threshold).mean()), 5)
        result["oos_rows"] = int(len(oos_probs))
    return result
