"""Choose and fit a head: screen the head kinds on one fold, cross-validate the winner, fit it on
everything, fit its in-scope score and abstain threshold. All within a time budget.

Why screening: on CLINC150 (150 classes) logistic regression fits in ~5 s, an MLP in ~9 s and
XGBoost in minutes (one tree per class per round), so ``auto`` compares the kinds on the first
fold only, runs XGBoost only where it can win (few classes), and spends the remaining folds on
the winner, whose out-of-fold predictions give the reported metrics, the in-scope score's
standardisation and the threshold (:mod:`services.trainer.in_scope`). Logistic regression folds
and the final fit start from the first fold's solution, which they are close to.

Folds are stratified by hand (:func:`folds_of`) so that tiny labels train: every fold's
training rows hold at least one example of every label, and the only example of a label is
never held out (it trains every fold; the report counts such rows as not cross-validated).

Heads fit on rows of ``features``: sentence vectors alone, or with the lexical vectors beside
them (what the trainer fits on); the in-scope score's prototypes are on the sentence part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.trainer import evaluate, label_names
from services.trainer.fitters import FitSpec, fit, flush_tiny
from services.trainer.in_scope import abstention, nearest_prototype, prototypes
from shared.contracts.embeddings import FeatureSet
from shared.contracts.training import TrainOptions
from shared.heads import Head, HeadType

Progress = Callable[[str, float], None]  # (stage, fraction of that stage done)


@dataclass
class Selected:
    head: Head
    spec: FitSpec
    report: dict[str, Any]
    oof: np.ndarray  # out-of-fold probabilities of every training row
    tested: np.ndarray  # which rows were held out in a fold (every row of a label with two or more)
    in_scores: np.ndarray | None  # held-out rows' in-scope scores (None: never abstains)
    oos_scores: np.ndarray | None  # the out-of-scope rows' scores by the served head


XGBOOST_MIN_PER_LABEL = 10  # fewer: no early-stopping split to speak of, and trees lose anyway


def head_kinds(options: TrainOptions, n_classes: int, xgboost_max_classes: int,
               fewest: int = XGBOOST_MIN_PER_LABEL) -> tuple[list[HeadType], dict[str, str]]:
    """The kinds ``auto`` screens (``fewest``: the rows of the smallest label)."""
    if options.head != "auto":
        return [options.head], {}
    kinds: list[HeadType] = ["logreg", "mlp"]
    skipped = {}
    if n_classes > xgboost_max_classes:
        skipped["xgboost"] = (f"{n_classes} classes > {xgboost_max_classes}: XGBoost grows one "
                              "tree per class per round and cannot win here within the budget")
    elif fewest < XGBOOST_MIN_PER_LABEL:
        skipped["xgboost"] = (f"a label has {fewest} examples, fewer than "
                              f"{XGBOOST_MIN_PER_LABEL}: too few for boosted trees")
    else:
        kinds.append("xgboost")
    return kinds, skipped


def folds_of(y: np.ndarray, k: int, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                         np.ndarray]:
    """Up to ``k`` stratified folds as (training rows, held-out rows), and which rows are held
    out in one of them. Each label's rows are shuffled and dealt to consecutive folds, the
    next label starting where the last one stopped, so folds stay even with tiny labels. A
    label with two or more rows keeps at least one in every fold's training rows (it is held
    out in at most all but one, and in no fold twice when it has no more than ``k`` rows); a
    label with one row is never held out."""
    rng = np.random.default_rng(seed)
    fold = np.full(len(y), -1)
    dealt = 0
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) < 2:
            continue
        fold[rows] = (dealt + np.arange(len(rows))) % k
        dealt += len(rows)
    tested = fold >= 0
    folds = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f))
             for f in range(min(k, int(tested.sum())))]
    return folds, tested


def select_and_fit(x: np.ndarray, y: np.ndarray, labels: list[str], x_oos: np.ndarray | None,
                   options: TrainOptions, *, embedder_model: str, budget_s: float, threads: int,
                   xgboost_max_classes: int, max_accuracy_drop: float,
                   progress: Progress, x_nonsense: np.ndarray | None = None,
                   x_names: np.ndarray | None = None,
                   features: FeatureSet = "sentence") -> Selected:
    """Screen, cross-validate and fit a head as the module says, on rows ``x`` holding
    ``features``. ``x_nonsense``: rows of :func:`services.trainer.in_scope.nonsense_texts`, for
    the in-scope score's nonsense gate (None: no gate). ``x_names``: one row per label, its
    name (:mod:`services.trainer.label_names`), added to the training rows of every fit where
    that does better on the first fold (None: never)."""
    start = time.perf_counter()
    x = flush_tiny(x)  # once for the fits, predictions and prototypes below
    folds, tested = folds_of(y, options.cv_folds, options.seed)
    counts = np.bincount(y, minlength=len(labels))
    kinds, skipped = head_kinds(options, len(labels), xgboost_max_classes, int(counts.min()))
    base = FitSpec(kind=kinds[0], features=features, seed=options.seed, threads=threads,
                   balanced=options.class_weight == "balanced")
    sentence = x[:, :x.shape[1] // 2] if features == "sentence+lexical" else x

    names: np.ndarray | None = None  # x_names once they have earned their place

    def run_fold(spec: FitSpec, k: int, warm: Head | None = None
                 ) -> tuple[Head, np.ndarray, dict[str, Any]]:
        train, test = folds[k]
        head, facts = fit(spec, *label_names.with_names(x[train], y[train], names), labels,
                          embedder_model=embedder_model, start=warm)
        return head, head.predict_proba(x[test]), facts

    # 1. Screen every kind on fold 0 (stop adding kinds once the budget is spent).
    steps = len(kinds) + (options.class_weight == "auto") + len(folds)
    done = 0
    screen: dict[HeadType, dict[str, Any]] = {}
    fold0: dict[HeadType, tuple[Head, np.ndarray]] = {}
    for kind in kinds:
        if screen and time.perf_counter() - start > budget_s:
            skipped[kind] = "time budget spent before it could be screened"
            continue
        spec = replace(base, kind=kind)
        head, probs, facts = run_fold(spec, 0)
        fold0[kind] = (head, probs)
        screen[kind] = evaluate.scores(y[folds[0][1]], probs) | facts
        done += 1
        progress("selecting", done / steps)
    best_kind = max(screen, key=lambda k: screen[k]["weighted_f1"])
    spec = replace(base, kind=best_kind)

    # 2. Class weights: compare on the same fold, keep the better (the report shows both).
    # Equally frequent labels make balanced weights all 1: the same fit, not tried twice.
    weighting: dict[str, Any] = {"mode": options.class_weight}
    if options.class_weight == "auto" and counts.min() == counts.max():
        weighting["note"] = "labels equally frequent: balanced weights change nothing"
    elif options.class_weight == "auto":
        balanced = replace(spec, balanced=True)
        head_b, probs_b, _ = run_fold(balanced, 0)
        score_b = evaluate.scores(y[folds[0][1]], probs_b)["weighted_f1"]
        weighting |= {"none_weighted_f1": screen[best_kind]["weighted_f1"],
                      "balanced_weighted_f1": score_b}
        if score_b > screen[best_kind]["weighted_f1"]:
            spec, fold0[best_kind] = balanced, (head_b, probs_b)
    if options.class_weight == "auto":
        done += 1
        progress("selecting", done / steps)
    weighting["chosen"] = "balanced" if spec.balanced else "none"

    # 2b. Label names as rows: compared on the same fold where a label has few examples.
    named: dict[str, Any] = {"used": False}
    if x_names is not None and counts.min() < label_names.BELOW:
        without = evaluate.scores(y[folds[0][1]], fold0[best_kind][1])["weighted_f1"]
        names = flush_tiny(x_names)
        head_n, probs_n, _ = run_fold(spec, 0)
        score_n = evaluate.scores(y[folds[0][1]], probs_n)["weighted_f1"]
        named = {"used": score_n > without, "without_weighted_f1": without,
                 "with_weighted_f1": score_n}
        if named["used"]:
            fold0[best_kind] = (head_n, probs_n)
        else:
            names = None
    elif x_names is not None:
        named["note"] = f"every label has {label_names.BELOW} examples or more"

    # 3. Cross-validate the winner: out-of-fold probabilities and (for an in-scope score)
    # nearest-prototype cosines for every row, each fold's prototypes from its training rows.
    oof = np.zeros((len(y), len(labels)), dtype=np.float32)
    nearest = np.zeros(len(y), dtype=np.float32)
    warm = fold0[best_kind][0] if spec.kind == "logreg" else None
    for k, (train, test) in enumerate(folds):
        oof[test] = fold0[best_kind][1] if k == 0 else run_fold(spec, k, warm)[1]
        if options.threshold in ("auto", "calibrate"):
            bank = prototypes(sentence[train], y[train], len(labels), seed=options.seed)
            nearest[test] = nearest_prototype(sentence[test], bank)
        done += 1
        progress("cross_validating", done / steps)

    # 4. The served head: fitted on every row; then its in-scope score and threshold.
    final, facts = fit(spec, *label_names.with_names(x, y, names), labels,
                       embedder_model=embedder_model, start=warm)
    cv = evaluate.scores(y[tested], oof[tested])
    fitted = evaluate.scores(y, final.predict_proba(x))
    threshold, in_scores, oos_scores = abstention(
        final, options, x, y, oof, nearest, x_oos, max_accuracy_drop=max_accuracy_drop,
        x_nonsense=x_nonsense, tested=tested)
    report = {"head_type": spec.kind, "params": spec.params(), "cv_folds": len(folds),
              "cv_rows": int(tested.sum()), "cv": cv, "train": fitted,
              "train_cv_gap": round(fitted["weighted_f1"] - cv["weighted_f1"], 5),
              "screened": screen, "skipped": skipped, "class_weight": weighting,
              "label_names": named,
              "threshold": threshold, "final_fit": facts, "memory_bytes": final.nbytes,
              "selection_seconds": round(time.perf_counter() - start, 2),
              **evaluate.per_class(y[tested], oof[tested], labels)}
    return Selected(head=final, spec=spec, report=report, oof=oof, tested=tested,
                    in_scores=in_scores, oos_scores=oos_scores)
