from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from shared.decorators import retry, timed

pytestmark = pytest.mark.anyio


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
        raise ConnectionError("down")

    with pytest.raises(ConnectionError, match="down"):
        dead()

    @retry(attempts=5, on=(ConnectionError,))
    def wrong() -> None:
        calls.append(1)
        raise ValueError("not retried")

    calls.clear()
    with pytest.raises(ValueError):
        wrong()
    assert len(calls) == 1


async def test_timed_observes_sync_and_async() -> None:
    histogram = Histogram("t_seconds", "test", registry=CollectorRegistry())

    @timed(histogram)
    def work() -> int:
        return 1

    @timed(histogram)
    async def async_work() -> int:
        return 2

    assert work() == 1 and await async_work() == 2
    counts = [s.value for s in histogram.collect()[0].samples if s.name == "t_seconds_count"]
    assert counts == [2]


def test_retry_budget_caps_retries_to_a_share_of_calls() -> None:
    from shared.decorators import RetryBudget, retry

    budget = RetryBudget(ratio=0.1, burst=2)
    attempts = 0

    @retry(attempts=3, on=(ValueError,), first_wait_s=0, max_wait_s=0, budget=budget)
    def always_fails() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("down")

    for _ in range(20):
        budget.earn()
        with pytest.raises(ValueError):
            always_fails()
    # 20 calls: 2 saved + 20 x 0.1 earned = 4 retries at most, not 40.
    assert 20 <= attempts <= 24
