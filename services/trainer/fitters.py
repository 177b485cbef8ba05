"""Fit one head type on features rows (:class:`shared.heads.Head`: sentence vectors, and with
``features="sentence+lexical"`` the lexical vectors beside them). Each fitter returns a
:class:`shared.heads.Head`, so the trainer evaluates a head through exactly the code the
classifier serves it with.

- ``logreg``: multinomial logistic regression (L2), full-batch L-BFGS in torch: the same
  objective as scikit-learn's, about 3x faster here (3.1 s vs 9.4 s on CLINC150 at the
  tolerance where scikit-learn reaches the same F1; ``bench/head_quality.py``).
- ``mlp``: one hidden ReLU layer, dropout, label smoothing, AdamW with a one-cycle schedule.
- ``xgboost``: gradient-boosted trees (hist), early stopping on a stratified 10% split (on
  data too small for one, a quarter of the rounds on every row).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from shared.contracts.embeddings import FeatureSet
from shared.heads import Head, HeadType


@dataclass(frozen=True)
class FitSpec:
    """Everything a fit needs besides the data; stored with the version as ``params``."""

    kind: HeadType
    features: FeatureSet = "sentence"  # what the rows ``x`` hold
    balanced: bool = False  # class weights inversely proportional to class frequency
    seed: int = 0
    threads: int = 0
    logreg_c: float = 10.0
    mlp_hidden: int = 512
    mlp_epochs: int = 15
    mlp_dropout: float = 0.3
    xgb_rounds: int = 200
    xgb_depth: int = 6

    def params(self) -> dict[str, Any]:
        common: dict[str, Any] = {"kind": self.kind, "features": self.features,
                                  "balanced": self.balanced, "seed": self.seed}
        specific: dict[str, dict[str, Any]] = {
            "logreg": {"C": self.logreg_c},
            "mlp": {"hidden": self.mlp_hidden, "epochs": self.mlp_epochs,
                    "dropout": self.mlp_dropout},
            "xgboost": {"max_rounds": self.xgb_rounds, "max_depth": self.xgb_depth}}
        return common | specific[self.kind]


def class_weights(y: np.ndarray, n_classes: int, balanced: bool) -> np.ndarray:
    if not balanced:
        return np.ones(n_classes, dtype=np.float32)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    return (len(y) / (n_classes * np.maximum(counts, 1))).astype(np.float32)


def fit(spec: FitSpec, x: np.ndarray, y: np.ndarray, labels: list[str], *,
        embedder_model: str, start: Head | None = None) -> tuple[Head, dict[str, Any]]:
    """Fit a head; returns it with fit facts (seconds, iterations, rounds...). ``start``: a
    logistic regression head on (mostly) the same rows to start from, which saves iterations
    and leads to the same optimum (the objective is convex)."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    began = time.perf_counter()
    x = flush_tiny(np.ascontiguousarray(x, dtype=np.float32))
    if spec.kind == "logreg":
        head, facts = _logreg(spec, x, y, labels, start)
    else:
        head, facts = {"mlp": _mlp, "xgboost": _xgboost}[spec.kind](spec, x, y, labels)
    head.embedder_model, head.features = embedder_model, spec.features
    head.embedder_dim = x.shape[1] // (2 if spec.features == "sentence+lexical" else 1)
    return head, facts | {"fit_seconds": round(time.perf_counter() - began, 3)}


def flush_tiny(x: np.ndarray) -> np.ndarray:
    """``x`` with values below 1e-30 set to 0. They carry nothing (MiniLM's two constant
    dimensions hold ~1e-37), but their products are subnormal floats, which the CPU computes
    many times slower: they made a logistic regression fit on CLINC150 3x slower (14.8 s ->
    5.2 s on 768 inputs, bench/RESULTS.md)."""
    return np.where(np.abs(x) < 1e-30, np.float32(0), x)


def _empty_head(kind: HeadType, labels: list[str]) -> Head:
    return Head(kind=kind, labels=list(labels), embedder_model="", embedder_dim=0)


def _logreg(spec: FitSpec, x: np.ndarray, y: np.ndarray, labels: list[str],
            start: Head | None) -> tuple[Head, dict[str, Any]]:
    xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    weights = torch.from_numpy(class_weights(y, len(labels), spec.balanced))
    linear = torch.nn.Linear(x.shape[1], len(labels))
    with torch.no_grad():
        if start is None:
            linear.weight.zero_()
            linear.bias.zero_()
        else:
            linear.weight.copy_(torch.from_numpy(start.layers[0][0].T))
            linear.bias.copy_(torch.from_numpy(start.layers[0][1]))
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1, max_iter=300, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6,
                                  tolerance_change=1e-9)
    n = len(x)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(xs), ys, weight=weights, reduction="sum")
        loss = (loss + (linear.weight ** 2).sum() / (2 * spec.logreg_c)) / n
        loss.backward()
        return loss

    optimizer.step(closure)
    head = _empty_head("logreg", labels)
    head.layers = [_layer(linear)]
    return head, {"iterations": int(optimizer.state[linear.weight]["n_iter"])}


def _mlp(spec: FitSpec, x: np.ndarray, y: np.ndarray, labels: list[str]
         ) -> tuple[Head, dict[str, Any]]:
    hidden = torch.nn.Linear(x.shape[1], spec.mlp_hidden)
    out = torch.nn.Linear(spec.mlp_hidden, len(labels))
    net = torch.nn.Sequential(torch.nn.Dropout(spec.mlp_dropout / 2), hidden, torch.nn.ReLU(),
                              torch.nn.Dropout(spec.mlp_dropout), out)
    batch = 256
    steps = spec.mlp_epochs * ((len(x) + batch - 1) // batch)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    weights = torch.from_numpy(class_weights(y, len(labels), spec.balanced))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(spec.seed)
    net.train()
    for _ in range(spec.mlp_epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            optimizer.zero_grad()
            loss_fn(net(xs[idx]), ys[idx]).backward()
            optimizer.step()
            schedule.step()
    head = _empty_head("mlp", labels)
    head.layers = [_layer(hidden), _layer(out)]
    return head, {"epochs": spec.mlp_epochs}


def _layer(linear: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    return (linear.weight.detach().numpy().T.copy(), linear.bias.detach().numpy().copy())


def _xgboost(spec: FitSpec, x: np.ndarray, y: np.ndarray, labels: list[str]
             ) -> tuple[Head, dict[str, Any]]:
    import xgboost
    from sklearn.model_selection import train_test_split

    weights = class_weights(y, len(labels), spec.balanced)[y]
    params = {"objective": "multi:softprob", "num_class": len(labels), "tree_method": "hist",
              "max_depth": spec.xgb_depth, "eta": 0.3, "subsample": 0.9,
              "eval_metric": "mlogloss", "nthread": spec.threads or 0, "seed": spec.seed}
    held_out = -(-len(y) // 10)
    if np.bincount(y).min() < 2 or held_out < len(labels):
        # Too few rows for a stratified early-stopping split: a quarter of the rounds, all rows.
        best = max(1, spec.xgb_rounds // 4)
        booster = xgboost.train(params, xgboost.DMatrix(x, label=y, weight=weights),
                                num_boost_round=best)
    else:
        tr, va = train_test_split(np.arange(len(y)), test_size=held_out, stratify=y,
                                  random_state=spec.seed)
        train = xgboost.DMatrix(x[tr], label=y[tr], weight=weights[tr])
        valid = xgboost.DMatrix(x[va], label=y[va], weight=weights[va])
        booster = xgboost.train(params, train, num_boost_round=spec.xgb_rounds,
                                evals=[(valid, "valid")], early_stopping_rounds=15,
                                verbose_eval=False)
        # Keep only the rounds up to the best one, so serving uses the early-stopped model.
        best = booster.best_iteration + 1
        booster = booster[:best]
    head = _empty_head("xgboost", labels)
    head.booster = bytes(booster.save_raw("ubj"))
    return head, {"rounds": best}
