"""Decorators the services share: retrying (the seed practice, on tenacity), with a budget."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import tenacity

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class RetryBudget:
    """Retries as a share of calls (Finagle/Envoy style): each call earns ``ratio`` of a
    retry, each retry spends one, at most ``burst`` saved. When a dependency fails for
    everyone, retries stop at about ``ratio`` of the traffic instead of multiplying it."""

    def __init__(self, ratio: float = 0.2, burst: float = 10.0) -> None:
        self.ratio, self.burst = ratio, burst
        self._tokens = burst
        self._lock = threading.Lock()

    def earn(self) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + self.ratio)

    def spend(self) -> bool:
        with self._lock:
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def retry(*, attempts: int = 3, on: tuple[type[BaseException], ...] = (Exception,),
          first_wait_s: float = 0.05, max_wait_s: float = 2.0,
          budget: RetryBudget | None = None) -> Callable[[F], F]:
    """Retry ``on`` the given errors with jittered exponential backoff; sync or async.

    With a ``budget``, a retry happens only while the budget allows it. The last error is
    re-raised unchanged, so callers handle one error type either way.
    """
    condition: tenacity.retry_base = tenacity.retry_if_exception_type(on)
    if budget is not None:
        condition = condition & tenacity.retry_if_exception(lambda _: budget.spend())
    return cast(Callable[[F], F], tenacity.retry(
        stop=tenacity.stop_after_attempt(attempts),
        # Jitter of the same size as the first wait (tenacity's default is a whole second).
        wait=tenacity.wait_exponential_jitter(multiplier=first_wait_s, jitter=first_wait_s,
                                              max=max_wait_s),
        retry=condition,
        before_sleep=tenacity.before_sleep_log(log, logging.WARNING),
        reraise=True,
    ))
