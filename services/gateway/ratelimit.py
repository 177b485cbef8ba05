"""Per-key rate limits (the ``limits`` library): a key over its limit gets a 429.

Each key may carry its own limit (``polyhead keys create app --rate-limit 100/second``);
keys without one get ``GATEWAY_RATE_LIMIT`` (none by default). Counters live in Redis when the
gateway has ``REDIS_URL`` (shared by every gateway replica), in memory otherwise. Limits are a
safety valve, not a dependency: if Redis fails, requests pass and a warning is logged.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from services.gateway.auth import Client
from shared.errors import Overloaded

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, default: str | None, redis_url: str | None = None,
                 pause_s: float = 2.0) -> None:
        self.default = parse(default) if default else None
        options = {"socket_timeout": 0.1, "socket_connect_timeout": 0.1} if redis_url else {}
        self.storage = storage_from_string(redis_url or "memory://", **options)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.pause_s = pause_s
        self._skip_until = 0.0
        self._parsed: dict[str, RateLimitItem] = {}

    def check(self, client: Client) -> None:
        """Count one request for ``client``; raise :class:`Overloaded` when over its limit."""
        item = self._item(client.rate_limit) if client.rate_limit else self.default
        if item is None or time.monotonic() < self._skip_until:
            return
        try:
            if self.limiter.hit(item, "key", client.name):
                return
            reset = self.limiter.get_window_stats(item, "key", client.name).reset_time
        except Exception:  # noqa: BLE001 - counters unreachable: let traffic through
            log.warning("rate-limit storage failed; not limiting for %.0f s", self.pause_s,
                        exc_info=True)
            self._skip_until = time.monotonic() + self.pause_s
            return
        raise Overloaded(f"rate limit exceeded for key {client.name!r}: {item}",
                         retry_after_s=max(1.0, reset - time.time()))

    def _item(self, text: str) -> RateLimitItem:
        if text not in self._parsed:
            self._parsed[text] = parse(text)
        return self._parsed[text]
