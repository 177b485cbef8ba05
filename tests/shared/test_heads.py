"""Heads round-trip through their files (no pickle) and predict the same afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.fitters import FitSpec, fit
from shared.heads import HeadMismatch, Head


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    x = centers[y] + 0.3 * rng.normal(size=(90, 8)).astype(np.float32)
    return x.astype(np.float32), y


@pytest.mark.parametrize("kind", ["logreg", "mlp", "xgboost"])
def test_fit_save_load_predict(kind: str) -> None:
    x, y = _data()
    head, facts = fit(FitSpec(kind=kind, mlp_epochs=30, xgb_rounds=20), x, y, ["a", "b", "c"],  # type: ignore[arg-type]
                      embedder_model="test-model")
    assert facts["fit_seconds"] >= 0
    probs = head.predict_proba(x)
    assert probs.shape == (90, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == y).mean() > 0.9
    loaded = Head.from_files(head.to_files())
    assert "head.json" in head.to_files()
    np.testing.assert_allclose(loaded.predict_proba(x), probs, atol=1e-6)


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
        head.predict_proba(np.zeros((1, 16), dtype=np.float32))
