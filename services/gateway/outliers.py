"""Outlier detection for the classifier replicas, in the manner of Envoy's.

A replica is ejected only on evidence that *it* is broken, never because one model fails or a
replica is busy:

- a transport failure (connection refused or reset, timeout) ejects it at once;
- ``eject_after_5xx`` answers in a row that are 5xx *without* ``Retry-After`` and not about one
  model (no ``param`` in the error) eject it;
- overload (429, or 503 with ``Retry-After``) and errors about one model or version count
  nothing: the request only goes on to the next replica.

An ejected replica sits out ``ejection_s`` times the number of its ejections in a row (at most
``max_ejection_s``), then must pass a probe (its ``GET /v1/heads``, asked at every routes
refresh) before it gets traffic again: a replica that is still down, or booting, never costs a
request its timeout. Back in rotation it is half-open: an answer that says nothing against it
ends the episode, one more failure ejects it again, for longer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

log = logging.getLogger(__name__)
EJECTIONS = Counter("polyhead_gateway_replica_ejections_total",
                    "Classifier replicas ejected by outlier detection", ["reason"])


@dataclass
class _Health:
    failures_in_a_row: int = 0  # 5xx without Retry-After, not about a model
    ejections_in_a_row: int = 0
    ejected_until: float = 0.0
    probed: bool = True  # False from an ejection until a probe after its time succeeds


class OutlierDetector:
    def __init__(self, *, ejection_s: float, max_ejection_s: float, eject_after_5xx: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ejection_s, self.max_ejection_s = ejection_s, max_ejection_s
        self.eject_after_5xx, self.clock = eject_after_5xx, clock
        self._health: dict[str, _Health] = {}

    def is_ejected(self, url: str) -> bool:
        health = self._health.get(url)
        return health is not None and (health.ejected_until > self.clock() or not health.probed)

    def probe_succeeded(self, url: str) -> None:
        """The replica answered its probe: back in rotation if its time out is over."""
        health = self._health.get(url)
        if health is not None and health.ejected_until <= self.clock():
            health.probed = True

    def responded(self, url: str) -> None:
        """An answer that says nothing against the replica (a 200, a 4xx, overload, an error
        about one model): the 5xx in a row start again, and a half-open episode ends."""
        health = self._health.get(url)
        if health is not None and not self.is_ejected(url):
            health.failures_in_a_row = health.ejections_in_a_row = 0

    def transport_failed(self, url: str, exc: Exception) -> None:
        self._eject(url, "transport", repr(exc))

    def answered_5xx(self, url: str, status: int) -> None:
        """Count a 5xx without ``Retry-After`` that is not about one model."""
        health = self._health.setdefault(url, _Health())
        health.failures_in_a_row += 1
        half_open = health.ejections_in_a_row > 0
        if half_open or health.failures_in_a_row >= self.eject_after_5xx:
            self._eject(url, "5xx", f"{health.failures_in_a_row} answers 5xx in a row "
                                    f"(last HTTP {status})")

    def forget_all_but(self, urls: list[str]) -> None:
        """Drop what is known of replicas that discovery no longer finds."""
        self._health = {url: self._health[url] for url in urls if url in self._health}

    def _eject(self, url: str, reason: str, why: str) -> None:
        health = self._health.get(url)
        if health is not None and health.ejected_until > self.clock():
            return  # requests in flight when it broke do not lengthen its time out
        health = self._health.setdefault(url, _Health())
        health.ejections_in_a_row += 1
        health.failures_in_a_row = 0
        seconds = min(self.ejection_s * health.ejections_in_a_row, self.max_ejection_s)
        health.ejected_until = self.clock() + seconds
        health.probed = False
        EJECTIONS.labels(reason).inc()
        log.warning("classifier replica %s ejected for %.0f s: %s", url, seconds, why)
