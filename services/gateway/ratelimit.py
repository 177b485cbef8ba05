"""Rate limits (the ``limits`` library): per key, and on failed authentications per address.

Each key may carry its own limit (``polyhead keys create app --rate-limit 100/second``);
keys without one get ``GATEWAY_RATE_LIMIT`` (none by default). Keys that match nothing are
counted per client address (``GATEWAY_AUTH_FAILURE_LIMIT``; the address is the caller's behind
the proxies in ``GATEWAY_TRUSTED_PROXIES``): over that limit, such a key is answered 429 with
``Retry-After`` instead of 401. A valid key is never refused for what others sent, not even
from the same address: it is always looked up (one indexed query, its answer cached), so a
flood of bad keys behind one proxy or NAT locks no one out. Counters live in Redis when the
gateway has ``REDIS_URL`` (shared by every gateway replica), in memory otherwise. Limits are
a safety valve, not a dependency: if Redis fails, requests pass and a warning is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from pydantic import SecretStr

from services.gateway.auth import Client, KeyStore, UnknownKey
from shared.errors import Overloaded

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, default: str | None, redis_url: SecretStr | str | None = None,
                 pause_s: float = 2.0, auth_failures: str | None = "20/minute") -> None:
        self.default = parse(default) if default else None
        self.auth_failures = parse(auth_failures) if auth_failures else None
        if isinstance(redis_url, SecretStr):
            redis_url = redis_url.get_secret_value()
        options = {"socket_timeout": 0.1, "socket_connect_timeout": 0.1} if redis_url else {}
        self.storage = storage_from_string(redis_url or "memory://", **options)
        self.in_memory = not redis_url
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.pause_s = pause_s
        self._skip_until = 0.0
        self._parsed: dict[str, RateLimitItem] = {}

    def authenticate(self, keys: KeyStore, authorization: str | None, scope: str | None,
                     address: str) -> Client:
        """The caller's client (see :meth:`KeyStore.authenticate`) within the key's own rate
        limit; 429 for an unknown key from an address over the failed-authentication limit."""
        try:
            client = keys.authenticate(authorization, scope)
        except UnknownKey:
            failures = self.auth_failures
            if failures is not None and not self._hit(failures, "auth-failures", address):
                raise Overloaded(f"too many failed authentications from {address}; retry "
                                 "later", retry_after_s=self._retry_after(
                                     failures, "auth-failures", address)) from None
            raise
        self.check(client)
        return client

    def counts_in_memory(self, client: Client) -> bool:
        """Whether counting ``client``'s requests needs no I/O (no limit, or counters kept
        in this process): then it may run on the event loop."""
        limited = client.rate_limit is not None or self.default is not None
        return not limited or self.in_memory

    def check(self, client: Client) -> None:
        """Count one request for ``client``; raise :class:`Overloaded` when over its limit."""
        item = self._item(client.rate_limit) if client.rate_limit else self.default
        if item is None or self._hit(item, "key", client.name):
            return
        raise Overloaded(f"rate limit exceeded for key {client.name!r}: {item}",
                         retry_after_s=self._retry_after(item, "key", client.name))

    def _hit(self, item: RateLimitItem, *keys: str) -> bool:
        """Count one; False when over the limit (True while the storage is failing)."""
        return self._safely(lambda: self.limiter.hit(item, *keys))

    def _safely(self, call: Callable[[], bool]) -> bool:
        if time.monotonic() < self._skip_until:
            return True
        try:
            return call()
        except Exception:  # counters unreachable: let traffic through
            log.warning("rate-limit storage failed; not limiting for %.0f s", self.pause_s,
                        exc_info=True)
            self._skip_until = time.monotonic() + self.pause_s
            return True

    def _retry_after(self, item: RateLimitItem, *keys: str) -> float:
        """Seconds until the window lets one more through (at least 1)."""
        try:
            reset = self.limiter.get_window_stats(item, *keys).reset_time
        except Exception:  # noqa: BLE001 - the storage failed just now: a short pause
            return 1.0
        return max(1.0, reset - time.time())

    def _item(self, text: str) -> RateLimitItem:
        if text not in self._parsed:
            self._parsed[text] = parse(text)
        return self._parsed[text]
