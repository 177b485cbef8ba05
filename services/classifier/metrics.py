"""The classifier's Prometheus metrics (the HTTP latency histogram comes from shared):
predictions, abstentions and latency per model and version, and the version each model has
loaded in this process. The embedder client's circuit breaker is ``shared.metrics``'."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

PREDICTIONS = Counter("polyhead_classifier_predictions_total",
                      "Texts classified, by model and version.", ["model", "version"])
ABSTENTIONS = Counter("polyhead_classifier_abstentions_total",
                      "Texts below the head's threshold (label null), by model and version.",
                      ["model", "version"])
LATENCY = Histogram("polyhead_classifier_classify_seconds",
                    "One classify call (embedding and head), by model and version.",
                    ["model", "version"], buckets=LATENCY_BUCKETS)
# Under gunicorn, one series per worker (pid label): workers that disagree are still swapping.
LOADED_VERSION = Gauge("polyhead_classifier_loaded_version",
                       "The version of each model this process serves (0: none any more).",
                       ["model"], multiprocess_mode="liveall")

_models_seen: set[str] = set()


def record_classification(model: str, version: int, texts: int, abstained: int,
                          seconds: float) -> None:
    labels = (model, str(version))
    PREDICTIONS.labels(*labels).inc(texts)
    if abstained:
        ABSTENTIONS.labels(*labels).inc(abstained)
    LATENCY.labels(*labels).observe(seconds)


def record_loaded(versions: dict[str, int]) -> None:
    """Set the gauge to what is served now: ``{model: version}``."""
    for model in _models_seen - versions.keys():
        LOADED_VERSION.labels(model).set(0)
    for model, version in versions.items():
        LOADED_VERSION.labels(model).set(version)
    _models_seen.update(versions)
