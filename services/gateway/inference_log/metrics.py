"""Prometheus metrics of the inference log (summed over gunicorn workers by ``/metrics``).

``appended + direct = shipped + quarantined + dropped + backlog`` once every process that
wrote has shipped: what the fault tests check.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter(
    "polyhead_inference_log_records", "Inference records by what happened to them: appended "
    "(to the local log), shipped (to the database), direct (the local log failed: written "
    "straight to the database), quarantined (refused by the database: in the dead-letter "
    "file), dropped (neither the local log nor the database took them).", ["outcome"])
ERRORS = Counter(
    "polyhead_inference_log_errors", "Inference-log failures by kind: database_down, "
    "database_error, local_write, torn (a frame a killed process left half-written), "
    "corrupt (a frame whose checksum failed), shipper (a bug; shipping went on).", ["kind"])
BACKLOG_RECORDS = Gauge("polyhead_inference_log_backlog_records",
                        "Records on local disk not yet in the database.",
                        multiprocess_mode="livesum")
BACKLOG_BYTES = Gauge("polyhead_inference_log_backlog_bytes",
                      "Bytes of local log not yet shipped.", multiprocess_mode="livesum")
OLDEST = Gauge("polyhead_inference_log_oldest_seconds",
               "Age of the oldest record not yet in the database (0: none waiting).",
               multiprocess_mode="livemax")

for outcome in ("appended", "shipped", "direct", "quarantined", "dropped"):
    RECORDS.labels(outcome)
