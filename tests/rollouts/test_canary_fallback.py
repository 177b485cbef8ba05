"""A canary head that fails to predict: production answers the request instead, and the
failure is counted for the rollout watcher (real heads, fitted here)."""

from __future__ import annotations

import numpy as np

from services.classifier.heads import Served
from services.classifier.rollout import Route, predict
from services.trainer.fitters import FitSpec, fit
from shared.clients.embedder import Embeddings
from shared.heads import Head
from shared.rollout_failures import FailureCounts

LABELS = ["billing", "refund"]


def head(dimension: int) -> Head:
    rng = np.random.default_rng(dimension)
    x = rng.normal(size=(20, dimension)).astype(np.float32)
    fitted, _ = fit(FitSpec(kind="logreg"), x, np.arange(20) % 2, LABELS, embedder_model="m")
    return fitted


def test_a_failing_canary_leaves_the_answer_to_production() -> None:
    production, canary = Served("intents", 1, head(8)), Served("intents", 2, head(5))
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    embeddings = Embeddings(vectors=vectors, cached=[False] * 3, truncated=[False] * 3,
                            model="m", tokens=9)
    failures = FailureCounts()
    chosen, predictions, _, shadow = predict(Route(canary, "canary", fallback=production),
                                             embeddings, 2, failures)
    assert (chosen.answer.version, chosen.role, len(predictions), shadow) == (
        1, "production", 3, None)
    assert failures.take() == {("intents", 2, "predict"): 3}
    answered, _, _, _ = predict(Route(production, "production"), embeddings, 2, failures)
    assert (answered.role, failures.take()) == ("production", {})
