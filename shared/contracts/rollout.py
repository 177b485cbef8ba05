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


class Candidate(BaseModel):
    version: int
    mode: CandidateMode
    share: float = Field(description="the share of the model's requests it sees, in (0, 1]")


class CandidateRequest(RequestBody):
    version: int = Field(ge=1, le=2**31 - 1, examples=[4])
    mode: CandidateMode = Field(examples=["shadow"])
    share: float | None = Field(None, gt=0, le=1, examples=[0.2], description="the share of "
                                "requests it sees, in (0, 1]: default 1 for a shadow; a canary "
                                "must say")
    reason: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _canary_share(self) -> CandidateRequest:
        if self.mode == "canary" and self.share is None:
            raise ValueError("a canary needs a share in (0, 1], e.g. \"share\": 0.1")
        return self

    def candidate(self) -> Candidate:
        return Candidate(version=self.version, mode=self.mode,
                         share=1.0 if self.share is None else self.share)


class WithdrawRequest(RequestBody):
    reason: str = Field("", max_length=500)


class CandidateMove(BaseModel):
    """What a candidate change did: ``candidate`` is None once it was withdrawn."""

    model: str
    action: Literal["shadow", "canary", "withdraw", "unchanged"]
    previous: Candidate | None
    candidate: Candidate | None
