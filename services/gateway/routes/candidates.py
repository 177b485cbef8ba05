"""Rollout routes (admin scope): set or withdraw a model's candidate, a shadow or a canary,
and compare it with production.

The registry holds the candidate; classifiers read it with production (within
``CLASSIFIER_RELOAD_INTERVAL_S``) and every change is an entry in the alias history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.comparison import MAX_WINDOW
from services.gateway.deps import AdminClient, RegistryDep
from services.gateway.reports import candidate_report
from services.gateway.time_windows import utc, window
from shared.contracts.rollout import CandidateMove, CandidateRequest, WithdrawRequest
from shared.db.types import utcnow
from shared.web.app import error_responses
from shared.web.responses import JSONBytes

router = APIRouter(tags=["admin"], responses=error_responses(401, 403, 404, 409))


@router.put("/v1/models/{name}/candidate", response_model=CandidateMove)
def set_candidate(name: str, body: CandidateRequest, registry: RegistryDep,
                  client: AdminClient) -> CandidateMove:
    """Try a version on real traffic before it answers everyone (admin).

    A **shadow** predicts on ``share`` of the requests (default all) beside production, on the
    same embedding; its predictions are logged as shadow rows and never returned. A
    **canary** answers ``share`` of the callers instead of production, each caller always on
    the same side (by its routing key, default its API key's name).

    ```
    curl -s -X PUT localhost:8000/v1/models/intents/candidate \\
         -H "Authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' \\
         -d '{"version": 4, "mode": "canary", "share": 0.1, "reason": "new data"}'
    ```
    Setting the running candidate again with another mode, share or policy changes it (a
    ramp-up). A ``policy`` lets the rollout watcher move it alone (``GATEWAY_ROLLOUT_CHECK_S``):
    ``{"promote_after": 200, "alpha": 0.05, "margin": 0.02}`` promotes it once 200 feedback
    rows show it not worse than production (one-sided test), and
    ``{"max_error_rate": 0.02, "max_p99_ms": 500}`` withdraws a canary that fails more or
    answers slower over the watch window; each move is in the alias history with its reason.
    Errors, each leaving the running configuration as it was: 404 an unknown model or
    version; 409 another candidate running (withdraw it first), the version already in
    production, no production version, or a version trained on another embedder than
    production's; 422 a share outside (0, 1], a canary without one, or a policy field out of
    range.
    """
    return registry.set_candidate(name, body.candidate(), actor=client.name,
                                  reason=body.reason)


@router.delete("/v1/models/{name}/candidate", response_model=CandidateMove)
def withdraw_candidate(name: str, registry: RegistryDep, client: AdminClient,
                       body: WithdrawRequest | None = None) -> CandidateMove:
    """Withdraw the shadow or canary: production answers everything again (admin).

    ```
    curl -s -X DELETE localhost:8000/v1/models/intents/candidate \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    A model without a candidate answers ``"action": "unchanged"``; 404 an unknown model.
    Promoting the candidate (``POST /v1/models/{name}/promote``) withdraws it too.
    """
    return registry.clear_candidate(name, actor=client.name, reason=body.reason if body else "")


@router.get("/v1/reports/models/{name}/candidate")
def compare(name: str, registry: RegistryDep, client: AdminClient,
            start: Annotated[datetime | None, Query(alias="from")] = None,
            end: Annotated[datetime | None, Query(alias="to")] = None,
            version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> JSONBytes:
    """Production against its shadow or canary over one window (admin). Default: since the
    running candidate started (at most 7 days back), else the last 24 h.

    ```
    curl -s 'localhost:8000/v1/reports/models/intents/candidate?from=2026-11-01T00:00:00Z' \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    For each side: requests answered (``requests``, by version), top labels with their
    shares, mean confidence, abstain rate, latency p50/p95 (``total``: what the caller waited,
    none for a shadow, which nobody waits for; ``head``: the head alone) and accuracy on
    feedback with its Wilson 95 % interval and the rows behind it. A shadow's ``agreement``
    is the share of its predictions equal to production's on the same inputs; a shadow gets
    no feedback of its own (its ids are never returned), so it is scored against the feedback
    on the production rows it mirrored, and production's accuracy is given on those same rows.
    A canary answers other requests: agreement is null, with a note. ``version`` compares an
    earlier candidate. The window is exact (not whole hours), at most 7 days.

    Errors: 404 an unknown model; 409 no candidate and no ``version``; 422 an empty window,
    one over 7 days or dates out of range; 503 the database is unavailable.
    """
    if start is None and version is None and (since := registry.candidate_since(name)):
        start = max(utc(since), (utc(end) if end else utcnow()) - MAX_WINDOW)
    start, end = window(start, end, default=timedelta(days=1), longest=MAX_WINDOW)
    return JSONBytes(candidate_report(registry.sessions, registry, name, start, end, version))
