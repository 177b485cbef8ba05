"""The ``candidate`` alias's rules, for :class:`shared.registry.Registry`: which version may
be a model's candidate, its columns (policy included), since when it runs, and withdrawing it
(recorded in ``alias_events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.contracts.rollout import Candidate, Policy
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
    previous = of_model(model)
    if previous is not None:
        model.candidate_version = model.candidate_mode = model.candidate_share = None
        model.candidate_policy = None
        s.add(AliasEvent(model_id=model.id, alias="candidate", from_version=previous.version,
                         to_version=None, action="withdraw", actor=actor, reason=reason))
    return previous


def candidate_of(version: int | None, mode: str | None, share: float | None,
                 policy: dict[str, Any] | None = None) -> Candidate | None:
    """The candidate a model row's ``candidate_*`` columns hold, if any."""
    if version is None or mode not in ("shadow", "canary"):
        return None
    return Candidate(version=version, mode=mode, share=share or 1.0,
                     policy=Policy.model_validate(policy) if policy else None)


def of_model(model: Model) -> Candidate | None:
    """The candidate of a model row, with its policy."""
    return candidate_of(model.candidate_version, model.candidate_mode, model.candidate_share,
                        model.candidate_policy)


def assign(model: Model, candidate: Candidate) -> None:
    """Point the model row's candidate alias at ``candidate`` (its policy included)."""
    model.candidate_version, model.candidate_mode, model.candidate_share = (
        candidate.version, candidate.mode, candidate.share)
    model.candidate_policy = candidate.policy.model_dump() if candidate.policy else None


def terms(candidate: Candidate) -> str:
    """The candidate's share and policy, for the alias history: ``share 0.1, policy
    promote_after 200, max_error_rate 0.02`` (a policy's defaults left out)."""
    rules = candidate.policy.model_dump(exclude_defaults=True) if candidate.policy else {}
    return f"share {candidate.share:g}" + (", policy " + ", ".join(
        f"{k} {v:g}" for k, v in rules.items()) if rules else "")


def started_at(s: Session, model: Model, version: int) -> datetime | None:
    """When ``version`` became the model's candidate this time (a later change of its mode,
    share or policy does not restart it); None if it is not the candidate."""
    events = s.execute(select(AliasEvent.to_version, AliasEvent.from_version,
                              AliasEvent.created_at)
                       .where(AliasEvent.model_id == model.id, AliasEvent.alias == "candidate")
                       .order_by(AliasEvent.id.desc()).limit(100)).all()
    start = None
    for to_version, from_version, created_at in events:
        if to_version != version:
            break
        start = created_at
        if from_version != version:
            break
    return start
