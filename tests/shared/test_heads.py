"""Heads round-trip through their files (no pickle) and predict the same afterwards."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest

from services.trainer.fitters import FitSpec, fit
from shared.heads import Head, HeadMismatch, softmax
from shared.in_scope import NONSENSE_SCORE, InScopeScore


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    x = centers[y] + 0.3 * rng.normal(size=(90, 8)).astype(np.float32)
    return x.astype(np.float32), y


@pytest.mark.parametrize("kind", ["logreg", "mlp", "xgboost"])
def test_fit_save_load_predict(kind: str) -> None:
    x, y = _data()
    spec = FitSpec(kind=kind, mlp_epochs=30, xgb_rounds=20)  # type: ignore[arg-type]  # parametrized
    head, facts = fit(spec, x, y, ["a", "b", "c"], embedder_model="test-model")
    assert facts["fit_seconds"] > 0
    head.threshold = 0.6
    probs = head.predict_proba(x)
    assert probs.shape == (90, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == y).mean() > 0.9
    files = head.to_files()
    assert set(files) == {"head.json", "booster.ubj" if kind == "xgboost" else "weights.npz"}
    loaded = Head.from_files(files)
    assert (loaded.kind, loaded.labels, loaded.embedder_model, loaded.embedder_dim,
            loaded.threshold) == (kind, ["a", "b", "c"], "test-model", 8, 0.6)
    np.testing.assert_allclose(loaded.predict_proba(x), probs, atol=1e-6)
    assert loaded.predict(x) == head.predict(x)  # same labels, abstentions and top-k


def test_a_known_two_layer_head_predicts_by_hand() -> None:
    """ReLU between layers, softmax at the end, top-k ordered, abstaining below the threshold."""
    w0 = np.array([[1, -1], [0, 2]], dtype=np.float32)
    w1 = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    b1 = np.array([0, 0, 1], dtype=np.float32)
    head = Head(kind="mlp", labels=["x", "y", "z"], embedder_model="m", embedder_dim=2,
                layers=[(w0, np.zeros(2, dtype=np.float32)), (w1, b1)], threshold=0.6)
    x = np.array([[3, 0], [0, 2], [0, 0]], dtype=np.float32)
    # Hidden: relu([3, -3]) = [3, 0]; relu([0, 4]) = [0, 4]; [0, 0]. Logits add [0, 0, 1].
    expected = softmax(np.array([[3, 0, 1], [0, 4, 1], [0, 0, 1]], dtype=np.float32))
    np.testing.assert_allclose(head.predict_proba(x), expected, rtol=1e-6)
    first, second, third = head.predict(x, top_k=2)
    assert first.label == "x" and [label for label, _ in first.top] == ["x", "z"]
    assert second.label == "y" and not second.abstained
    assert third.abstained and third.label is None  # top probability e/(e+2) ~ 0.576 < 0.6
    assert third.top[0][0] == "z" and third.probability == pytest.approx(np.e / (np.e + 2))
    again = Head.from_files(head.to_files())
    for (w, b), (w2, b2) in zip(head.layers, again.layers, strict=True):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)
    assert again.predict(x, top_k=2) == [first, second, third]


def test_binary_logreg_and_threshold() -> None:
    x, y = _data()
    keep = y < 2
    head, _ = fit(FitSpec(kind="logreg"), x[keep], y[keep], ["no", "yes"], embedder_model="m")
    head.threshold = 0.999999
    predictions = head.predict(x[keep], top_k=5)
    assert len(predictions[0].top) == 2
    assert any(p.abstained and p.label is None for p in predictions)


def test_embedder_mismatch_is_refused() -> None:
    x, y = _data()
    head, _ = fit(FitSpec(kind="logreg"), x, y, ["a", "b", "c"], embedder_model="model-a")
    head.check_embedder("model-a", 8)
    with pytest.raises(HeadMismatch, match="retrain the head"):
        head.check_embedder("model-b", 8)
    with pytest.raises(HeadMismatch):
        head.predict_proba(np.zeros((1, 12), dtype=np.float32))


def _scoped_head() -> tuple[Head, np.ndarray]:
    x, y = _data()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head, _ = fit(FitSpec(kind="logreg"), x, y, ["a", "b", "c"], embedder_model="m")
    prototypes = np.stack([x[y == c].mean(0) for c in range(3)])
    unit = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
    head.in_scope_score = InScopeScore(prototypes=unit, center=(0.9, 0.95), scale=(0.05, 0.02))
    head.threshold = -3.0
    return head, x


def test_an_in_scope_score_round_trips_as_plain_arrays() -> None:
    """The scope (prototypes as float16, its standardisation in head.json) loads without
    pickle and scores exactly as before; a head saved before scopes existed still loads."""
    head, x = _scoped_head()
    files = head.to_files()
    with np.load(io.BytesIO(files["weights.npz"]), allow_pickle=False) as z:
        assert z["scope_prototypes"].dtype == np.float16 and z["scope_prototypes"].shape == (3, 8)
    meta = json.loads(files["head.json"])
    assert meta["format_version"] == 4 and meta["scope"]["prototypes"] == 3
    assert meta["scope"]["nonsense"] is None  # no gate: "scope_nonsense" is not written
    loaded = Head.from_files(files)
    assert loaded.in_scope_score is not None and loaded.threshold == -3.0
    probs = head.predict_proba(x)
    np.testing.assert_array_equal(loaded.in_scope(x, probs), head.in_scope(x, probs))
    assert loaded.predict(x) == head.predict(x)
    assert loaded.nbytes == head.nbytes == sum(a.nbytes for layer in head.layers for a in layer) \
        + 3 * 8 * 4

    format_2 = meta | {"format_version": 2,
                       "scope": {k: v for k, v in meta["scope"].items() if k != "nonsense"}}
    before_gate = Head.from_files(dict(files, **{"head.json": json.dumps(format_2).encode()}))
    assert before_gate.in_scope_score is not None and before_gate.in_scope_score.nonsense is None
    np.testing.assert_array_equal(before_gate.in_scope(x, probs), head.in_scope(x, probs))
    old = dict(files, **{"head.json": json.dumps(
        {k: v for k, v in meta.items() if k != "scope"} | {"format_version": 1}).encode()})
    legacy = Head.from_files(old)
    assert legacy.in_scope_score is None  # threshold on the top probability, as format 1 meant
    assert [p.abstained for p in legacy.predict(x)] == [False] * len(x)


def test_the_scope_abstains_far_from_the_training_data() -> None:
    """A confident head still abstains on a text unlike any training text: the nearest
    prototype is far, even though one label wins the softmax clearly."""
    head, x = _scoped_head()
    far = -x[:1]  # the opposite direction of a training row: confidently "not a", far from all
    [typical] = head.predict(x[:1])
    [odd] = head.predict(far)
    assert not typical.abstained and typical.label == "a"
    assert odd.abstained and odd.label is None and odd.top[0][1] > 0.5
    head.threshold = None  # threshold=none: never abstains
    assert not head.predict(far)[0].abstained


def test_the_nonsense_gate_round_trips_and_stops_what_is_nearer_nonsense() -> None:
    """A text nearer the stored nonsense rows than any prototype, by more than the margin,
    scores NONSENSE_SCORE and abstains, before and after a save and load."""
    head, x = _scoped_head()
    assert head.in_scope_score is not None
    rng = np.random.default_rng(1)  # stand-ins for embeddings of random letter strings:
    # unlike a, b, c:
    mash = -head.in_scope_score.prototypes.sum(axis=0) + 0.1 * rng.normal(size=(6, 8))
    mash /= np.linalg.norm(mash, axis=1, keepdims=True)
    mash /= np.linalg.norm(mash, axis=1, keepdims=True)
    head.in_scope_score = replace(head.in_scope_score, nonsense=mash, nonsense_margin=0.0)
    head.threshold = NONSENSE_SCORE / 2  # far below any typical score: only the gate abstains
    loaded = Head.from_files(head.to_files())
    assert loaded.in_scope_score is not None and loaded.in_scope_score.nonsense_margin == 0.0
    assert loaded.nbytes == head.nbytes == sum(a.nbytes for layer in head.layers for a in layer) \
        + 3 * 8 * 4 + 6 * 8 * 4
    for served in (head, loaded):
        probs = served.predict_proba(mash[:2])
        assert (served.in_scope(mash[:2], probs) == NONSENSE_SCORE).all()
        assert [p.abstained for p in served.predict(mash[:2])] == [True, True]
        assert not any(p.abstained for p in served.predict(x[:5]))


def _features_rows(x: np.ndarray, seed: int = 2) -> np.ndarray:
    """Rows [sentence | lexical] with ``x`` as the sentence part and unit noise beside it."""
    lexical = np.random.default_rng(seed).normal(size=x.shape).astype(np.float32)
    return np.hstack([x, lexical / np.linalg.norm(lexical, axis=1, keepdims=True)])


def test_a_features_head_takes_whole_rows_and_scores_scope_on_the_sentence_part() -> None:
    """Format 4: the head records its features and input length, fits on whole rows, keeps
    its prototypes (and their labels) on the sentence part; sentence vectors alone are refused."""
    head, x = _scoped_head()
    y = np.repeat(np.arange(3), 30)
    rows = _features_rows(x)
    wide, _ = fit(FitSpec(kind="logreg", features="sentence+lexical"), rows, y, head.labels,
                  embedder_model="m")
    assert (wide.embedder_dim, wide.input_dim, wide.layers[0][0].shape) == (8, 16, (16, 3))
    assert wide.in_scope_score is None
    wide.in_scope_score, wide.threshold = head.in_scope_score, head.threshold
    wide.prototype_labels = np.arange(3)
    meta = json.loads(wide.to_files()["head.json"])
    assert (meta["format_version"], meta["features"], meta["input_dim"]) == (
        4, "sentence+lexical", 16)
    loaded = Head.from_files(wide.to_files())
    assert loaded.features == "sentence+lexical" and loaded.prototype_owners().tolist() == [0, 1, 2]
    probs = loaded.predict_proba(rows)
    assert (probs.argmax(1) == y).mean() > 0.9
    assert head.in_scope_score is not None
    np.testing.assert_array_equal(loaded.in_scope(rows, probs), head.in_scope_score.score(x, probs))
    assert loaded.predict(rows) == wide.predict(rows)
    with pytest.raises(HeadMismatch, match="sentence\\+lexical"):
        loaded.predict_proba(x)


def test_a_format_3_head_is_served_the_sentence_part_of_features_rows() -> None:
    """A head saved before features existed loads as a sentence head and answers whole
    features rows exactly as it answered their sentence vectors."""
    head, x = _scoped_head()
    files = head.to_files()
    meta = json.loads(files["head.json"])
    format_3 = {k: v for k, v in meta.items() if k not in ("features", "input_dim")}
    old = Head.from_files(dict(files, **{"head.json": json.dumps(format_3 | {
        "format_version": 3}).encode()}))
    assert (old.features, old.input_dim, old.prototype_labels) == ("sentence", 8, None)
    rows = _features_rows(x)
    np.testing.assert_array_equal(old.predict_proba(rows), head.predict_proba(x))
    assert old.predict(rows) == head.predict(x)
    assert old.prototype_owners().tolist() == [0, 1, 2]  # predicted: each label's centre


def test_fits_flush_tiny_inputs_to_zero() -> None:
    """Values below 1e-30 (MiniLM's constant dimensions) become 0, so no product in a fit is
    a slow subnormal float; everything else is kept as it was."""
    from services.trainer.fitters import flush_tiny
    x = np.array([[1e-37, -2e-35, 0.5], [1e-29, -0.25, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(flush_tiny(x), np.array([[0, 0, 0.5], [1e-29, -0.25, 0]],
                                                           dtype=np.float32))


def test_heads_loaded_with_equal_nonsense_rows_share_one_read_only_copy() -> None:
    head, _ = _scoped_head()
    assert head.in_scope_score is not None
    rng = np.random.default_rng(3)
    mash = rng.normal(size=(6, 8)).astype(np.float32)
    head.in_scope_score = replace(head.in_scope_score, nonsense=mash / np.linalg.norm(
        mash, axis=1, keepdims=True))
    files = head.to_files()
    first, second = Head.from_files(files), Head.from_files(files)
    assert first.in_scope_score is not None and second.in_scope_score is not None
    shared = first.in_scope_score.nonsense
    assert shared is not None and shared is second.in_scope_score.nonsense
    assert not shared.flags.writeable
    # Prototypes are each head's own, and other nonsense rows are not the shared ones.
    assert first.in_scope_score.prototypes is not second.in_scope_score.prototypes
    other = replace(head.in_scope_score, nonsense=np.roll(mash, 1, axis=1))
    assert other.nonsense is not shared
    np.testing.assert_array_equal(first.predict_proba(mash), head.predict_proba(mash))
