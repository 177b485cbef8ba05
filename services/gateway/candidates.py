"""Rollout routes (admin scope): set or withdraw a model's candidate, a shadow or a canary.

The registry holds the candidate; classifiers read it with production (within
``CLASSIFIER_RELOAD_INTERVAL_S``) and every change is an entry in the alias history.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.router import AdminClient, RegistryDep
from shared.app import error_responses
from shared.contracts.rollout import CandidateMove, CandidateRequest, WithdrawRequest

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
    Setting the running candidate again with another mode or share changes it (a ramp-up).
    Errors, each leaving the running configuration as it was: 404 an unknown model or
    version; 409 another candidate running (withdraw it first), the version already in
    production, no production version, or a version trained on another embedder than
    production's; 422 a share outside (0, 1] or a canary without one.
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
