"""A canary head that fails to predict: production answers the request instead, and the
failure is counted for the rollout watcher and in Prometheus, as a failing shadow's is (real
heads, fitted here)."""

from __future__ import annotations

import numpy as np
from prometheus_client import REGISTRY

from services.classifier.head_set import Served
from services.classifier.routing import Route, predict
from services.trainer.fitters import FitSpec, fit
from shared.candidate_failures import FailureCounts
from shared.clients.embedder import Embeddings
from shared.heads import Head

LABELS = ["billing", "refund"]


def head(dimension: int) -> Head:
    rng = np.random.default_rng(dimension)
    x = rng.normal(size=(20, dimension)).astype(np.float32)
    fitted, _ = fit(FitSpec(kind="logreg"), x, np.arange(20) % 2, LABELS, embedder_model="m")
    return fitted


def predict_failures(version: int) -> float:
    return REGISTRY.get_sample_value("polyhead_classifier_candidate_predict_failures_total",
                                     {"model": "intents", "version": str(version)}) or 0.0


def test_a_failing_canary_leaves_the_answer_to_production() -> None:
    production, canary = Served("intents", 1, head(8)), Served("intents", 2, head(5))
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    embeddings = Embeddings(vectors=vectors, cached=[False] * 3, truncated=[False] * 3,
                            model="m")
    failures, counted = FailureCounts(), predict_failures(2)
    chosen, predictions, _, shadow = predict(Route(canary, "canary", fallback=production),
                                             embeddings, 2, failures)
    assert (chosen.answer.version, chosen.role, len(predictions), shadow) == (
        1, "production", 3, None)
    assert failures.take() == {("intents", 2, "predict"): 3}
    assert predict_failures(2) == counted + 3
    answered, _, _, _ = predict(Route(production, "production"), embeddings, 2, failures)
    assert (answered.role, failures.take()) == ("production", {})


def test_a_failing_shadow_is_counted_and_never_fails_the_request() -> None:
    production, shadow = Served("intents", 1, head(8)), Served("intents", 3, head(5))
    vectors = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)
    embeddings = Embeddings(vectors=vectors, cached=[False] * 2, truncated=[False] * 2,
                            model="m")
    counted = predict_failures(3)
    chosen, predictions, _, answer = predict(Route(production, "production", shadow=shadow),
                                             embeddings, 2, FailureCounts())
    assert (chosen.role, len(predictions), answer) == ("production", 2, None)
    assert predict_failures(3) == counted + 2
