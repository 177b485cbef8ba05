"""A candidate's automatic moves, decided from its figures: pure functions, no database.

**Promotion** (``promote_after`` set): once the candidate has that many feedback rows, a
one-sided non-inferiority test on the difference of the two feedback accuracies,
H0: p_candidate - p_production <= -margin against H1: the difference is above -margin, with
the Agresti-Caffo adjustment (one success and one failure added to each side, which keeps the
test sane at 0 % or 100 % accuracy). The candidate is promoted when H0 is rejected at level
``alpha``: it is shown not worse than production by more than ``margin``. A shadow's rows are
paired with production's (same inputs); treating them as independent samples overstates the
variance, so the test is conservative there. Not shown (yet): the candidate keeps running.

**Withdrawal** (a canary only: a shadow never answers anyone): a head that failed to load, an
error rate above ``max_error_rate`` or a p99 latency above ``max_p99_ms``, judged over the
watch window once it holds ``min_requests`` requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from shared.contracts.rollout import Candidate


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None without rows."""
    if n == 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def non_inferiority_p(candidate: tuple[int, int], production: tuple[int, int],
                      margin: float) -> float:
    """One-sided p-value of H0: p_c - p_p <= -margin, from ``(correct, rows)`` of each side
    (Agresti-Caffo adjusted Wald z)."""
    (kc, nc), (kp, np_) = candidate, production
    pc, pp = (kc + 1) / (nc + 2), (kp + 1) / (np_ + 2)
    se = math.sqrt(pc * (1 - pc) / (nc + 2) + pp * (1 - pp) / (np_ + 2))
    return 1 - NormalDist().cdf((pc - pp + margin) / se)


@dataclass(frozen=True)
class Figures:
    """What the watcher measured. Feedback: ``(correct, rows)`` since the candidate started;
    requests, failures and p99: the canary's over the watch window."""

    candidate_feedback: tuple[int, int]
    production_feedback: tuple[int, int]
    requests: int = 0
    failures: int = 0
    load_failures: int = 0
    p99_ms: float | None = None


@dataclass(frozen=True)
class Decision:
    action: Literal["promote", "withdraw", "wait"]
    reason: str


def decide(candidate: Candidate, figures: Figures) -> Decision:
    """Withdraw a failing canary, promote a candidate shown not worse, else wait."""
    policy = candidate.policy
    if policy is None:
        return Decision("wait", "no policy")
    if candidate.mode == "canary":
        if figures.load_failures:
            return Decision("withdraw", "its head failed to load")
        attempts = figures.requests + figures.failures
        if attempts >= policy.min_requests:
            rate = figures.failures / attempts
            if policy.max_error_rate is not None and rate > policy.max_error_rate:
                return Decision("withdraw", f"error rate {rate:.2%} over {attempts} requests "
                                f"> max {policy.max_error_rate:.2%}")
            p99 = figures.p99_ms
            if policy.max_p99_ms is not None and p99 is not None and p99 > policy.max_p99_ms:
                return Decision("withdraw", f"p99 latency {p99:.0f} ms over {attempts} "
                                f"requests > max {policy.max_p99_ms:g} ms")
    kc, nc = figures.candidate_feedback
    kp, np_ = figures.production_feedback
    if policy.promote_after is None or nc < policy.promote_after or np_ == 0:
        return Decision("wait", f"{nc} feedback rows of {policy.promote_after or 'n/a'}")
    p = non_inferiority_p((kc, nc), (kp, np_), policy.margin)
    verdict = (f"accuracy {kc / nc:.2%} ({nc} rows) vs production {kp / np_:.2%} ({np_} rows), "
               f"margin {policy.margin:g}: one-sided p = {p:.4f}")
    if p < policy.alpha:
        return Decision("promote", f"not worse: {verdict} < alpha {policy.alpha:g}")
    return Decision("wait", f"not shown yet: {verdict}")
