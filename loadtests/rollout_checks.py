"""The promises of a rollout that ``RolloutUser`` (``rollout.py``) checks every answer against;
no Locust here, so tests import it without Locust's monkey-patching."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.gateway import PredictResponse
from shared.contracts.rollout import Candidate
from shared.contracts.training import ModelInfo
from shared.registry import labels_of


@dataclass(frozen=True)
class Rollout:
    """What the answers of one model may say while its configuration stays as read."""

    production: int | None
    candidate: Candidate | None
    shadow_only_labels: frozenset[str]

    @classmethod
    def of(cls, info: ModelInfo) -> Rollout:
        labels = {v.version: set(labels_of(v.metrics)) for v in info.versions}
        candidate = info.candidate
        shadow_only: set[str] = set()
        if candidate is not None and candidate.mode == "shadow":
            shadow_only = (labels.get(candidate.version, set())
                           - labels.get(info.production_version or 0, set()))
        return cls(info.production_version, candidate, frozenset(shadow_only))

    @property
    def canary(self) -> int | None:
        candidate = self.candidate
        return candidate.version if candidate is not None and candidate.mode == "canary" else None

    def violation(self, answer: PredictResponse, on_canary: bool) -> str | None:
        """What ``answer`` breaks (``on_canary``: this user got the canary before), if any."""
        if answer.role == "canary":
            if answer.version != self.canary:
                return f"canary answer from v{answer.version}; the canary is v{self.canary}"
            return None
        if answer.role != "production":
            return f"role {answer.role!r} answered (v{answer.version})"
        if answer.version != self.production:
            return f"production answer from v{answer.version}; production is v{self.production}"
        if on_canary and self.canary is not None:
            return f"a canary user got production v{answer.version}: not sticky"
        leaked = {p.label for p in answer.predictions if p.label} & self.shadow_only_labels
        if leaked:
            return f"the shadow's label {sorted(leaked)[0]!r} reached the caller"
        return None
