"""The in-scope score's fitting: prototypes per label, the abstain threshold's rule and the
nonsense gate (on real embeddings of a CLINC150 slice)."""

from __future__ import annotations

import numpy as np
import pytest

from services.embedder.backends import Backend
from services.trainer.in_scope import calibrate, nonsense_texts, prototypes
from services.trainer.selection import select_and_fit
from shared.contracts.training import TrainOptions
from shared.text import clean, normalize
from tests.conftest import clinc_rows

MASHES = ["asdfgh qwerty", "zxcvbnm", "qwertyuiop asdf", "sdfsdf jkl", "xcvb nmnm"]


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
    assert correct.mean() - (correct & kept).mean() <= result["cost_upper_bound"] <= 0.01


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``n`` in-scope texts and whether each is answered right (low: often wrong)."""
    scores = rng.normal(size=n)
    return scores, rng.random(n) < 1 / (1 + np.exp(-3 * scores - 2))


def test_the_bound_holds_on_texts_the_threshold_never_saw() -> None:
    """Calibrated on 3,000 held-out rows, the threshold abstains, and costs more than the bound
    on fresh texts of the same kind in about 5% of draws at most (the bound's confidence)."""
    rng = np.random.default_rng(0)
    exceeded, abstained = 0, 0.0
    for _ in range(200):
        scores, correct = draw(rng, 3000)
        threshold = calibrate(scores, correct, None, max_accuracy_drop=0.003)["threshold"]
        fresh, right = draw(rng, 20_000)
        exceeded += float(right.mean() - (right & (fresh >= threshold)).mean()) > 0.003
        abstained += float((fresh < threshold).mean()) / 200
    assert exceeded <= 0.08 * 200, exceeded
    assert abstained > 0.03  # it does abstain: on the low scores, mostly wrong answers


def test_too_few_rows_to_promise_the_bound_abstain_below_the_lowest_score_only() -> None:
    """640 rows (ten examples of 64 labels) cannot show a cost of at most 0.003 at 95%
    confidence for any threshold: even none of them abstained on leaves 0.0047 possible."""
    scores, correct = draw(np.random.default_rng(2), 640)
    result = calibrate(scores, correct, None, max_accuracy_drop=0.003)
    assert result["threshold"] == np.floor(scores.min() * 1e6) / 1e6
    assert (result["in_scope_abstain_rate"], result["cost_upper_bound"]) == (0.0, 0.00467)


def _embed(backend: Backend, texts: list[str]) -> np.ndarray:
    prepared = [normalize(clean(t), lowercase=backend.info.lowercase) for t in texts]
    return np.concatenate([backend.forward(backend.tokenize(prepared[i:i + 128]))
                           for i in range(0, len(prepared), 128)])


@pytest.mark.model
def test_keyboard_mashes_abstain_through_the_nonsense_gate(real_backend: Backend) -> None:
    """"qwerty" reads as a keyboard to the encoder, so a mash can sit near a label; the gate
    (random letter strings nearer than the data) stops it, and costs no held-out accuracy."""
    rows = clinc_rows(labels=20, per_label=30)
    labels = sorted({label for _, label in rows})
    x = _embed(real_backend, [t for t, _ in rows])
    y = np.array([labels.index(label) for _, label in rows])
    selected = select_and_fit(
        x, y, labels, None, TrainOptions(head="logreg"), embedder_model="m", budget_s=60,
        threads=2, xgboost_max_classes=0, max_accuracy_drop=0.003, progress=lambda *_: None,
        x_nonsense=_embed(real_backend, nonsense_texts()))
    head, threshold = selected.head, selected.report["threshold"]
    assert head.in_scope_score is not None and head.in_scope_score.nonsense is not None
    assert threshold["nonsense_gate"]["margin"] == round(head.in_scope_score.nonsense_margin, 5)
    assert threshold["in_scope_accuracy_without"] - threshold["in_scope_accuracy"] <= 0.003 + 1e-5
    assert [p.label for p in head.predict(_embed(real_backend, MASHES))] == [None] * len(MASHES)
    held_out = clinc_rows("test.csv", labels=20, per_label=10)
    answers = head.predict(_embed(real_backend, [t for t, _ in held_out]))
    assert np.mean([a.label == label for a, (_, label) in zip(answers, held_out, strict=True)]) \
        > 0.9
