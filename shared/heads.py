"""Classifier heads as data: what the trainer writes and the classifier serves.

A head is a small model over embeddings. It is stored as plain arrays (``weights.npz``: its
layers and, when it has an in-scope score, the score's prototypes and nonsense rows; loaded with
``allow_pickle=False``) or an XGBoost booster (``booster.ubj``) plus ``head.json``, never as a
pickle, so loading an artifact cannot run code. Serving needs only NumPy (and XGBoost for
XGBoost heads), not torch or scikit-learn.

A head's input is a features row (:mod:`shared.contracts.embeddings`): the sentence vector,
then (``features == "sentence+lexical"``, every head trained since format 4) the lexical
vector. A head takes the first :attr:`Head.input_dim` columns of the rows it is given, so a
head trained on sentence vectors alone (format 3 and before) is served the sentence part of
the same rows. The in-scope score (prototypes, nonsense gate) is always on the sentence part.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shared.contracts.embeddings import SENTENCE_LEXICAL, FeatureSet
from shared.embedding_identity import accepts
from shared.in_scope import InScopeScore

HeadType = Literal["logreg", "mlp", "xgboost"]
# 2 added the optional in-scope score ("scope"), 3 its optional nonsense gate, 4 the input
# ``features`` and the label of each scope prototype; 1 to 3 load (as sentence heads)
FORMAT_VERSION = 4
READABLE_FORMATS = (1, 2, 3, 4)
FEATURE_SETS: tuple[FeatureSet, ...] = ("sentence", SENTENCE_LEXICAL)


class HeadMismatch(ValueError):
    """The head was trained on another embedder (model id or dimension) than the one serving."""


@dataclass(frozen=True)
class HeadPrediction:
    """One text's answer from a head (the gateway's API ``Prediction`` adds an inference id)."""

    label: str | None  # None when the head abstains (out of scope)
    probability: float  # of the top label
    top: list[tuple[str, float]]
    abstained: bool


@dataclass
class Head:
    kind: HeadType
    labels: list[str]
    embedder_model: str
    embedder_dim: int  # the sentence vector's length
    # Dense heads: (weight, bias) per layer, ReLU between layers; logreg has one layer.
    layers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    booster: bytes | None = None  # XGBoost heads: the booster in UBJSON
    # Abstain below this: on the scope's score when there is a scope, else on the top
    # probability (a threshold the user fixed, or a head saved before scopes existed).
    threshold: float | None = None
    in_scope_score: InScopeScore | None = None
    # shared.embedding_identity of the training vectors; None: saved before identities
    # existed, taken as the exact (fp32) embeddings of embedder_model.
    embedder_identity: str | None = None
    features: FeatureSet = "sentence"  # what the head was trained on
    # The label (index) of each scope prototype; None: saved before format 4 (sentence heads)
    prototype_labels: np.ndarray | None = None
    _xgb: Any = field(default=None, repr=False, compare=False)

    @property
    def input_dim(self) -> int:
        """How many leading columns of a features row the head takes."""
        return self.embedder_dim * (2 if self.features == SENTENCE_LEXICAL else 1)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """The columns of ``x`` (features rows, or sentence vectors alone) this head takes."""
        x = np.asarray(x, dtype=np.float32)
        if (x.ndim != 2 or x.shape[1] not in (self.embedder_dim, 2 * self.embedder_dim)
                or x.shape[1] < self.input_dim):
            raise HeadMismatch(f"expected {self.features} rows of {self.input_dim} values "
                               f"({self.embedder_dim}-d embeddings), got {x.shape}")
        return x[:, :self.input_dim]

    def sentence(self, x: np.ndarray) -> np.ndarray:
        """The sentence vectors of rows ``x``: what the in-scope score measures."""
        return self.inputs(x)[:, :self.embedder_dim]

    def prototype_owners(self) -> np.ndarray:
        """The label index of each scope prototype: stored since format 4; before, the label
        the head predicts for it (its prototypes are centres of that label's rows)."""
        if self.in_scope_score is None:
            raise ValueError("the head has no in-scope score, so no prototypes")
        if self.prototype_labels is not None:
            return self.prototype_labels
        return np.asarray(self.predict_proba(self.in_scope_score.prototypes).argmax(axis=1))

    def check_embedder(self, model: str, dim: int, identity: str | None = None) -> None:
        """Refuse vectors of another model, dimension or (when known) embedding identity."""
        if (model, dim) != (self.embedder_model, self.embedder_dim):
            raise HeadMismatch(
                f"head was trained on embeddings of {self.embedder_model} "
                f"({self.embedder_dim}-d) but the embedder serves {model} ({dim}-d); "
                "retrain the head against this embedder")
        if identity is not None and not accepts(self.embedder_identity, self.embedder_model,
                                                identity):
            trained = self.embedder_identity or f"{self.embedder_model} (fp32)"
            raise HeadMismatch(
                f"head was trained on {trained} embeddings but the embedder serves {identity}; "
                "retrain the head against this embedder or serve it with a matching backend")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of rows ``x`` (see :meth:`inputs`), shape (n, len(labels))."""
        x = self.inputs(x)
        if self.kind == "xgboost":
            return self._predict_xgboost(x)
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                np.maximum(h, 0, out=h)
        return softmax(h)

    def in_scope(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """The score the threshold applies to (higher: more in scope)."""
        if self.in_scope_score is None:
            return np.asarray(probs.max(axis=1))
        return self.in_scope_score.score(self.sentence(x), probs)

    def predict(self, x: np.ndarray, top_k: int = 3) -> list[HeadPrediction]:
        probs = self.predict_proba(x)
        k = min(top_k, len(self.labels))
        order = np.argsort(-probs, axis=1)[:, :k]
        scores = self.in_scope(x, probs) if self.threshold is not None else None
        out = []
        for i, (row, idx) in enumerate(zip(probs, order, strict=True)):
            best = float(row[idx[0]])
            abstain = scores is not None and bool(scores[i] < self.threshold)
            out.append(HeadPrediction(label=None if abstain else self.labels[idx[0]],
                                      probability=best, abstained=abstain,
                                      top=[(self.labels[j], float(row[j])) for j in idx]))
        return out

    def _predict_xgboost(self, x: np.ndarray) -> np.ndarray:
        import xgboost  # only XGBoost heads need it

        if self._xgb is None:
            booster = xgboost.Booster()
            booster.load_model(bytearray(self.booster or b""))
            booster.set_param({"nthread": 1})
            self._xgb = booster
        probs = self._xgb.inplace_predict(x)
        return np.asarray(probs, dtype=np.float32).reshape(len(x), len(self.labels))

    # Files -----------------------------------------------------------------------------------

    def to_files(self) -> dict[str, bytes]:
        meta = {"format_version": FORMAT_VERSION, "kind": self.kind, "labels": self.labels,
                "embedder_model": self.embedder_model, "embedder_dim": self.embedder_dim,
                "threshold": self.threshold, "layers": len(self.layers),
                "embedder_identity": self.embedder_identity, "cleaning": "shared.text.clean",
                "features": self.features, "input_dim": self.input_dim,
                "scope": self.in_scope_score.meta() if self.in_scope_score is not None else None}
        files = {"head.json": json.dumps(meta, indent=2).encode()}
        arrays: dict[str, Any] = {f"{name}{i}": a for i, (w, b) in enumerate(self.layers)
                                  for name, a in (("w", w), ("b", b))}
        if self.in_scope_score is not None:
            arrays["scope_prototypes"] = self.in_scope_score.prototypes.astype(np.float16)
            if self.in_scope_score.nonsense is not None:
                arrays["scope_nonsense"] = self.in_scope_score.nonsense.astype(np.float16)
            if self.prototype_labels is not None:
                arrays["scope_prototype_labels"] = self.prototype_labels.astype(np.int32)
        if arrays:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            files["weights.npz"] = buf.getvalue()
        if self.booster is not None:
            files["booster.ubj"] = self.booster
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> Head:
        meta = json.loads(files["head.json"])
        if meta.get("format_version") not in READABLE_FORMATS:
            raise ValueError(f"unsupported head format {meta.get('format_version')}")
        features = meta.get("features", "sentence")  # before format 4: sentence vectors alone
        if features not in FEATURE_SETS:
            raise ValueError(f"unsupported head features {features!r}")
        layers, in_scope_score, owners = [], None, None
        if "weights.npz" in files:
            with np.load(io.BytesIO(files["weights.npz"]), allow_pickle=False) as z:
                layers = [(z[f"w{i}"].astype(np.float32), z[f"b{i}"].astype(np.float32))
                          for i in range(meta["layers"])]
                if meta.get("scope"):
                    nonsense = z["scope_nonsense"] if "scope_nonsense" in z.files else None
                    in_scope_score = InScopeScore.from_meta(meta["scope"], z["scope_prototypes"],
                                                            nonsense)
                if "scope_prototype_labels" in z.files:
                    owners = z["scope_prototype_labels"].astype(np.int64)
        return cls(kind=meta["kind"], labels=list(meta["labels"]),
                   embedder_model=meta["embedder_model"], embedder_dim=int(meta["embedder_dim"]),
                   layers=layers, booster=files.get("booster.ubj"), threshold=meta["threshold"],
                   embedder_identity=meta.get("embedder_identity"),
                   in_scope_score=in_scope_score,
                   features=features, prototype_labels=owners)

    @property
    def nbytes(self) -> int:
        """Memory of the served arrays (layers, scope prototypes; an XGBoost booster's size)."""
        layers = sum(w.nbytes + b.nbytes for w, b in self.layers)
        score = self.in_scope_score.nbytes if self.in_scope_score else 0
        return int(layers + len(self.booster or b"") + score)


HEAD_FILES = ("head.json", "weights.npz", "booster.ubj")


def softmax(logits: np.ndarray) -> np.ndarray:
    z: np.ndarray = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
