"""The classifier's Prometheus metrics (the HTTP latency histogram comes from shared):
predictions, abstentions, latency and explanations per model and version, the version
each model has loaded in this process, features rows from the cache or the embedder, and
rollouts (candidate loaded, candidates that failed
to load, texts a candidate failed to predict, shadow predictions). The embedder client's
circuit breaker is ``shared.metrics``'."""

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
EXPLANATIONS = Counter("polyhead_classifier_explanations_total",
                       "Texts explained (not counted as predictions), by model and version.",
                       ["model", "version"])
FEATURE_ROWS = Counter("polyhead_classifier_feature_rows_total",
                       "Texts' features rows, by where they came from: this process's cache, or "
                       "the embedder (services/classifier/features.py).", ["source"])
# Under gunicorn, one series per worker (pid label): workers that disagree are still swapping.
LOADED_VERSION = Gauge("polyhead_classifier_loaded_version",
                       "The version of each model this process serves (0: none any more).",
                       ["model"], multiprocess_mode="liveall")

# Rollouts: the candidate each model has loaded, candidates that failed to load, shadow work.
CANDIDATE_VERSION = Gauge("polyhead_classifier_candidate_version",
                          "The shadow or canary version of each model this process has loaded "
                          "(0: none).", ["model"], multiprocess_mode="liveall")
CANDIDATE_LOAD_FAILURES = Counter("polyhead_classifier_candidate_load_failures_total",
                                  "Candidate heads that failed to load (production answers "
                                  "alone meanwhile), by model and version.", ["model", "version"])
CANDIDATE_PREDICT_FAILURES = Counter("polyhead_classifier_candidate_predict_failures_total",
                                     "Texts a shadow or canary head failed to predict (production "
                                     "answered them), by model and version.", ["model", "version"])
SHADOW_PREDICTIONS = Counter("polyhead_classifier_shadow_predictions_total",
                             "Texts a shadow head predicted (never returned), by model and "
                             "version; outcome ok or failed.", ["model", "version", "outcome"])

_models_seen: set[str] = set()


def record_classification(model: str, version: int, texts: int, abstained: int,
                          seconds: float) -> None:
    labels = (model, str(version))
    PREDICTIONS.labels(*labels).inc(texts)
    if abstained:
        ABSTENTIONS.labels(*labels).inc(abstained)
    LATENCY.labels(*labels).observe(seconds)


def record_explanation(model: str, version: int) -> None:
    EXPLANATIONS.labels(model, str(version)).inc()


def record_loaded(versions: dict[str, int]) -> None:
    """Set the gauge to what is served now: ``{model: version}``."""
    for model in _models_seen - versions.keys():
        LOADED_VERSION.labels(model).set(0)
    for model, version in versions.items():
        LOADED_VERSION.labels(model).set(version)
    _models_seen.update(versions)


def record_candidate(model: str, version: int) -> None:
    CANDIDATE_VERSION.labels(model).set(version)


def record_candidate_failure(model: str, version: int) -> None:
    CANDIDATE_LOAD_FAILURES.labels(model, str(version)).inc()


def record_candidate_predict_failure(model: str, version: int, texts: int) -> None:
    CANDIDATE_PREDICT_FAILURES.labels(model, str(version)).inc(texts)


def record_shadow(model: str, version: int, texts: int, ok: bool) -> None:
    SHADOW_PREDICTIONS.labels(model, str(version), "ok" if ok else "failed").inc(texts)
    if not ok:
        record_candidate_predict_failure(model, version, texts)
