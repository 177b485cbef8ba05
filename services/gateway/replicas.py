"""Which classifier replica serves which model, asked of the replicas themselves.

Every ``routes_refresh_s`` the gateway finds the replicas (:mod:`services.gateway.discovery`)
and asks each of them at once for its ``GET /v1/heads`` (which is also the probe an ejected
replica must pass). A request for a model goes to the replicas serving it in round-robin
order, the ones that outlier detection ejected (:mod:`services.gateway.outliers`) last: a
model is never left without a replica to try.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

import httpx

from services.gateway.discovery import replica_urls
from services.gateway.outliers import OutlierDetector

log = logging.getLogger(__name__)


class Replicas:
    def __init__(self, sources: list[str], http: httpx.AsyncClient, outliers: OutlierDetector,
                 *, discover: bool = True) -> None:
        self.sources, self.http, self.outliers, self.discover = sources, http, outliers, discover
        self.urls: list[str] = list(sources)  # the replicas found by the last refresh
        self.routes: dict[str, list[str]] = {}
        self._found: dict[str, list[str]] = {}  # source -> its replicas, as last resolved
        self._turn = itertools.count()
        self.refreshed = False

    async def refresh(self) -> None:
        found = await asyncio.gather(*(self._find(source) for source in self.sources))
        self.urls = list(dict.fromkeys(url for urls in found for url in urls))
        self.outliers.forget_all_but(self.urls)
        answers = await asyncio.gather(*(self._heads(url) for url in self.urls))
        routes: dict[str, list[str]] = {}
        for url, models in zip(self.urls, answers, strict=True):
            if models is None:  # cannot say now: keep its last known models for when it is back
                models = [model for model, urls in self.routes.items() if url in urls]
            for model in models:
                routes.setdefault(model, []).append(url)
        self.routes = routes
        self.refreshed = True

    async def _find(self, source: str) -> list[str]:
        if not self.discover:
            return [source]
        try:
            self._found[source] = await replica_urls(source)
        except OSError as exc:  # DNS is down or the name is gone: keep what it was
            log.warning("cannot resolve the classifier URL %s: %s", source, exc)
        return self._found.get(source, [source])

    async def _heads(self, url: str) -> list[str] | None:
        """The models ``url`` serves; None when it cannot say (a transport failure ejects it)."""
        try:
            response = await self.http.get(f"{url}/v1/heads", timeout=2.0)
            response.raise_for_status()
            models = [str(head["model"]) for head in response.json()["data"]]
            self.outliers.probe_succeeded(url)  # the probe an ejected replica must pass
            return models
        except httpx.TransportError as exc:
            self.outliers.transport_failed(url, exc)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("classifier replica %s could not list its heads: %r", url, exc)
        return None

    def models(self) -> list[str]:
        return sorted(self.routes)

    def ejected(self) -> list[str]:
        return [url for url in self.urls if self.outliers.is_ejected(url)]

    def order(self, model: str) -> list[str]:
        """Replicas to try for ``model``, best first: the others rotated, ejected ones last."""
        urls = self.routes.get(model, [])
        if not urls:
            return []
        start = next(self._turn) % len(urls)
        rotated = urls[start:] + urls[:start]
        serving = [url for url in rotated if not self.outliers.is_ejected(url)]
        return serving + [url for url in rotated if url not in serving]
