"""Fit a head's in-scope score (:class:`shared.in_scope.InScopeScore`) and its abstain threshold.

The score's two terms are measured on out-of-fold predictions (each fold's head and prototypes
never saw the rows they score), so their mean and spread, and the threshold, describe texts
the served head has not memorised. No out-of-scope rows are needed: the threshold is the
highest one that costs at most ``max_accuracy_drop`` of in-scope accuracy at 95% confidence
(:func:`calibrate`), which abstains first on the in-scope texts the head gets wrong anyway.
Out-of-scope rows, when the data has some, measure the recall that threshold reaches.

The score's nonsense gate (:mod:`shared.in_scope`) compares each text with embeddings of
:func:`nonsense_texts`; its margin is the largest gap of a correctly answered held-out text,
so the gate costs no held-out accuracy, except for texts that look more like random letters
than the median random string does (on CLINC150's imbalanced training set, one: "what the
heck is qat"), which may not widen the gate; the threshold's rule counts what they cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import beta

from shared.contracts.training import TrainOptions
from shared.heads import Head
from shared.in_scope import NONSENSE_SCORE, InScopeScore, nonsense_gap

PROTOTYPES_PER_LABEL = 8
CONFIDENCE = 0.95  # that the threshold's cost stays within its bound (calibrate)
SCORE = ("top probability + cosine to the nearest label prototype, each standardised on "
         "out-of-fold in-scope predictions")
_ROUNDS = 10


def nonsense_texts(count: int = 400, *, seed: int = 0) -> list[str]:
    """Seeded random lowercase letter strings of one to three words, two to eight letters each:
    what keyboard mashes look like in any language written in Latin letters."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return [" ".join("".join(rng.choice(letters, int(rng.integers(2, 9))))
                     for _ in range(int(rng.integers(1, 4)))) for _ in range(count)]


def prototypes(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int,
               per_label: int = PROTOTYPES_PER_LABEL) -> np.ndarray:
    """Up to ``per_label`` unit-length spherical k-means centres of each label's rows (all of
    its rows when it has no more), rounded through float16 as :class:`InScopeScore` stores them."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_classes):
        rows = x[y == c]
        if len(rows) <= per_label:
            out.append(rows)
            continue
        centres = rows[rng.choice(len(rows), per_label, replace=False)]
        for _ in range(_ROUNDS):
            members = np.eye(per_label, dtype=np.float32)[(rows @ centres.T).argmax(axis=1)]
            sums = members.T @ rows
            empty = members.sum(axis=0) == 0  # keep a centre that lost all its rows
            centres = np.where(empty[:, None], centres, sums)
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        out.append(centres)
    return np.concatenate(out).astype(np.float16).astype(np.float32)


def nearest_prototype(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Cosine similarity of each (unit) row of ``x`` to its nearest prototype."""
    return (x @ bank.T).max(axis=1)


def fit_in_scope_score(bank: np.ndarray, oof_terms: np.ndarray) -> InScopeScore:
    """The scope over ``bank`` prototypes, standardised by out-of-fold in-scope ``oof_terms``
    (rows of top probability and nearest-prototype cosine)."""
    spread = np.maximum(oof_terms.std(axis=0), 1e-6)
    return InScopeScore(prototypes=bank, center=(float(oof_terms[:, 0].mean()),
                                          float(oof_terms[:, 1].mean())),
                 scale=(float(spread[0]), float(spread[1])))


def gate_nonsense(scope: InScopeScore, x_nonsense: np.ndarray, x: np.ndarray, nearest: np.ndarray,
                  correct: np.ndarray) -> np.ndarray:
    """Give ``scope`` its nonsense gate over rows ``x_nonsense``, its margin the largest gap
    (:func:`shared.in_scope.nonsense_gap`) of a correctly answered held-out row of ``x``
    (``nearest``: their out-of-fold nearest-prototype cosines), leaving out rows with a larger
    gap than the median random string's own (those are stopped, at their cost in accuracy).
    Returns which held-out rows the gate stops."""
    scope.nonsense = x_nonsense.astype(np.float16).astype(np.float32)
    gap = nonsense_gap(x, scope.nonsense, nearest)
    typical = float(np.median(_own_gaps(scope.nonsense, scope.prototypes)))
    counted = correct & (gap <= typical)
    scope.nonsense_margin = float(gap[counted].max() if counted.any() else typical)
    return gap > scope.nonsense_margin


def _own_gaps(nonsense: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Each random string's gap, measured against the other random strings."""
    others = np.ones(len(nonsense), dtype=bool)
    gaps = np.empty(len(nonsense), dtype=np.float32)
    for i, row in enumerate(nonsense):
        others[i] = False
        gaps[i] = nonsense_gap(row[None], nonsense[others], (bank @ row).max(keepdims=True))[0]
        others[i] = True
    return gaps


def calibrate(scores: np.ndarray, correct: np.ndarray, oos_scores: np.ndarray | None, *,
              max_accuracy_drop: float) -> dict[str, Any]:
    """The highest threshold whose cost in in-scope accuracy (the share of the rows answered
    correctly that it abstains on) stays within ``max_accuracy_drop`` at ``CONFIDENCE`` on
    texts like the held-out ones: its one-sided Clopper-Pearson upper bound, not the share
    measured on these rows, which a few hundred rows (five or ten a label) measure too coarsely
    to promise it. With too few rows to promise the bound for any threshold (under about
    3 / ``max_accuracy_drop``: 1,000 rows for 0.003), it abstains only below the lowest
    held-out score (and through the nonsense gate)."""
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    lost = np.concatenate([[0], np.cumsum(correct[order])])  # correct answers below each cut
    n = len(scores)
    bound = np.where(lost < n, beta.ppf(CONFIDENCE, lost + 1, np.maximum(n - lost, 1)), 1.0)
    allowed = np.flatnonzero(bound <= max_accuracy_drop + 1e-12)
    cut = int(allowed.max()) if len(allowed) else 0
    # Abstaining on the i lowest is a threshold of ranked[i] (ties with it are kept, which
    # only helps); rounded down, which keeps a few more at most.
    threshold = float(ranked[cut]) if cut < len(ranked) else float(ranked[-1]) + 1e-6
    # Above the nonsense gate's score, whatever the rows: what the gate stops always abstains.
    threshold = max(threshold, NONSENSE_SCORE + 1e-3)
    return at(float(np.floor(threshold * 1e6) / 1e6), scores, correct, oos_scores) | {
        "in_scope_accuracy_without": round(float(correct.mean()), 5),
        "max_accuracy_drop": max_accuracy_drop,
        "cost_upper_bound": round(float(bound[cut]), 5), "confidence": CONFIDENCE}


def at(threshold: float, scores: np.ndarray, correct: np.ndarray,
       oos_scores: np.ndarray | None) -> dict[str, Any]:
    """What abstaining below ``threshold`` gives on held-out in-scope rows (and oos rows)."""
    kept = scores >= threshold
    out: dict[str, Any] = {"threshold": threshold,
                           "in_scope_accuracy": round(float((correct & kept).mean()), 5),
                           "in_scope_abstain_rate": round(float(1 - kept.mean()), 5)}
    if oos_scores is not None and len(oos_scores):
        out["oos_recall"] = round(float((oos_scores < threshold).mean()), 5)
        out["oos_rows"] = int(len(oos_scores))
    return out


def abstention(final: Head, options: TrainOptions, x: np.ndarray, y: np.ndarray,
               oof: np.ndarray, nearest: np.ndarray, x_oos: np.ndarray | None, *,
               max_accuracy_drop: float, x_nonsense: np.ndarray | None = None,
               tested: np.ndarray | None = None
               ) -> tuple[dict[str, Any] | None, np.ndarray | None, np.ndarray | None]:
    """Set ``final``'s threshold (and in-scope score, unless the threshold is fixed or none)
    from out-of-fold probabilities ``oof`` and nearest-prototype cosines ``nearest``; with
    rows of :func:`nonsense_texts` (``x_nonsense``), the score's nonsense gate too. The
    score's prototypes and gate are on the sentence part of the rows (:meth:`Head.sentence`).

    ``tested``: the rows ``oof`` and ``nearest`` hold out-of-fold figures for (default: all);
    the prototypes are of every row.

    Returns the threshold's report, the held-out in-scope scores and the out-of-scope rows'
    scores by ``final`` (None where there is nothing to score)."""
    bank_x, bank_y = x, y
    if tested is not None:
        x, y, oof, nearest = x[tested], y[tested], oof[tested], nearest[tested]
    correct = oof.argmax(axis=1) == y
    x_oos = x_oos if x_oos is not None and len(x_oos) else None
    if options.threshold == "none":
        return None, None, None
    if isinstance(options.threshold, float):  # a probability the user chose
        final.threshold = options.threshold
        oos_top = final.predict_proba(x_oos).max(axis=1) if x_oos is not None else None
        return at(options.threshold, oof.max(axis=1), correct, oos_top) | {
            "in_scope_accuracy_without": round(float(correct.mean()), 5),
            "method": "fixed", "score": "top probability"}, oof.max(axis=1), oos_top
    terms = np.stack([oof.max(axis=1), nearest], axis=1)
    n_labels = len(final.labels)
    bank = prototypes(final.sentence(bank_x), bank_y, n_labels, seed=options.seed)
    final.in_scope_score = fit_in_scope_score(bank, terms)
    final.prototype_labels = np.repeat(np.arange(n_labels), np.minimum(
        np.bincount(bank_y, minlength=n_labels), PROTOTYPES_PER_LABEL))  # as prototypes() does
    in_scores = final.in_scope_score.standardised(terms)
    gate: dict[str, Any] = {}
    if x_nonsense is not None and len(x_nonsense):
        stopped = gate_nonsense(final.in_scope_score, final.sentence(x_nonsense), final.sentence(x),
                                nearest, correct)
        in_scores[stopped] = NONSENSE_SCORE
        gate = {"nonsense_gate": {"margin": round(final.in_scope_score.nonsense_margin, 5),
                                  "in_scope_stopped_rate": round(float(stopped.mean()), 5)}}
    oos_scores = (final.in_scope(x_oos, final.predict_proba(x_oos)) if x_oos is not None
                  else None)
    report = calibrate(in_scores, correct, oos_scores, max_accuracy_drop=max_accuracy_drop)
    final.threshold = report["threshold"]
    return report | gate | {"method": "calibrated on out-of-fold predictions",
                            "score": SCORE}, in_scores, oos_scores
