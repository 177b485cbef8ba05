"""Which classifier replica serves which model, asked of the replicas themselves.

Every ``routes_refresh_s`` the gateway reads each replica's ``GET /v1/heads``. A request for a
model goes to the replicas serving it in round-robin order; a replica that fails is skipped
for ``dead_for_s`` (and tried again only when every other one has failed too).
"""

from __future__ import annotations

import itertools
import logging
import time

import httpx

log = logging.getLogger(__name__)


class Replicas:
    def __init__(self, urls: list[str], http: httpx.AsyncClient, dead_for_s: float) -> None:
        self.urls, self.http, self.dead_for_s = urls, http, dead_for_s
        self.routes: dict[str, list[str]] = {}
        self._dead_until: dict[str, float] = {}
        self._turn = itertools.count()
        self.refreshed = False

    async def refresh(self) -> None:
        routes: dict[str, list[str]] = {}
        for url in self.urls:
            try:
                response = await self.http.get(f"{url}/v1/heads", timeout=2.0)
                response.raise_for_status()
                heads = response.json()["data"]
            except (httpx.HTTPError, ValueError, KeyError):
                self.mark_dead(url)
                # Keep its last known models: if it comes back, it serves them again.
                for model, urls in self.routes.items():
                    if url in urls:
                        routes.setdefault(model, []).append(url)
                continue
            self._dead_until.pop(url, None)
            for head in heads:
                routes.setdefault(head["model"], []).append(url)
        self.routes = routes
        self.refreshed = True

    def models(self) -> list[str]:
        return sorted(self.routes)

    def alive(self) -> list[str]:
        now = time.monotonic()
        return [u for u in self.urls if self._dead_until.get(u, 0) <= now]

    def candidates(self, model: str) -> list[str]:
        """Replicas to try for ``model``, best first: live ones rotated, dead ones last."""
        urls = self.routes.get(model, [])
        if not urls:
            return []
        start = next(self._turn) % len(urls)
        rotated = urls[start:] + urls[:start]
        now = time.monotonic()
        live = [u for u in rotated if self._dead_until.get(u, 0) <= now]
        return live + [u for u in rotated if u not in live]

    def mark_dead(self, url: str) -> None:
        if self._dead_until.get(url, 0) <= time.monotonic():
            log.warning("classifier %s is failing; skipping it for %.0f s", url, self.dead_for_s)
        self._dead_until[url] = time.monotonic() + self.dead_for_s
