"""Label drift: how far the labels a version answers have moved from the labels it was trained
on, as a population stability index (PSI; above :data:`ALARM` is the usual alarm). Reports
give it for a window (:mod:`services.gateway.reports`), series for each bucket of one
(:mod:`services.gateway.series`). No FastAPI here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from shared.contracts.training import ModelInfo, Version
from shared.db.rollups import ABSTAINED

ALARM = 0.2


def min_answers(labels: int) -> int:
    """The fewest answered predictions over ``labels`` labels whose PSI can raise the alarm.
    With ``n`` answers drawn from the very labels of training, PSI's noise alone is about
    ``(labels - 1) / n`` (``n * PSI`` is roughly chi-square with ``labels - 1`` degrees of
    freedom); below this size it would pass :data:`ALARM` too often (over 1 in 20 windows)."""
    freedom = max(1, labels - 1)
    return max(30, math.ceil(5 * freedom + 10 * math.sqrt(2 * freedom)))


@dataclass(frozen=True)
class Drift:
    """The labels of either side, each side's smoothed share of them, the PSI, and how many
    answers (abstentions left out) it was measured on."""

    labels: list[str]
    training: np.ndarray
    served: np.ndarray
    psi: float
    answers: int

    def top_changes(self, n: int = 5) -> list[dict[str, float | str]]:
        """The ``n`` labels whose share moved most."""
        moved = sorted(range(len(self.labels)),
                       key=lambda i: -abs(self.served[i] - self.training[i]))[:n]
        return [{"label": self.labels[i], "training_share": round(float(self.training[i]), 4),
                 "served_share": round(float(self.served[i]), 4)} for i in moved]


def label_drift(trained: Mapping[str, int], served: Mapping[str, int]) -> Drift | None:
    """Served label counts (abstentions left out) against training label counts; None when
    either side has none."""
    answered = {k: v for k, v in served.items() if k != ABSTAINED}
    if not trained or not answered:
        return None
    labels = sorted(set(trained) | set(answered))
    counts = np.array([[answered.get(k, 0) for k in labels]], dtype=float)
    p, q, psi = shares(trained, labels, counts)
    return Drift(labels, p[0], q[0], float(psi[0]), int(counts.sum()))


def shares(trained: Mapping[str, int], labels: list[str], counts: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of served ``counts`` (one column per label of ``labels``, abstentions not
    among them): the training and served shares of the labels either side has, smoothed, and
    the PSI (NaN where either side has none). Both sides get half a count more per label, so a
    label one side lacks still has a share."""
    known = np.array([k in trained for k in labels])
    p = np.array([trained.get(k, 0) for k in labels], dtype=float) + 0.5
    mask = known[None, :] | (counts > 0)
    p = np.where(mask, p[None, :], 0.0)
    q = np.where(mask, counts + 0.5, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
        psi = np.where(mask, (q - p) * np.log(q / p), 0.0).sum(axis=1)
    psi[(counts.sum(axis=1) == 0) | (not known.any())] = np.nan
    return p, q, psi


def training_counts(version: Version | None) -> dict[str, int]:
    """The label counts ``version`` was trained on (none if unknown)."""
    return (version.metrics.get("class_counts") if version else None) or {}


def production_of(model: ModelInfo) -> Version | None:
    return next((v for v in model.versions if v.version == model.production_version), None)
