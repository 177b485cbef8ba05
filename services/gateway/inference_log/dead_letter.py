"""Records the database refused, set aside with its error so the others keep flowing.

``GATEWAY_LOG_DIR/dead-letter.jsonl``: one JSON line each (when, the error, the record), for a
person to read, fix and send again; ``polyhead_inference_log_records_total{outcome=
"quarantined"}`` counts them.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import orjson

from shared.db.types import utcnow

log = logging.getLogger(__name__)


class DeadLetter:
    def __init__(self, path: Path) -> None:
        self.path = path

    def put(self, payload: bytes, error: str) -> None:
        """Append one refused record (its raw payload, as JSON if it is JSON)."""
        try:
            record = orjson.loads(payload)
        except orjson.JSONDecodeError:
            record = {"undecodable_base64": base64.b64encode(payload).decode()}
        line = orjson.dumps({"at": utcnow(), "error": error[:2000], "record": record}) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        log.error("inference log: record %s refused by the database (%s); set aside in %s",
                  record.get("id") if isinstance(record, dict) else "?", error[:200], self.path)
