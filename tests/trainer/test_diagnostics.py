"""The training report's diagnostics on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.diagnostics import calibration, confused_pairs, tradeoff_curve

LABELS = ["alarm", "balance", "card"]


def test_confused_pairs_rank_by_count_with_examples() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([1, 1, 0, 0, 1, 0, 1, -1])  # -1: abstained, no confusion
    texts = [f"t{i}" for i in range(8)]
    pairs = confused_pairs(y_true, y_pred, LABELS, texts, top=3, examples=1)
    assert pairs == [
        {"true": "alarm", "predicted": "balance", "count": 2, "examples": ["t0"]},
        {"true": "balance", "predicted": "alarm", "count": 1, "examples": ["t3"]},
        {"true": "card", "predicted": "alarm", "count": 1, "examples": ["t5"]}]
    assert confused_pairs(y_true, y_true, LABELS, texts) == []


def test_calibration_gap_and_reliability_table() -> None:
    probs = np.array([[0.95, 0.05, 0.0], [0.9, 0.1, 0.0],  # bin 0.9-1.0: right, wrong
                      [0.35, 0.35, 0.3], [0.3, 0.2, 0.5]])  # bin 0.3-0.4; bin 0.5-0.6
    y_true = np.array([0, 1, 0, 2])
    result = calibration(probs, y_true, bins=10)
    # |0.5 - 0.925| * 2/4 + |1 - 0.35| * 1/4 + |1 - 0.5| * 1/4
    assert result["ece"] == pytest.approx(0.2125 + 0.1625 + 0.125)
    assert result["reliability"] == [
        {"from": 0.3, "to": 0.4, "count": 1, "confidence": 0.35, "accuracy": 1.0},
        {"from": 0.5, "to": 0.6, "count": 1, "confidence": 0.5, "accuracy": 1.0},
        {"from": 0.9, "to": 1.0, "count": 2, "confidence": 0.925, "accuracy": 0.5}]


def test_perfectly_calibrated_confidence_has_no_gap() -> None:
    probs = np.array([[1.0, 0.0, 0.0]] * 4)
    assert calibration(probs, np.zeros(4, int))["ece"] == 0.0


def test_tradeoff_curve_costs_and_catches() -> None:
    in_scores = np.array([0.2, 0.6, 0.8, 1.0])
    in_correct = np.array([False, True, True, True])
    oos = np.array([0.0, 0.4])
    curve = tradeoff_curve(in_scores, in_correct, oos, points=6)  # 0.0, 0.2, ..., 1.0
    assert [p["threshold"] for p in curve] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [p["in_scope_accuracy"] for p in curve] == [0.75, 0.75, 0.75, 0.75, 0.5, 0.25]
    assert [p["abstain_rate"] for p in curve] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.75]
    assert [p["oos_recall"] for p in curve] == [0.0, 0.5, 0.5, 1.0, 1.0, 1.0]
    without = tradeoff_curve(in_scores, in_correct, points=3)  # over 0.2 .. 1.0
    assert [p["threshold"] for p in without] == [0.2, 0.6, 1.0]
    assert all("oos_recall" not in p for p in without)


def test_the_lowest_threshold_keeps_every_text_whatever_the_rounding() -> None:
    # A minimum that rounding to 6 decimals would push up (-6.9203414 -> -6.920341).
    in_scores = np.array([-6.9203414, -1.0, 0.5, 2.0])
    curve = tradeoff_curve(in_scores, np.ones(4, dtype=bool), None, points=5)
    assert curve[0]["threshold"] <= in_scores.min()
    assert curve[0]["abstain_rate"] == 0.0 and curve[0]["in_scope_accuracy"] == 1.0
