"""The heads this process serves, kept in step with the registry's aliases.

Per model: the ``production`` version, the rollout candidate if the model has one (shadow or
canary, :mod:`shared.contracts.rollout`), and versions callers pinned, loaded on demand and
kept in a small LRU (``CLASSIFIER_PINNED_HEADS``), so memory stays bounded by production +
candidate + that many heads.

:meth:`HeadSet.refresh` polls the registry (one cheap query), loads any head whose production
or candidate version changed, then swaps it in with one dict assignment. A request holds the
:class:`Served` heads it started with, so a promotion, rollback or new candidate never fails an
in-flight request. A production head that fails to load leaves the previous version serving; a
candidate that fails leaves production answering alone, and the failure shows in
:attr:`HeadSet.failures` (readiness) and the metrics, and is counted in
:attr:`HeadSet.failure_counts`, written to ``candidate_failures`` at each refresh.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from services.classifier.metrics import record_candidate, record_candidate_failure
from shared import candidate_failures
from shared.artifacts import ArtifactStore
from shared.candidate_failures import FailureCounts
from shared.contracts.rollout import Candidate
from shared.db.types import utcnow
from shared.errors import NotFound, Unavailable
from shared.heads import HEAD_FILES, Head
from shared.intent_map import INTENT_MAP_FILE, IntentMap
from shared.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    model: str
    version: int
    head: Head
    loaded_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Rollout:
    """A loaded candidate: its head and how much traffic it sees."""

    served: Served
    candidate: Candidate


class HeadSet:
    def __init__(self, registry: Registry, store: ArtifactStore,
                 models: set[str] | None = None, pinned_heads: int = 8) -> None:
        self.registry, self.store, self.models = registry, store, models
        self.pinned_heads = pinned_heads
        self._served: dict[str, Served] = {}
        self._candidates: dict[str, Rollout] = {}
        self._pinned: OrderedDict[tuple[str, int], Served] = OrderedDict()
        self._pinned_lock = threading.Lock()
        # model -> its candidate that could not load (replaced, never mutated: readiness
        # reads it while a refresh runs)
        self.failures: dict[str, str] = {}
        self.refreshed = False  # at least one refresh succeeded (readiness)
        self.failure_counts = FailureCounts()  # candidates' failures, written at each refresh

    def get(self, model: str) -> Served:
        """The production head of ``model``; 404 naming the served models."""
        served = self._served.get(model)
        if served is None:
            known = ", ".join(sorted(self._served)) or "none"
            raise NotFound(f"unknown model {model!r}; models served here: {known}",
                           param="model")
        return served

    def candidate(self, model: str) -> Rollout | None:
        return self._candidates.get(model)

    def all(self) -> list[Served]:
        """The production heads, by model name."""
        return sorted(self._served.values(), key=lambda s: s.model)

    def pinned(self) -> list[tuple[str, int]]:
        """The pinned heads kept loaded, least recently used first."""
        with self._pinned_lock:
            return list(self._pinned)

    def loaded(self, model: str, version: int) -> Served | None:
        """``version`` of ``model`` if it is in memory (production, candidate or pinned)."""
        production, rollout = self.get(model), self._candidates.get(model)
        if production.version == version:
            return production
        if rollout is not None and rollout.served.version == version:
            return rollout.served
        with self._pinned_lock:
            served = self._pinned.get((model, version))
            if served is not None:
                self._pinned.move_to_end((model, version))
            return served

    def load_pinned(self, model: str, version: int) -> Served:
        """Load ``version`` of ``model`` (blocking: run it in a thread) and keep it among the
        pinned heads, dropping the least recently used beyond ``pinned_heads``. 404 naming the
        versions for one the registry does not have; 503 for one that fails to load."""
        self.get(model)  # served here at all?
        row = self.registry.version(model, version)
        try:
            served = Served(model, version, self._read(row.artifact_uri))
        except Exception:
            log.exception("could not load pinned %s v%d", model, version)
            raise Unavailable(f"model {model!r} v{version} could not be loaded; retry shortly",
                              param="version", retry_after_s=5) from None
        with self._pinned_lock:
            self._pinned[(model, version)] = served
            while len(self._pinned) > self.pinned_heads:
                self._pinned.popitem(last=False)
        return served

    def refresh(self) -> list[str]:
        """Load what changed in the registry; returns ``name vN`` for each head swapped in."""
        serving = self.registry.serving()
        if self.models is not None:
            serving = {n: s for n, s in serving.items() if n in self.models}
        changed = []
        for name, wanted in serving.items():
            current = self._served.get(name)
            if current is None or current.version != wanted.production:
                try:
                    head = self._load(name, wanted.production)
                except Exception:  # keep serving the old version; retry next refresh
                    log.exception("could not load %s v%d; still serving %s", name,
                                  wanted.production,
                                  f"v{current.version}" if current else "nothing")
                else:
                    self._served = self._served | {name: Served(name, wanted.production, head)}
                    changed.append(f"{name} v{wanted.production}")
            changed += self._refresh_candidate(name, wanted.candidate)
        for gone in set(self._served) - set(serving):  # no production version any more
            self._served = {n: s for n, s in self._served.items() if n != gone}
        for name in set(self._candidates) | set(self.failures):
            if name not in serving or serving[name].candidate is None:
                self._drop_candidate(name)
        self.refreshed = True
        candidate_failures.record(self.registry.sessions, self.failure_counts)
        return changed

    def _refresh_candidate(self, name: str, wanted: Candidate | None) -> list[str]:
        current = self._candidates.get(name)
        if wanted is None or (current is not None and current.candidate == wanted):
            return []
        if current is not None and current.served.version == wanted.version:
            self._candidates = self._candidates | {name: Rollout(current.served, wanted)}
            return [f"{name} v{wanted.version} ({wanted.mode} {wanted.share:g})"]
        try:
            head = self._load(name, wanted.version)
        except Exception:  # production answers alone; retry next refresh
            if self.failures.get(name) != f"v{wanted.version}":
                log.exception("could not load the %s candidate %s v%d; production answers "
                              "alone", wanted.mode, name, wanted.version)
                record_candidate_failure(name, wanted.version)
            self.failures = self.failures | {name: f"v{wanted.version}"}
            self.failure_counts.add(name, wanted.version, "load")
            self._drop_candidate(name, keep_failure=True)
            return []
        self._forget_failure(name)
        rollout = Rollout(Served(name, wanted.version, head), wanted)
        self._candidates = self._candidates | {name: rollout}
        record_candidate(name, wanted.version)
        return [f"{name} v{wanted.version} ({wanted.mode} {wanted.share:g})"]

    def _drop_candidate(self, name: str, *, keep_failure: bool = False) -> None:
        if name in self._candidates:
            self._candidates = {n: r for n, r in self._candidates.items() if n != name}
        if not keep_failure:
            self._forget_failure(name)
        record_candidate(name, 0)

    def _forget_failure(self, name: str) -> None:
        if name in self.failures:
            self.failures = {n: v for n, v in self.failures.items() if n != name}

    def intent_map(self, model: str, version: int) -> IntentMap | None:
        """The intent map of a version (read from its artifact at each call: only the review
        queue clusters with it), or None for a version saved without one. Blocking."""
        files = self.store.read_version(self.registry.version(model, version).artifact_uri,
                                        (INTENT_MAP_FILE,))
        return IntentMap.from_file(files[INTENT_MAP_FILE]) if files else None

    def _load(self, name: str, version: int) -> Head:
        return self._read(self.registry.version(name, version).artifact_uri)

    def _read(self, artifact_uri: str) -> Head:
        """The head at ``artifact_uri``, run once on a row of zeros: its first request does not
        pay for lazy set-up (XGBoost's import and booster), nor does a restarted replica's."""
        head = Head.from_files(self.store.read_version(artifact_uri, HEAD_FILES))
        head.predict(np.zeros((1, head.input_dim), dtype=np.float32))
        return head
