"""Canary assignment by hash: its share over 2,000 callers is within the binomial bounds of
the weight, and each caller always lands on the same side."""

from __future__ import annotations

import math

import pytest

from services.classifier.routing import in_share

KEYS = [f"caller-{i}" for i in range(2000)]


@pytest.mark.parametrize("weight", [0.01, 0.1, 0.5, 0.9])
def test_share_within_binomial_bounds_and_sticky(weight: float) -> None:
    chosen = [key for key in KEYS if in_share("intents", key, weight)]
    expected, sd = len(KEYS) * weight, math.sqrt(len(KEYS) * weight * (1 - weight))
    assert abs(len(chosen) - expected) <= 4 * sd  # p < 1e-4 for a fair hash
    assert chosen == [key for key in KEYS if in_share("intents", key, weight)]


def test_a_larger_weight_keeps_the_callers_already_in() -> None:
    small = {key for key in KEYS if in_share("intents", key, 0.1)}
    large = {key for key in KEYS if in_share("intents", key, 0.3)}
    assert small < large  # ramping a canary up moves no one back


def test_models_are_drawn_independently() -> None:
    intents = {key for key in KEYS if in_share("intents", key, 0.5)}
    spam = {key for key in KEYS if in_share("spam", key, 0.5)}
    overlap, sd = len(intents & spam), math.sqrt(2000 * 0.25 * 0.75)
    assert abs(overlap - 500) <= 4 * sd  # not the same callers in every model's canary


def test_full_share_takes_everyone_and_no_key_is_drawn_at_random() -> None:
    assert all(in_share("intents", key, 1.0) for key in KEYS)
    drawn = sum(in_share("intents", None, 0.5) for _ in range(2000))
    assert abs(drawn - 1000) <= 4 * math.sqrt(500)
