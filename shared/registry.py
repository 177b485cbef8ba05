"""The model registry: named models, numbered versions, the ``production`` alias and the
``candidate`` alias (one shadow or canary version at a time: :mod:`shared.candidates`).

Every move of an alias is an :class:`AliasEvent`; rollback replays the production ones as a
stack (each promotion pushes, each rollback pops), so rolling back twice from v3 goes to v2,
then v1. Used by the trainer (register, promote), the gateway (admin routes) and the classifier
(which versions to serve).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shared import candidates
from shared.contracts.rollout import Candidate, CandidateMove
from shared.contracts.training import AliasMove, ModelInfo, Version
from shared.db.models import AliasEvent, Model, ModelVersion
from shared.errors import Conflict, NotFound

PromotePolicy = Literal["if_not_worse", "always", "never"]


def should_promote(policy: PromotePolicy, candidate_f1: float | None,
                   production_f1: float | None, tolerance: float = 0.0) -> bool:
    """A new version goes live when the policy allows: ``if_not_worse`` compares CV weighted F1."""
    if policy == "never":
        return False
    if policy == "always" or production_f1 is None:
        return True
    return candidate_f1 is not None and candidate_f1 >= production_f1 - tolerance


def classes_of(metrics: dict[str, Any]) -> list[str]:
    """The classes a version answers, from its stored metrics (``class_counts``)."""
    return sorted(metrics.get("class_counts") or {})


def labels_of(metrics: dict[str, Any]) -> list[str]:
    """Every label a version was trained on: its classes and, if it learned from out-of-scope
    rows, their label (what a true label of one of its predictions may be)."""
    oos = metrics.get("oos_label")
    return sorted({*classes_of(metrics), *([oos] if oos else [])})


@dataclass(frozen=True)
class Serving:
    """What a classifier serves of one model: its production version and candidate, if any."""

    production: int
    candidate: Candidate | None


class Registry:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # Reads -----------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        with self.sessions() as s:
            models = s.scalars(select(Model).options(selectinload(Model.versions))
                               .order_by(Model.name)).all()
            return [_model_info(m) for m in models]

    def model(self, name: str) -> ModelInfo:
        with self.sessions() as s:
            return _model_info(self._get(s, name))

    def version(self, name: str, version: int | Literal["production"]) -> Version:
        with self.sessions() as s:
            model = self._get(s, name)
            number = model.production_version if version == "production" else version
            row = next((v for v in model.versions if v.version == number), None)
            if row is None:
                what = ("no production version" if version == "production"
                        else f"no version {version}")
                raise NotFound(f"model {name!r} has {what}; versions: "
                               f"{[v.version for v in model.versions]}", param="version")
            return _version(name, row)

    def serving(self) -> dict[str, Serving]:
        """name -> production version and candidate, for every model in production (one
        cheap query: the classifiers' poll)."""
        with self.sessions() as s:
            rows = s.execute(select(Model.name, Model.production_version,
                                    Model.candidate_version, Model.candidate_mode,
                                    Model.candidate_share)
                             .where(Model.production_version.is_not(None))).all()
            return {name: Serving(production, candidates.candidate_of(version, mode, share))
                    for name, production, version, mode, share in rows
                    if production is not None}

    def candidate_since(self, name: str) -> datetime | None:
        """Since when the model's running candidate has run (None: it has none); 404 for an
        unknown model."""
        with self.sessions() as s:
            model = self._get(s, name)
            if model.candidate_version is None:
                return None
            return candidates.started_at(s, model, model.candidate_version)

    def policies(self) -> dict[str, tuple[Candidate, datetime]]:
        """name -> candidate and since when, for every model whose candidate has a policy
        (the rollout watcher's poll)."""
        with self.sessions() as s:
            models = s.scalars(select(Model).where(Model.candidate_version.is_not(None))).all()
            found = {}
            for model in models:
                candidate = candidates.of_model(model)
                start = candidates.started_at(s, model, model.candidate_version or 0)
                if candidate is not None and candidate.policy is not None and start:
                    found[model.name] = (candidate, start)
            return found

    # Writes ----------------------------------------------------------------------------------

    def register(self, name: str, *, write: Callable[[int], str], **fields: Any) -> Version:
        """Add the next version of ``name`` (created if new). ``write(version)`` stores the
        artifact and returns its URI; it runs inside the transaction, so a failed write
        registers nothing."""
        with self.sessions.begin() as s:
            model = self._lock(s, name, create=True)
            last = s.scalar(select(func.max(ModelVersion.version))
                            .where(ModelVersion.model_id == model.id))
            number = (last or 0) + 1
            row = ModelVersion(model_id=model.id, version=number, artifact_uri=write(number),
                               **fields)
            s.add(row)
            s.flush()
            return _version(name, row)

    def promote(self, name: str, version: int, *, action: str = "promote",
                actor: str = "system", reason: str = "") -> AliasMove:
        with self.sessions.begin() as s:
            model = self._lock(s, name)
            return self._move(s, model, version, action, actor, reason)

    def rollback(self, name: str, *, actor: str = "system", reason: str = "") -> AliasMove:
        with self.sessions.begin() as s:
            model = self._lock(s, name)
            stack = _alias_stack(s.scalars(select(AliasEvent)
                                           .where(AliasEvent.model_id == model.id,
                                                  AliasEvent.alias == "production")
                                           .order_by(AliasEvent.id)).all())
            if len(stack) < 2:
                raise Conflict(f"model {name!r} has no earlier production version to roll back to")
            return self._move(s, model, stack[-2], "rollback", actor, reason)

    def set_candidate(self, name: str, candidate: Candidate, *, actor: str = "system",
                      reason: str = "") -> CandidateMove:
        """Make ``candidate`` the model's shadow or canary. 404 for an unknown model or version;
        409 (nothing changed) when the model has no production version, the version is
        production or was trained on another embedder, or another candidate is running.
        The running candidate again with a new mode or share is a change, not a conflict."""
        with self.sessions.begin() as s:
            model = self._lock(s, name)
            rows = {v.version: v for v in s.scalars(select(ModelVersion)
                                                    .where(ModelVersion.model_id == model.id))}
            candidates.check(model, rows, candidate.version)
            previous = candidates.of_model(model)
            if previous == candidate:
                return CandidateMove(model=name, action="unchanged", previous=previous,
                                     candidate=candidate)
            if previous is not None and previous.version != candidate.version:
                raise Conflict(f"model {name!r} already has a candidate: v{previous.version} "
                               f"({previous.mode}, share {previous.share:g}); withdraw it first",
                               param="version")
            candidates.assign(model, candidate)
            s.add(AliasEvent(model_id=model.id, alias="candidate",
                             from_version=previous.version if previous else None,
                             to_version=candidate.version, action=candidate.mode, actor=actor,
                             reason="; ".join(filter(None, [candidates.terms(candidate),
                                                            reason]))))
            return CandidateMove(model=name, action=candidate.mode, previous=previous,
                                 candidate=candidate)

    def clear_candidate(self, name: str, *, actor: str = "system",
                        reason: str = "") -> CandidateMove:
        """Withdraw the model's candidate (``unchanged`` when it has none)."""
        with self.sessions.begin() as s:
            model = self._lock(s, name)
            previous = candidates.withdraw(s, model, actor, reason)
            return CandidateMove(model=name, action="withdraw" if previous else "unchanged",
                                 previous=previous, candidate=None)

    def settle_candidate(self, name: str, version: int,
                         action: Literal["promote", "withdraw"], *, actor: str,
                         reason: str) -> bool:
        """Promote (``auto_promote`` in the history) or withdraw the candidate ``version`` if
        it is still the model's candidate: a change made meanwhile wins. Whether it moved."""
        with self.sessions.begin() as s:
            model = self._lock(s, name)
            if model.candidate_version != version:
                return False
            if action == "promote":
                self._move(s, model, version, "auto_promote", actor, reason)
            else:
                candidates.withdraw(s, model, actor, reason)
            return True

    # Internals -------------------------------------------------------------------------------

    def _get(self, s: Session, name: str) -> Model:
        model = s.scalar(select(Model).where(Model.name == name)
                         .options(selectinload(Model.versions)))
        if model is None:
            known = s.scalars(select(Model.name).order_by(Model.name).limit(50)).all()
            raise NotFound(f"unknown model {name!r}; known models: {', '.join(known) or 'none'}",
                           param="model")
        return model

    def _lock(self, s: Session, name: str, *, create: bool = False) -> Model:
        """The model row, locked for this transaction (PostgreSQL; SQLite has one writer)."""
        query = select(Model).where(Model.name == name).with_for_update()
        model = s.scalar(query)
        if model is None and create:
            try:
                with s.begin_nested():
                    s.add(Model(name=name))
            except IntegrityError:
                pass  # created concurrently: fine, lock theirs
            model = s.scalar(query)
        if model is None:
            return self._get(s, name)
        return model

    def _move(self, s: Session, model: Model, version: int, action: str, actor: str,
              reason: str) -> AliasMove:
        rows = {v.version: v for v in s.scalars(select(ModelVersion)
                                                .where(ModelVersion.model_id == model.id))}
        if version not in rows:
            raise NotFound(f"model {model.name!r} has no version {version}; versions: "
                           f"{sorted(rows)}", param="version")
        previous = model.production_version
        if previous != version:
            if previous in rows:
                rows[previous].status = "archived"
            rows[version].status = "production"
            model.production_version = version
            s.add(AliasEvent(model_id=model.id, from_version=previous, to_version=version,
                             action=action, actor=actor, reason=reason))
            if model.candidate_version == version:  # the candidate is production now
                candidates.withdraw(s, model, actor, f"{action} to production")
        return AliasMove(model=model.name, from_version=previous, to_version=version,
                         action=action if previous != version else "unchanged")


def _alias_stack(events: Sequence[AliasEvent]) -> list[int]:
    stack: list[int] = []
    for event in events:
        if event.to_version is None:  # not a production move
            continue
        if event.action == "rollback":
            while stack and stack[-1] != event.to_version:
                stack.pop()
        elif not stack or stack[-1] != event.to_version:
            stack.append(event.to_version)
    return stack


def _version(name: str, row: ModelVersion) -> Version:
    return Version(model=name, version=row.version, status=row.status,
                   head_type=row.head_type, artifact_uri=row.artifact_uri,
                   embedder_model=row.embedder_model, embedder_dim=row.embedder_dim,
                   num_classes=row.num_classes, train_rows=row.train_rows,
                   weighted_f1=row.weighted_f1, metrics=row.metrics, params=row.params,
                   data_fingerprint=row.data_fingerprint, job_id=row.job_id,
                   created_at=row.created_at)


def _model_info(model: Model) -> ModelInfo:
    return ModelInfo(name=model.name, production_version=model.production_version,
                     candidate=candidates.of_model(model),
                     versions=[_version(model.name, v) for v in model.versions],
                     created_at=model.created_at, updated_at=model.updated_at)
