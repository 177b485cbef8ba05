from __future__ import annotations

import pytest

from shared.decorators import retry


def test_retry_retries_then_succeeds_or_reraises() -> None:
    calls = []

    @retry(attempts=3, on=(ConnectionError,), first_wait_s=0.001)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "ok"

    assert flaky() == "ok" and len(calls) == 3

    @retry(attempts=2, on=(ConnectionError,), first_wait_s=0.001)
    def dead() -> None:
        calls.append(1)
        raise ConnectionError("down")

    calls.clear()
    with pytest.raises(ConnectionError, match="down"):
        dead()
    assert len(calls) == 2  # retried once, then the last error re-raised unchanged

    @retry(attempts=5, on=(ConnectionError,))
    def wrong() -> None:
        calls.append(1)
        raise ValueError("not retried")

    calls.clear()
    with pytest.raises(ValueError):
        wrong()
    assert len(calls) == 1


def test_retry_budget_caps_retries_to_a_share_of_calls() -> None:
    from shared.decorators import RetryBudget, retry

    budget = RetryBudget(ratio=0.1, burst=2)
    attempts_per_call: list[int] = []

    @retry(attempts=3, on=(ValueError,), first_wait_s=0, max_wait_s=0, budget=budget)
    def always_fails() -> None:
        attempts_per_call[-1] += 1
        raise ValueError("down")

    for _ in range(20):
        budget.earn()
        attempts_per_call.append(0)
        with pytest.raises(ValueError):
            always_fails()
    # The first call spends the 2 saved retries (3 attempts); then a retry must be earned:
    # ten calls earn 0.1 each, a hair under one token in floating point, so the 12th call
    # retries once. 20 calls make 3 retries, not the 40 an unbudgeted retry would.
    assert attempts_per_call[0] == 3
    assert attempts_per_call[1:11] == [1] * 10
    assert attempts_per_call[11] == 2
    assert sum(attempts_per_call) == 23
