"""Contracts of rollouts: a model's one candidate version, shadowing or canarying production.

A **shadow** sees ``share`` of the model's requests beside production: it predicts on the same
embedding, its answers are logged (role ``shadow``) and never returned. A **canary** answers
``share`` of them instead of production, chosen by a hash of the caller's routing key, so one
caller keeps one version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from shared.contracts.body import RequestBody

CandidateMode = Literal["shadow", "canary"]
Role = Literal["production", "pinned", "canary", "shadow"]


class Policy(RequestBody):
    """A candidate's automatic moves (:mod:`shared.candidate_policy`): promotion once
    ``promote_after`` feedback rows show it not worse than production (a one-sided
    non-inferiority test at level ``alpha`` with margin ``margin``); a canary's withdrawal
    once its error rate or p99 latency over the watch window passes a bound."""

    promote_after: int | None = Field(None, ge=1, le=10**9, examples=[200], description=(
        "feedback rows on the candidate before it may be promoted (none: never automatically)"))
    alpha: float = Field(0.05, gt=0, lt=0.5, description="the test's level (one-sided)")
    margin: float = Field(0.02, ge=0, lt=1, description="how much lower an accuracy still "
                          "counts as not worse (0: the candidate must be shown better)")
    max_error_rate: float | None = Field(None, ge=0, le=1, examples=[0.02], description=(
        "a canary failing more of its requests than this over the window is withdrawn"))
    max_p99_ms: float | None = Field(None, gt=0, examples=[500], description=(
        "a canary whose p99 latency over the window passes this is withdrawn"))
    min_requests: int = Field(20, ge=1, le=10**9, description="canary requests in the window "
                              "before its error rate and p99 are judged")


class Candidate(BaseModel):
    version: int
    mode: CandidateMode
    share: float = Field(description="the share of the model's requests it sees, in (0, 1]")
    policy: Policy | None = Field(None, description="its automatic promotion and withdrawal")


class CandidateRequest(RequestBody):
    version: int = Field(ge=1, le=2**31 - 1, examples=[4])
    mode: CandidateMode = Field(examples=["shadow"])
    share: float | None = Field(None, gt=0, le=1, examples=[0.2], description="the share of "
                                "requests it sees, in (0, 1]: default 1 for a shadow; a canary "
                                "must say")
    reason: str = Field("", max_length=500)
    policy: Policy | None = Field(None, description="promote or withdraw it automatically")

    @model_validator(mode="after")
    def _canary_share(self) -> CandidateRequest:
        if self.mode == "canary" and self.share is None:
            raise ValueError("a canary needs a share in (0, 1], e.g. \"share\": 0.1")
        return self

    def candidate(self) -> Candidate:
        return Candidate(version=self.version, mode=self.mode,
                         share=1.0 if self.share is None else self.share, policy=self.policy)


class WithdrawRequest(RequestBody):
    reason: str = Field("", max_length=500)


class CandidateMove(BaseModel):
    """What a candidate change did: ``candidate`` is None once it was withdrawn."""

    model: str
    action: Literal["shadow", "canary", "withdraw", "unchanged"]
    previous: Candidate | None
    candidate: Candidate | None
