"""The heads this process serves, kept in step with the registry's ``production`` aliases.

:meth:`HeadSet.refresh` polls the registry (one cheap query) and loads any head whose
production version changed, then swaps it in with one dict assignment. A request holds the
:class:`Served` it started with, so a promotion or rollback never fails an in-flight request;
a head that fails to load leaves the previous version serving (and says so in the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from shared.artifacts import ArtifactStore
from shared.db.types import utcnow
from shared.errors import NotFound
from shared.heads import HEAD_FILES, Head
from shared.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    model: str
    version: int
    head: Head
    loaded_at: datetime = field(default_factory=utcnow)


class HeadSet:
    def __init__(self, registry: Registry, store: ArtifactStore,
                 models: set[str] | None = None) -> None:
        self.registry, self.store, self.models = registry, store, models
        self._served: dict[str, Served] = {}
        self.refreshed = False  # at least one refresh succeeded (readiness)

    def get(self, model: str) -> Served:
        served = self._served.get(model)
        if served is None:
            known = ", ".join(sorted(self._served)) or "none"
            raise NotFound(f"unknown model {model!r}; models served here: {known}",
                           param="model")
        return served

    def all(self) -> list[Served]:
        return sorted(self._served.values(), key=lambda s: s.model)

    def refresh(self) -> list[str]:
        """Load what changed in the registry; returns ``name vN`` for each head swapped in."""
        production = self.registry.production_versions()
        if self.models is not None:
            production = {n: v for n, v in production.items() if n in self.models}
        changed = []
        for name, version in production.items():
            current = self._served.get(name)
            if current is not None and current.version == version:
                continue
            try:
                row = self.registry.version(name, version)
                head = Head.from_files(self.store.read_version(row.artifact_uri, HEAD_FILES))
            except Exception:  # keep serving the old version; retry next refresh
                log.exception("could not load %s v%d; still serving %s", name, version,
                              f"v{current.version}" if current else "nothing")
                continue
            self._served = self._served | {name: Served(name, version, head)}
            changed.append(f"{name} v{version}")
        gone = set(self._served) - set(production)
        if gone:  # no production version any more (model deleted)
            self._served = {n: s for n, s in self._served.items() if n not in gone}
        self.refreshed = True
        return changed
