"""The ``candidate`` alias's rules, for :class:`shared.registry.Registry`: which version may
be a model's candidate, and withdrawing it (recorded in ``alias_events``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.contracts.rollout import Candidate
from shared.db.models import AliasEvent, Model, ModelVersion
from shared.errors import Conflict, NotFound


def check(model: Model, rows: dict[int, ModelVersion], version: int) -> None:
    """404 unless ``version`` is one of ``rows`` (the model's versions); 409 unless the model
    has a production version, other than ``version`` and on the same embedder."""
    if version not in rows:
        raise NotFound(f"model {model.name!r} has no version {version}; versions: "
                       f"{sorted(rows)}", param="version")
    production = rows.get(model.production_version or 0)
    if production is None:
        raise Conflict(f"model {model.name!r} has no production version to set a candidate "
                       "beside; promote one", param="version")
    if version == production.version:
        raise Conflict(f"v{version} of {model.name!r} is already production", param="version")
    row = rows[version]
    if (row.embedder_model, row.embedder_dim) != (production.embedder_model,
                                                  production.embedder_dim):
        raise Conflict(f"v{version} of {model.name!r} was trained on {row.embedder_model} "
                       f"({row.embedder_dim}-d) but production v{production.version} on "
                       f"{production.embedder_model} ({production.embedder_dim}-d); a "
                       "candidate must read the same embedding", param="version")


def withdraw(s: Session, model: Model, actor: str, reason: str) -> Candidate | None:
    """Clear the candidate alias (and record it); the candidate there was, if any."""
    previous = candidate_of(model.candidate_version, model.candidate_mode, model.candidate_share)
    if previous is not None:
        model.candidate_version = model.candidate_mode = model.candidate_share = None
        s.add(AliasEvent(model_id=model.id, alias="candidate", from_version=previous.version,
                         to_version=None, action="withdraw", actor=actor, reason=reason))
    return previous


def candidate_of(version: int | None, mode: str | None, share: float | None) -> Candidate | None:
    """The candidate a model row's ``candidate_*`` columns hold, if any."""
    if version is None or mode not in ("shadow", "canary"):
        return None
    return Candidate(version=version, mode=mode, share=share or 1.0)
