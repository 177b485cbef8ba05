"""An inference record: one dict per prediction, made to fit its table before it is logged.

Every string is cut to its column's length at the entrance (a column's limit is read off the
table itself), so no value a caller controls can make the database refuse a record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String

from shared.db.models import Inference

Record = dict[str, Any]

COLUMNS = [c.name for c in Inference.__table__.columns]
LIMITS = {c.name: c.type.length for c in Inference.__table__.columns
          if isinstance(c.type, String) and c.type.length}


def fit(record: Record) -> Record:
    """The record with every string no longer than its column allows."""
    for name, limit in LIMITS.items():
        value = record.get(name)
        if isinstance(value, str) and len(value) > limit:
            record[name] = value[:limit]
    return record


def encode(record: Record) -> bytes:
    return orjson.dumps(record)


def decode(payload: bytes) -> Record:
    """A record as the database takes it (raises ``ValueError`` for a payload that is not)."""
    record: Record = orjson.loads(payload)
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise ValueError("not an inference record")
    for key in ("created_at", "feedback_at"):
        if isinstance(record.get(key), str):
            record[key] = datetime.fromisoformat(record[key])
    if not isinstance(record.get("created_at"), datetime):
        raise ValueError("inference record without created_at")
    record.setdefault("role", "production")  # logged before inference roles existed
    record.setdefault("shadow_of", None)
    return record
