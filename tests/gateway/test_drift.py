"""Label drift's alarm: never raised by the noise of a small sample."""

from __future__ import annotations

import numpy as np
import pytest

from services.gateway.drift import ALARM, label_drift, min_answers


@pytest.mark.parametrize("labels", [2, 6, 30, 150])
def test_at_the_minimum_sample_noise_alone_rarely_raises_the_alarm(labels: int) -> None:
    """Answers drawn from the very shares of training: PSI passes the alarm in under 1 draw
    in 20 at ``min_answers``; at a fifth of it, far more often (why there is a minimum)."""
    rng = np.random.default_rng(labels)
    trained = {f"l{i}": int(n) for i, n in enumerate(rng.integers(20, 200, labels))}
    shares = np.array(list(trained.values()), dtype=float) / sum(trained.values())

    def alarms(n: int) -> float:
        raised = 0
        for _ in range(200):
            drawn = rng.multinomial(n, shares)
            drift = label_drift(trained, {f"l{i}": int(c) for i, c in enumerate(drawn) if c})
            raised += drift is not None and drift.psi > ALARM
        return raised / 200

    enough = min_answers(labels)
    assert alarms(enough) < 0.05
    if labels >= 6:
        assert alarms(enough // 5) > 0.2


def test_the_minimum_grows_with_the_labels() -> None:
    assert min_answers(1) == min_answers(2) == 30
    assert min_answers(6) < min_answers(30) < min_answers(150) < 1000
