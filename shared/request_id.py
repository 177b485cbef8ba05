"""One request id per request, accepted from the caller or made here, carried to every service.

The ASGI side is asgi-correlation-id's middleware (:mod:`shared.web.middleware`); this module
fixes the header name and a lenient validator (callers may send their own ids, not only UUIDs),
and gives the outgoing side (our HTTP clients) the current id.
"""

from __future__ import annotations

import re

from asgi_correlation_id import correlation_id

HEADER = "X-Request-ID"
MAX_LENGTH = 64  # the inference log's request_id column: an id that fits everywhere it goes
_SAFE_ID = re.compile(rf"^[A-Za-z0-9._:\-]{{1,{MAX_LENGTH}}}$")


def is_acceptable_id(value: str) -> bool:
    """Ids from callers are kept when short and printable; anything else is replaced by a new
    one (sent back in the response's ``X-Request-ID``) before anything logs or forwards it."""
    return bool(_SAFE_ID.match(value))


def current_request_id() -> str | None:
    return correlation_id.get()


def outgoing_headers() -> dict[str, str]:
    """Headers a client adds so the next service logs the same request id."""
    rid = correlation_id.get()
    return {HEADER: rid} if rid else {}
