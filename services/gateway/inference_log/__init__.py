"""Every answered inference reaches the database: a local write-ahead log, then a shipper.

Before a prediction is answered, its records are appended to a segment file of this process
under ``GATEWAY_LOG_DIR`` (:mod:`.wal`); a background thread ships the segments in order to
the database (:mod:`.shipper`, :mod:`.sink`) in batches, idempotent by inference id, and
keeps the hourly rollups in the same transaction. Segments of dead processes are claimed and
shipped by a live one (:mod:`.folders`); records the database refuses go to a dead-letter
file (:mod:`.dead_letter`); everything is counted (:mod:`.metrics`). What each failure can
lose is in the README ("The inference log").
"""

from services.gateway.inference_log.appender import InferenceLog
from services.gateway.inference_log.sink import Sink, SinkDown, SinkRejected, SqlSink

__all__ = ["InferenceLog", "Sink", "SinkDown", "SinkRejected", "SqlSink"]
