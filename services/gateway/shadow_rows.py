"""Shadow rows: a shadow candidate's predictions, logged beside the production rows they mirror.

Each shadow row has its own id, ``role`` ``shadow`` and ``shadow_of`` the production row's id,
and the same input, client and request id. Its timings are the embedding (shared) and the
shadow head's own; it has no ``total_ms``, since no caller waited for it. Rollups and reports
leave shadow rows out, so production figures stay production's.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.contracts.classify import ClassifyResponse


def shadow_records(result: ClassifyResponse,
                   production: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One shadow record per production record (none without a shadow answer)."""
    shadow = result.shadow
    if shadow is None:
        return []
    return [row | {"id": uuid.uuid4().hex, "role": "shadow", "shadow_of": row["id"],
                   "model_version": shadow.version, "head_type": shadow.head_type,
                   "label": p.label, "probability": p.probability,
                   "top_k": {"top": [[s.label, s.probability] for s in p.top]},
                   "abstained": p.abstained, "head_ms": shadow.head_ms, "total_ms": None}
            for row, p in zip(production, shadow.predictions, strict=True)]
