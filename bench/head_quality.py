"""Head ideas on frozen all-MiniLM-L6-v2 embeddings of CLINC150, measured offline.

Embeds train / test / oos_* once with the embedder's own in-process backend (its default
settings, normalised texts) and caches the features rows, [sentence | lexical], in
``bench/.cache/`` (keyed by the texts: delete the folder to embed with another backend or
model). Most ideas use the sentence vectors alone; ``lexical`` compares them with the whole
rows (what the trainer fits on since heads format 4) and ``trainer`` runs the trainer's own
selection on the whole rows;
then fits candidate heads and out-of-scope scores on those arrays and prints one JSON line per
idea, and last one summary line. Thresholds are chosen from training data only (out-of-fold
predictions, plus ``oos_train``/``oos_val`` where the idea uses out-of-scope rows), never from
``oos_test``.

    .venv/bin/python bench/head_quality.py [--only logreg,mlp,...]
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from services.trainer.in_scope import nonsense_texts, prototypes

DATA = ROOT / "data" / "clinc150"
CACHE = ROOT / "bench" / ".cache"
SPLITS = ("train", "test", "oos_train", "oos_val", "oos_test", "nonsense", "mashes")


# Keyboard mashes a user might type to try a head: never used to choose anything.
MASHES = ("asdfgh qwerty", "zxcvbnm", "qwertyuiop asdf", "jkjkjk", "fghfgh dfgdfg", "lkjhg",
          "aaaaaa", "hjkl hjkl", "sdfsdf", "xcvb nmnm")


def rows(split: str) -> tuple[list[str], list[str]]:
    """A CLINC150 split's texts and labels; ``nonsense`` (the trainer's random letter strings)
    and ``mashes`` are texts without labels."""
    if split in ("nonsense", "mashes"):
        texts = nonsense_texts() if split == "nonsense" else list(MASHES)
        return texts, [""] * len(texts)
    with open(DATA / f"{split}.csv", newline="", encoding="utf-8") as f:
        pairs = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    return [t for t, _ in pairs], [label for _, label in pairs]


def load_embeddings() -> dict[str, tuple[np.ndarray, list[str]]]:
    """{split: (features rows, labels)}, embedded once and cached by the texts' digest."""
    from shared.text import clean, normalize

    out: dict[str, tuple[np.ndarray, list[str]]] = {}
    backend = None
    CACHE.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        texts, labels = rows(split)
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = CACHE / f"{split}-{digest}-sentence+lexical.npy"
        if not path.exists():
            if backend is None:
                from services.embedder.backends import load_backend
                from shared.settings import EmbedderSettings
                backend = load_backend(EmbedderSettings(concurrent_batches=1))
            lower = backend.info.lowercase
            prepared = [normalize(clean(t), lowercase=lower) for t in texts]
            vectors = np.concatenate([backend.features(backend.tokenize(prepared[i:i + 128]))
                                      for i in range(0, len(prepared), 128)])
            np.save(path, vectors.astype(np.float32))
        out[split] = (np.load(path), labels)
    return out


# Experiments ---------------------------------------------------------------------------------
RESULTS: list[dict] = []


def emit(idea: str, **figures: object) -> None:
    line = {"idea": idea} | {k: round(v, 4) if isinstance(v, float) else v
                             for k, v in figures.items()}
    RESULTS.append(line)
    print(json.dumps(line), flush=True)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def logreg_logits(x, y, n, c=10.0, balanced=False, features="sentence"):
    from services.trainer.fitters import FitSpec, fit
    head, _ = fit(FitSpec(kind="logreg", features=features, logreg_c=c, balanced=balanced,
                          threads=0), x, y, [str(i) for i in range(n)], embedder_model="m")
    w, b = head.layers[0]
    return lambda q: q @ w + b


def mlp_logits(x, y, n, hidden=512, epochs=15, dropout=0.3, seed=0, features="sentence"):
    from services.trainer.fitters import FitSpec, fit
    head, _ = fit(FitSpec(kind="mlp", features=features, mlp_hidden=hidden, mlp_epochs=epochs,
                          mlp_dropout=dropout, seed=seed), x, y, [str(i) for i in range(n)],
                  embedder_model="m")
    (w0, b0), (w1, b1) = head.layers
    return lambda q: np.maximum(q @ w0 + b0, 0) @ w1 + b1


def lda_logits(x, y, n, shrink=0.1):
    """Gaussian classes with one shared covariance (shrunk towards its mean variance)."""
    means = np.stack([x[y == c].mean(0) for c in range(n)])
    centred = x - means[y]
    cov = centred.T @ centred / len(x)
    cov = (1 - shrink) * cov + shrink * np.trace(cov) / len(cov) * np.eye(len(cov))
    precision = np.linalg.inv(cov).astype(np.float32)
    w = precision @ means.T
    b = -0.5 * np.einsum("cd,dc->c", means, w)
    return lambda q: q @ w + b


def oof(fitter, x, y, n, folds=5, **kw):
    """Out-of-fold logits for every training row (the trainer's 5 stratified folds, seed 0)."""
    out = np.zeros((len(y), n), dtype=np.float32)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        out[test] = fitter(x[train], y[train], n, **kw)(x[test])
    return out


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


# Out-of-scope scores: higher means "more in-scope" -------------------------------------------

def logsumexp(z: np.ndarray) -> np.ndarray:
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, None]).sum(1))


class Space:
    """What the embedding space says about a text, from the training rows of a fit."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n: int, shrink: float = 0.1) -> None:
        self.x = x
        self.means = np.stack([x[y == c].mean(0) for c in range(n)])
        self.unit_means = self.means / np.linalg.norm(self.means, axis=1, keepdims=True)
        centred = x - self.means[y]
        cov = centred.T @ centred / len(x)
        cov = (1 - shrink) * cov + shrink * np.trace(cov) / len(cov) * np.eye(len(cov))
        self.precision = np.linalg.inv(cov).astype(np.float32)
        self.prototypes = prototypes(x, y, n, seed=0)  # the trainer's: 8 per label

    def centroid_cos(self, q: np.ndarray) -> np.ndarray:
        return (q @ self.unit_means.T).max(1)

    def knn_cos(self, q: np.ndarray, k: int = 5) -> np.ndarray:
        sims = q @ self.x.T
        return np.sort(np.partition(sims, -k, axis=1)[:, -k:], axis=1).mean(1)

    def prototype_cos(self, q: np.ndarray) -> np.ndarray:
        return (q @ self.prototypes.T).max(1)

    def mahalanobis(self, q: np.ndarray) -> np.ndarray:
        pq = q @ self.precision
        d = (np.einsum("nd,nd->n", pq, q)[:, None] - 2 * pq @ self.means.T
             + np.einsum("cd,dc->c", self.means, self.precision @ self.means.T)[None])
        return -d.min(1)


def scores(logits: np.ndarray, space: Space, q: np.ndarray) -> dict[str, np.ndarray]:
    p = softmax(logits)
    return {"maxprob": p.max(1), "energy": logsumexp(logits), "margin": np.sort(p, 1)[:, -1]
            - np.sort(p, 1)[:, -2], "centroid_cos": space.centroid_cos(q),
            "knn1_cos": space.knn_cos(q, 1), "knn3_cos": space.knn_cos(q, 3),
            "knn5_cos": space.knn_cos(q, 5), "prototype8_cos": space.prototype_cos(q),
            "mahalanobis": space.mahalanobis(q)}


def oof_scores(fitter, x, y, n, **kw) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Out-of-fold logits and scores for every training row."""
    logits = np.zeros((len(y), n), dtype=np.float32)
    parts: dict[str, np.ndarray] = {}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        logits[test] = fitter(x[train], y[train], n, **kw)(x[test])
        for name, s in scores(logits[test], Space(x[train], y[train], n), x[test]).items():
            parts.setdefault(name, np.zeros(len(y), dtype=np.float32))[test] = s
    return logits, parts


def drop_threshold(score: np.ndarray, correct: np.ndarray, drop: float) -> float:
    """Highest threshold whose accuracy (abstaining counted wrong) stays within ``drop``."""
    order = np.argsort(score)
    lost = np.concatenate([[0], np.cumsum(correct[order])])
    acc = (correct.sum() - lost) / len(score)  # abstain on the i lowest
    ok = np.nonzero(acc >= correct.mean() - drop - 1e-12)[0].max()
    return float(score[order][ok]) if ok < len(score) else float("inf")


def at(threshold: float, score_in: np.ndarray, correct_in: np.ndarray, score_oos: np.ndarray
       ) -> dict[str, float]:
    keep = score_in >= threshold
    return {"in_scope_accuracy": float((correct_in & keep).mean()),
            "in_scope_abstain": float(1 - keep.mean()),
            "oos_recall": float((score_oos < threshold).mean())}


def oracle_recall(score_in: np.ndarray, correct_in: np.ndarray, score_oos: np.ndarray,
                  accuracy: float = 0.95) -> float:
    """oos_test recall at the threshold giving test in-scope accuracy ``accuracy``: ranks the
    scores themselves (a threshold tuned on the test sets, never used to choose one)."""
    order = np.argsort(score_in)
    lost = np.concatenate([[0], np.cumsum(correct_in[order])])
    acc = (correct_in.sum() - lost) / len(score_in)
    ok = np.nonzero(acc >= accuracy)[0]
    if not len(ok):
        return 0.0
    t = score_in[order][min(ok.max(), len(score_in) - 1)]
    return float((score_oos < t).mean())


def weighted_f1(pred: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score
    return float(f1_score(y, pred, average="weighted", labels=np.unique(y), zero_division=0))


def timed(make, *args, **kw):
    start = time.perf_counter()
    out = make(*args, **kw)
    return out, time.perf_counter() - start


def classifiers(x, y, xt, yt, n) -> dict[str, np.ndarray]:
    """Test logits of each candidate head fitted on all of train.csv."""
    test: dict[str, np.ndarray] = {}
    plans: dict[str, tuple[Any, dict[str, Any]]] = {
        **{f"logreg C={c}": (logreg_logits, {"c": c}) for c in (3.0, 10.0, 30.0, 100.0)},
        **{f"mlp {h}": (mlp_logits, {"hidden": h}) for h in (512, 1024)},
        **{f"lda shrink={s}": (lda_logits, {"shrink": s}) for s in (0.05, 0.1, 0.2, 0.4)}}
    for name, (fitter, kw) in plans.items():
        model, seconds = timed(fitter, x, y, n, **kw)
        test[name] = model(xt)
        emit(name, accuracy=accuracy(test[name], yt), weighted_f1=weighted_f1(
            test[name].argmax(1), yt), fit_seconds=seconds)
    from sklearn.linear_model import LogisticRegression
    for tol in (1e-4, 1e-6):
        model, seconds = timed(LogisticRegression(C=10.0, tol=tol, max_iter=2000).fit, x, y)
        emit(f"scikit-learn logreg C=10 tol={tol}", accuracy=float(model.score(xt, yt)),
             weighted_f1=weighted_f1(model.predict(xt), yt), fit_seconds=seconds)
    return test


def blends(test: dict[str, np.ndarray], x, y, xt, yt, n) -> None:
    """Probability averages of two heads, and k-NN votes blended with a head."""
    p = {k: softmax(v) for k, v in test.items()}
    for a, b in (("logreg C=10.0", "mlp 512"), ("logreg C=10.0", "lda shrink=0.1"),
                 ("mlp 512", "lda shrink=0.1")):
        mix = (p[a] + p[b]) / 2
        emit(f"average {a} + {b}", accuracy=accuracy(mix, yt),
             weighted_f1=weighted_f1(mix.argmax(1), yt))
    mix3 = (p["logreg C=10.0"] + p["mlp 512"] + p["lda shrink=0.1"]) / 3
    emit("average logreg + mlp 512 + lda", accuracy=accuracy(mix3, yt),
         weighted_f1=weighted_f1(mix3.argmax(1), yt))
    sims = xt @ x.T
    for k in (5, 10, 20):
        top = np.argpartition(sims, -k, axis=1)[:, -k:]
        votes = np.zeros((len(xt), n), dtype=np.float32)
        np.add.at(votes, (np.repeat(np.arange(len(xt)), k), y[top].ravel()),
                  np.exp(np.take_along_axis(sims, top, 1) / 0.05).ravel())
        votes /= votes.sum(1, keepdims=True)
        emit(f"knn k={k}", accuracy=accuracy(votes, yt), weighted_f1=weighted_f1(
            votes.argmax(1), yt))
        for w in (0.3, 0.5):
            mix = (1 - w) * p["logreg C=10.0"] + w * votes
            emit(f"logreg + {w} knn k={k}", accuracy=accuracy(mix, yt),
                 weighted_f1=weighted_f1(mix.argmax(1), yt))


def features(test: dict[str, np.ndarray], x, y, xt, yt, n) -> None:
    """Inputs and heads beyond the plain ones: standardised or whitened embeddings, extra
    features for logistic regression, a linear SVM, MLP seeds and settings, and averages."""
    from sklearn.svm import LinearSVC

    def report(name: str, logits: np.ndarray, seconds: float | None = None) -> None:
        emit(name, accuracy=accuracy(logits, yt), weighted_f1=weighted_f1(logits.argmax(1), yt),
             **({} if seconds is None else {"fit_seconds": seconds}))

    def logreg_on(name: str, make, c: float) -> np.ndarray:
        model, seconds = timed(logreg_logits, make(x).astype(np.float32), y, n, c=c)
        logits = model(make(xt).astype(np.float32))
        report(f"logreg on {name} C={c}", logits, seconds)
        return logits

    mean, var = x.mean(0), x.var(0)
    spread = np.sqrt(var + 1e-2 * var.mean())  # three MiniLM dimensions are constant
    for c in (1.0, 3.0, 10.0):
        logreg_on("standardised embeddings", lambda q: (q - mean) / spread, c)
    values, vectors = np.linalg.eigh(np.cov((x - mean).T))
    whiten = vectors / np.sqrt(values + 1e-3 * values.max())
    for c in (0.1, 0.3, 1.0):
        logreg_on("PCA-whitened embeddings", lambda q: (q - mean) @ whiten, c)
    square = logreg_on("[x, 8 x*x]", lambda q: np.concatenate([q, 8 * q * q], 1), 10.0)
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(x.shape[1], 2048)).astype(np.float32), rng.uniform(0, 6.283, 2048)
    logreg_on("[x, 2048 random Fourier features]",
              lambda q: np.concatenate([q, 4 * np.sqrt(2 / 2048) * np.cos(q @ w + b)], 1), 10.0)
    bank = prototypes(x, y, n, seed=0)
    logreg_on("[x, exp((cosine to each prototype - 1) / 0.1)]",
              lambda q: np.concatenate([q, np.exp((q @ bank.T - 1) / 0.1)], 1), 10.0)
    svm, seconds = timed(LinearSVC(C=1.0).fit, x, y)
    report("linear SVM (squared hinge) C=1", svm.decision_function(xt), seconds)
    p = {k: softmax(v) for k, v in test.items()}
    seeds = [softmax(mlp_logits(x, y, n, seed=s)(xt)) for s in (1, 2)]
    for s, probs in zip((1, 2), seeds, strict=True):
        report(f"mlp 512 seed {s}", probs)
    three = (p["mlp 512"] + sum(seeds)) / 3
    report("average of mlp 512 seeds 0, 1, 2", three)
    report("average logreg + (mlp 512 seeds 0, 1, 2)", (p["logreg C=10.0"] + three) / 2)
    for kw in ({"epochs": 30}, {"epochs": 30, "dropout": 0.5}):
        model, seconds = timed(mlp_logits, x, y, n, **kw)
        probs = softmax(model(xt))
        report(f"mlp 512 {kw}", probs, seconds)
        report(f"average logreg + mlp 512 {kw}", p["logreg C=10.0"] + probs)
    report("average logreg + mlp 512 + logreg on [x, 8 x*x]",
           p["logreg C=10.0"] + p["mlp 512"] + softmax(square))


def combine(parts: dict[str, np.ndarray], ref: dict[str, np.ndarray], names: tuple[str, ...]
            ) -> np.ndarray:
    """Sum of scores, each standardised by its out-of-fold in-scope mean and spread."""
    return sum((parts[k] - ref[k].mean()) / ref[k].std() for k in names)


COMBOS = (("maxprob",), ("energy",), ("margin",), ("centroid_cos",), ("knn1_cos",),
          ("knn5_cos",), ("prototype8_cos",), ("mahalanobis",), ("maxprob", "mahalanobis"),
          ("maxprob", "knn1_cos"), ("maxprob", "knn3_cos"), ("maxprob", "knn5_cos"),
          ("maxprob", "prototype8_cos"), ("energy", "prototype8_cos"),
          ("maxprob", "centroid_cos"), ("energy", "mahalanobis"),
          ("maxprob", "knn5_cos", "mahalanobis"), ("maxprob", "energy", "mahalanobis"))


def out_of_scope(name: str, fitter, kw: dict, x, y, xt, yt, xo, n) -> None:
    """Each score (and standardised sums) with thresholds chosen on training rows alone."""
    logits_oof, oof = oof_scores(fitter, x, y, n, **kw)
    correct_oof = logits_oof.argmax(1) == y
    model, space = fitter(x, y, n, **kw), Space(x, y, n)
    lt = model(xt)
    test, oos = scores(lt, space, xt), scores(model(xo), space, xo)
    correct = lt.argmax(1) == yt
    for combo in COMBOS:
        s_oof, s_t, s_o = (combine(p, oof, combo) for p in (oof, test, oos))
        figures = {"oracle_recall_at_0.95": oracle_recall(s_t, correct, s_o)}
        for drop in (0.003, 0.005, 0.01, 0.02):
            t = drop_threshold(s_oof, correct_oof, drop)
            figures |= {f"drop {drop} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
        for q in (0.01, 0.02, 0.05):
            t = float(np.quantile(s_oof, q))
            figures |= {f"quantile {q} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
        emit(f"{name}: oos score {' + '.join(combo)}", **figures)


def rules(x, y, xt, yt, xo, n) -> None:
    """Ways to combine top probability and nearest-prototype cosine into one score."""
    logits_oof, oof = oof_scores(logreg_logits, x, y, n, c=10.0)
    model, space = logreg_logits(x, y, n, c=10.0), Space(x, y, n)
    lt = model(xt)
    terms = [np.stack([p["maxprob"], p["prototype8_cos"]], 1)
             for p in (oof, scores(lt, space, xt), scores(model(xo), space, xo))]
    mean, std = terms[0].mean(0), terms[0].std(0)
    ranked = [np.sort(terms[0][:, j]) for j in range(2)]

    def cdf(t: np.ndarray) -> np.ndarray:
        return np.stack([(np.searchsorted(ranked[j], t[:, j], side="right") + 1)
                         / (len(ranked[j]) + 1) for j in range(2)], 1)

    def logit(t: np.ndarray) -> np.ndarray:
        return np.stack([np.log(t[:, 0] / (1 - t[:, 0] + 1e-6)), t[:, 1]], 1)

    lmean, lstd = logit(terms[0]).mean(0), logit(terms[0]).std(0)
    ways = {"sum of z-scores": lambda t: ((t - mean) / std).sum(1),
            "min of z-scores": lambda t: ((t - mean) / std).min(1),
            "z(top probability) + 2 z(cosine)": lambda t: ((t - mean) / std) @ [1.0, 2.0],
            "sum of log empirical p-values (Fisher)": lambda t: np.log(cdf(t)).sum(1),
            "min of empirical p-values": lambda t: cdf(t).min(1),
            "sum of z-scores, top probability as log-odds":
                lambda t: ((logit(t) - lmean) / lstd).sum(1)}
    correct, correct_oof = lt.argmax(1) == yt, logits_oof.argmax(1) == y
    for name, way in ways.items():
        s_oof, s_t, s_o = (way(t) for t in terms)
        figures = {"oracle_recall_at_0.95": oracle_recall(s_t, correct, s_o)}
        for drop in (0.003, 0.005):
            t = drop_threshold(s_oof, correct_oof, drop)
            figures |= {f"drop {drop} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
        emit(f"combining top probability and prototype cosine: {name}", **figures)


def per_class(name: str, fitter, kw: dict, x, y, xt, yt, xo, n, combo: tuple[str, ...]) -> None:
    """Per-class thresholds: each score standardised among the rows predicted as that class."""
    logits_oof, oof = oof_scores(fitter, x, y, n, **kw)
    model, space = fitter(x, y, n, **kw), Space(x, y, n)
    lt, lo = model(xt), model(xo)
    s_oof = combine(oof, oof, combo)
    pred = logits_oof.argmax(1)
    mean = np.array([s_oof[pred == c].mean() if (pred == c).sum() > 1 else s_oof.mean()
                     for c in range(n)])
    std = np.array([s_oof[pred == c].std() if (pred == c).sum() > 1 else s_oof.std()
                    for c in range(n)]) + 1e-6
    s_t = (combine(scores(lt, space, xt), oof, combo) - mean[lt.argmax(1)]) / std[lt.argmax(1)]
    s_o = (combine(scores(lo, space, xo), oof, combo) - mean[lo.argmax(1)]) / std[lo.argmax(1)]
    s_oof = (s_oof - mean[pred]) / std[pred]
    correct, correct_oof = lt.argmax(1) == yt, pred == y
    figures = {"oracle_recall_at_0.95": oracle_recall(s_t, correct, s_o)}
    for drop in (0.005, 0.01):
        t = drop_threshold(s_oof, correct_oof, drop)
        figures |= {f"drop {drop} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
    emit(f"{name}: per-class thresholds on {' + '.join(combo)}", **figures)


def with_oos_rows(name: str, fitter, kw: dict, x, y, xt, yt, xo, xr, n) -> None:
    """``oos_train``/``oos_val`` rows (``xr``) known at training: an extra class, or a learned
    gate over the scores; thresholds from out-of-fold in-scope rows (and these rows)."""
    from sklearn.linear_model import LogisticRegression

    # (a) out-of-scope as one more class of the head; abstain when it wins or below threshold.
    xa = np.concatenate([x, xr])
    ya = np.concatenate([y, np.full(len(xr), n)])
    logits_oof, oof = oof_scores(fitter, xa, ya, n + 1, **kw)
    model = fitter(xa, ya, n + 1, **kw)
    lt, lo = model(xt), model(xo)
    inscope = ya < n
    for combo in (("maxprob",), ("maxprob", "mahalanobis")):
        s_oof = combine(oof, {k: v[inscope] for k, v in oof.items()}, combo)
        space = Space(xa, ya, n + 1)
        s_t = combine(scores(lt, space, xt), {k: v[inscope] for k, v in oof.items()}, combo)
        s_o = combine(scores(lo, space, xo), {k: v[inscope] for k, v in oof.items()}, combo)
        s_t[lt.argmax(1) == n], s_o[lo.argmax(1) == n] = -np.inf, -np.inf
        s_oof[logits_oof.argmax(1) == n] = -np.inf
        correct, correct_oof = lt.argmax(1) == yt, (logits_oof.argmax(1) == ya)[inscope]
        figures = {"no_threshold": at(-np.inf, s_t, correct, s_o),
                   "oracle_recall_at_0.95": oracle_recall(s_t, correct, s_o)}
        for drop in (0.003, 0.005, 0.01):
            t = drop_threshold(s_oof[inscope], correct_oof, drop)
            figures |= {f"drop {drop} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
        emit(f"{name}: oos rows as a class, {' + '.join(combo)}", **figures)

    # (b) a logistic gate over standardised scores: in-scope out-of-fold rows vs oos rows.
    logits_oof, oof = oof_scores(fitter, x, y, n, **kw)
    names = ("maxprob", "energy", "knn5_cos", "mahalanobis", "centroid_cos")
    folds_oos = {k: np.zeros(len(xr)) for k in names}
    for train, _ in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        m = fitter(x[train], y[train], n, **kw)
        for k, v in scores(m(xr), Space(x[train], y[train], n), xr).items():
            if k in names:
                folds_oos[k] += v / 5
    model, space = fitter(x, y, n, **kw), Space(x, y, n)
    lt = model(xt)
    feats = [np.stack([(p[k] - oof[k].mean()) / oof[k].std() for k in names], 1)
             for p in (oof, folds_oos, scores(lt, space, xt), scores(model(xo), space, xo))]
    gate = LogisticRegression(C=1.0, class_weight="balanced").fit(
        np.concatenate(feats[:2]), np.r_[np.ones(len(x)), np.zeros(len(xr))])
    s_oof, _, s_t, s_o = (gate.decision_function(f) for f in feats)
    correct, correct_oof = lt.argmax(1) == yt, logits_oof.argmax(1) == y
    figures = {"weights": dict(zip(names, np.round(gate.coef_[0], 3).tolist(), strict=True)),
               "oracle_recall_at_0.95": oracle_recall(s_t, correct, s_o)}
    for drop in (0.003, 0.005, 0.01):
        t = drop_threshold(s_oof, correct_oof, drop)
        figures |= {f"drop {drop} {k}": v for k, v in at(t, s_t, correct, s_o).items()}
    emit(f"{name}: logistic gate over scores", **figures)


def nonsense(x, y, xt, yt, xo, xn, xm, n) -> None:
    """Keyboard mashes: a third term or a gate from the cosine to embeddings of random letter
    strings (``xn``, the trainer's :func:`nonsense_texts`), on top of the kept score; the
    0.3% rule as the trainer applies it; ``xm``: the ``MASHES``, counted, never chosen on."""
    from services.trainer.in_scope import _own_gaps
    from shared.in_scope import nonsense_gap

    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(x, y)
    logits_oof, near = np.zeros((len(y), n), dtype=np.float32), np.zeros(len(y), np.float32)
    for train, test in folds:
        logits_oof[test] = logreg_logits(x[train], y[train], n)(x[test])
        near[test] = (x[test] @ prototypes(x[train], y[train], n, seed=0).T).max(1)
    model, bank = logreg_logits(x, y, n), prototypes(x, y, n, seed=0)
    terms = [np.stack([softmax(logits_oof).max(1), near], 1)] + [
        np.stack([softmax(model(q)).max(1), (q @ bank.T).max(1)], 1) for q in (xt, xo, xm)]
    mean, std = terms[0].mean(0), terms[0].std(0)
    base = [((t - mean) / std).sum(1) for t in terms]
    correct, correct_t = logits_oof.argmax(1) == y, model(xt).argmax(1) == yt

    def measure(name: str, s: list[np.ndarray], **extra: object) -> None:
        t = drop_threshold(s[0], correct, 0.003)
        emit(f"nonsense: {name}", oracle_recall_at_0_95=oracle_recall(s[1], correct_t, s[2]),
             **at(t, s[1], correct_t, s[2]), mashes_abstained=int((s[3] < t).sum()),
             mashes=len(xm), **extra)

    measure("none (the kept score)", base)
    queries = (x, xt, xo, xm)
    for k in (1, 5):
        junk = [np.sort(q @ xn.T, 1)[:, -k:].mean(1) for q in queries]
        z = [-(j - junk[0].mean()) / junk[0].std() for j in junk]
        for weight in (1.0, 0.5):
            measure(f"third term -{weight} z(mean cosine to {k} nearest random strings)",
                    [b + weight * t for b, t in zip(base, z, strict=True)])
    nearest = [near] + [t[:, 1] for t in terms[1:]]
    gaps = [nonsense_gap(q, xn, c) for q, c in zip(queries, nearest, strict=True)]
    typical = float(np.median(_own_gaps(xn.astype(np.float16).astype(np.float32), bank)))
    counted = correct & (gaps[0] <= typical)
    rules = {"0": 0.0, "0.05": 0.05, "largest of all held-out rows": float(gaps[0].max()),
             "largest of correctly answered held-out rows": float(gaps[0][correct].max()),
             "largest of correctly answered held-out rows below the median random string's "
             "(kept)": float(gaps[0][counted].max())}
    for rule, margin in rules.items():
        measure(f"gate: 5 nearest random strings nearer than the nearest prototype by > margin "
                f"{rule}", [np.where(g > margin, -100.0, b) for g, b in zip(gaps, base,
                                                                            strict=True)],
                margin=margin, test_in_scope_gated=float((gaps[1] > margin).mean()),
                oos_gated=float((gaps[2] > margin).mean()))


def lexical(rows: dict[str, np.ndarray], y, yt, n) -> None:
    """The sentence vectors alone against whole features rows [sentence | lexical] (the
    embedding layer's output, mean-pooled): logistic regression over C, an MLP, and the
    lexical half scaled (a second regularisation strength for it)."""
    x, xt = rows["train"], rows["test"]
    d = x.shape[1] // 2

    def report(name: str, logits: np.ndarray, seconds: float) -> None:
        emit(name, accuracy=accuracy(logits, yt), weighted_f1=weighted_f1(logits.argmax(1), yt),
             fit_seconds=seconds)

    for c in (3.0, 10.0, 30.0, 100.0):
        for features, width in (("sentence", d), ("sentence+lexical", 2 * d)):
            model, seconds = timed(logreg_logits, x[:, :width], y, n, c=c, features=features)
            report(f"{features}: logreg C={c}", model(xt[:, :width]), seconds)
    for scale in (0.5, 2.0):
        scaled = np.array([1.0] * d + [scale] * d, dtype=np.float32)
        model, seconds = timed(logreg_logits, x * scaled, y, n, c=10.0,
                               features="sentence+lexical")
        report(f"sentence+lexical, lexical x {scale}: logreg C=10.0", model(xt * scaled),
               seconds)
    for features, width in (("sentence", d), ("sentence+lexical", 2 * d)):
        model, seconds = timed(mlp_logits, x[:, :width], y, n, features=features)
        report(f"{features}: mlp 512", model(xt[:, :width]), seconds)


def trainer(name: str, x, y, labels, xt, yt, xo, xn, xm, x_oos=None, features="sentence",
            **options) -> None:
    """The trainer's own selection (services.trainer.selection) on these arrays, default
    settings: the served head scored on test.csv and oos_test.csv."""
    from services.trainer.selection import select_and_fit
    from shared.contracts.training import TrainOptions
    from shared.settings import TrainerSettings

    settings = TrainerSettings()
    selected, seconds = timed(
        select_and_fit, x, y, labels, x_oos, TrainOptions(**options), embedder_model="m",
        budget_s=settings.time_budget_s, threads=settings.threads,
        xgboost_max_classes=settings.xgboost_max_classes,
        max_accuracy_drop=settings.max_accuracy_drop, progress=lambda *_: None,
        x_nonsense=xn if options.get("threshold", "auto") in ("auto", "calibrate") else None,
        features=features)
    head = selected.head
    answers = head.predict(xt, top_k=1)
    pred = np.array([labels.index(a.label) if a.label is not None else -1 for a in answers])
    figures = {"head": selected.spec.kind, "fit_seconds": seconds,
               "in_scope_accuracy": float((pred == yt).mean()),
               "weighted_f1": weighted_f1(pred, yt),
               "in_scope_abstain": float((pred < 0).mean()), "threshold": head.threshold,
               "memory_bytes": head.nbytes}
    if head.threshold is not None:
        figures["oos_recall"] = float(np.mean([a.abstained for a in head.predict(xo, 1)]))
        figures["mashes_abstained"] = sum(a.abstained for a in head.predict(xm, 1))
    emit(f"trainer ({features}): {name}", **figures)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only",
                        default="classifiers,blends,features,oos,rules,per_class,oos_rows,"
                                "nonsense,lexical,trainer")
    only = parser.parse_args().only.split(",")
    rows = load_embeddings()
    dimension = rows["train"][0].shape[1] // 2
    data = {split: (r[:, :dimension], split_labels) for split, (r, split_labels) in rows.items()}
    whole = {split: r for split, (r, _) in rows.items()}
    labels = sorted(set(data["train"][1]))
    index = {label: i for i, label in enumerate(labels)}
    n = len(labels)
    x, y = data["train"][0], np.array([index[v] for v in data["train"][1]])
    xt, yt = data["test"][0], np.array([index[v] for v in data["test"][1]])
    xo = data["oos_test"][0]
    xr = np.concatenate([data["oos_train"][0], data["oos_val"][0]])
    test: dict[str, np.ndarray] = {}
    xn, xm = data["nonsense"][0], data["mashes"][0]
    if "classifiers" in only or "blends" in only or "features" in only:
        test = classifiers(x, y, xt, yt, n)
    if "blends" in only:
        blends(test, x, y, xt, yt, n)
    if "features" in only:
        features(test, x, y, xt, yt, n)
    if "nonsense" in only:
        nonsense(x, y, xt, yt, xo, xn, xm, n)
    if "oos" in only:
        out_of_scope("logreg", logreg_logits, {"c": 10.0}, x, y, xt, yt, xo, n)
    if "rules" in only:
        rules(x, y, xt, yt, xo, n)
    if "per_class" in only:
        per_class("logreg", logreg_logits, {"c": 10.0}, x, y, xt, yt, xo, n, ("maxprob",))
        per_class("logreg", logreg_logits, {"c": 10.0}, x, y, xt, yt, xo, n,
                  ("maxprob", "prototype8_cos"))
    if "lexical" in only:
        lexical(whole, y, yt, n)
    if "trainer" in only:
        w = whole
        wr = np.concatenate([w["oos_train"], w["oos_val"]])
        lex = {"features": "sentence+lexical"}
        trainer("train.csv", x, y, labels, xt, yt, xo, xn, xm)
        trainer("train.csv", w["train"], y, labels, w["test"], yt, w["oos_test"], w["nonsense"],
                w["mashes"], **lex)
        trainer("train.csv + oos rows", w["train"], y, labels, w["test"], yt, w["oos_test"],
                w["nonsense"], w["mashes"], x_oos=wr, oos_label="oos", **lex)
        trainer("train.csv, threshold=none", w["train"], y, labels, w["test"], yt,
                w["oos_test"], w["nonsense"], w["mashes"], threshold="none", **lex)
    if "oos_rows" in only:
        with_oos_rows("logreg", logreg_logits, {"c": 10.0}, x, y, xt, yt, xo, xr, n)
    print(json.dumps({"ideas": len(RESULTS), "machine": os.uname().nodename,
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
