"""The in-scope score's fitting: prototypes per label and the abstain threshold's rule."""

from __future__ import annotations

import numpy as np

from services.trainer.scope import calibrate, prototypes


def test_prototypes_are_unit_centres_of_each_label_and_few() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [40, 40, 3])  # label 2 has fewer rows than prototypes
    x = rng.normal(size=(len(y), 16)).astype(np.float32) + 4 * np.eye(16, dtype=np.float32)[y]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    bank = prototypes(x, y, 3, seed=0)
    assert bank.shape == (8 + 8 + 3, 16)
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1, atol=1e-3)  # float16-rounded
    np.testing.assert_array_equal(bank[16:], x[y == 2].astype(np.float16).astype(np.float32))
    assert ((bank[:8] @ np.eye(16)[0]) > 0.5).all()  # label 0's centres lean its way
    np.testing.assert_array_equal(bank, prototypes(x, y, 3, seed=0))  # seeded


def test_the_threshold_costs_at_most_the_allowed_accuracy() -> None:
    """Abstaining on the lowest scores first; the report's cost is the one measured."""
    rng = np.random.default_rng(1)
    scores = rng.normal(size=2000)
    correct = rng.random(2000) < 1 / (1 + np.exp(-3 * scores))  # low scores are often wrong
    oos = rng.normal(-2, 1, size=500)
    result = calibrate(scores, correct, oos, max_accuracy_drop=0.01)
    kept = scores >= result["threshold"]
    assert result["in_scope_accuracy"] == round(float((correct & kept).mean()), 5)
    assert correct.mean() - (correct & kept).mean() <= 0.01 + 1e-9
    assert result["in_scope_abstain_rate"] == round(float(1 - kept.mean()), 5) > 0.05
    assert result["oos_recall"] == round(float((oos < result["threshold"]).mean()), 5) > 0.5
    assert result["oos_rows"] == 500
    nothing = calibrate(scores, correct, None, max_accuracy_drop=0.0)
    assert nothing["in_scope_accuracy"] == round(float(correct.mean()), 5)
    assert "oos_recall" not in nothing
