"""The rollout policy's decisions and statistics (pure: no database)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.candidate_policy import Figures, decide, non_inferiority_p, wilson
from shared.contracts.rollout import Candidate, Policy


def candidate(mode: str = "canary", **policy: Any) -> Candidate:
    return Candidate(version=2, mode=mode, share=0.1,
                     policy=Policy.model_validate(policy) if policy else None)


def test_wilson_interval_matches_the_published_values() -> None:
    low, high = wilson(5, 8) or (0, 0)
    assert (round(low, 4), round(high, 4)) == (0.3057, 0.8632)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) is None


def test_non_inferiority_p_value() -> None:
    # Equal accuracies and no margin: the evidence is balanced.
    assert non_inferiority_p((80, 100), (80, 100), 0.0) == pytest.approx(0.5)
    # A margin makes equal accuracies look not worse; a much worse candidate never does.
    # p~ = 801 / 1002 on both sides; z = 0.05 / sqrt(2 p~ (1 - p~) / 1002) = 2.795
    assert non_inferiority_p((800, 1000), (800, 1000), 0.05) == pytest.approx(0.0026, abs=1e-5)
    assert non_inferiority_p((60, 100), (90, 100), 0.02) > 0.99
    # 100 % on both sides stays defined (Agresti-Caffo adds one success and one failure).
    assert 0 < non_inferiority_p((50, 50), (50, 50), 0.0) < 1


def test_no_policy_or_too_few_feedback_rows_waits() -> None:
    figures = Figures((199, 200), (150, 200))
    assert decide(candidate(), figures).action == "wait"
    waiting = decide(candidate(promote_after=300), figures)
    assert (waiting.action, waiting.reason) == ("wait", "200 feedback rows of 300")


def test_promotes_when_shown_not_worse_and_waits_when_not() -> None:
    better = decide(candidate("shadow", promote_after=200), Figures((190, 200), (180, 200)))
    assert better.action == "promote" and "one-sided p = " in better.reason
    worse = decide(candidate("shadow", promote_after=200), Figures((150, 200), (180, 200)))
    assert worse.action == "wait" and worse.reason.startswith("not shown yet")
    # Production without feedback: nothing to compare with.
    assert decide(candidate(promote_after=10), Figures((10, 10), (0, 0))).action == "wait"


def test_a_canary_passing_its_bounds_is_withdrawn() -> None:
    policy: dict[str, Any] = {"max_error_rate": 0.02, "max_p99_ms": 500, "min_requests": 50}
    errors = decide(candidate(**policy), Figures((0, 0), (0, 0), requests=95, failures=5))
    assert errors.action == "withdraw"
    assert errors.reason == "error rate 5.00% over 100 requests > max 2.00%"
    slow = decide(candidate(**policy), Figures((0, 0), (0, 0), requests=100, p99_ms=812.4))
    assert (slow.action, slow.reason) == ("withdraw",
                                          "p99 latency 812 ms over 100 requests > max 500 ms")
    unloaded = decide(candidate(**policy), Figures((0, 0), (0, 0), load_failures=1))
    assert (unloaded.action, unloaded.reason) == ("withdraw", "its head failed to load")
    fine = decide(candidate(**policy), Figures((0, 0), (0, 0), requests=100, failures=1,
                                               p99_ms=120.0))
    assert fine.action == "wait"


def test_bounds_wait_for_enough_requests_and_spare_shadows() -> None:
    policy: dict[str, Any] = {"max_error_rate": 0.02, "max_p99_ms": 500, "min_requests": 50}
    few = Figures((0, 0), (0, 0), requests=10, failures=5, p99_ms=9000.0)
    assert decide(candidate(**policy), few).action == "wait"
    failing = Figures((0, 0), (0, 0), requests=100, failures=50, load_failures=3,
                      p99_ms=9000.0)
    assert decide(candidate("shadow", **policy), failing).action == "wait"


def test_policy_fields_are_checked() -> None:
    for bad in ({"alpha": 0.7}, {"max_error_rate": 1.5}, {"promote_after": 0},
                {"max_p99_ms": 0}, {"promote_afer": 10}):
        with pytest.raises(ValueError):
            Policy.model_validate(bad)
