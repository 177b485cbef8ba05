"""Training and training reports through the public API (admin scope): the gateway forwards
to the trainer.

Ops get one endpoint and one set of keys; the trainer stays internal. Bodies and answers pass
through unchanged (same contracts as the trainer's own routes, see its /docs); the gateway adds
the internal token (``POLYHEAD_INTERNAL_TOKEN``) the trainer's training routes require.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Path, Request, Response

from services.gateway.deps import AdminClient
from shared.contracts.training import Job, JobList
from shared.errors import Unavailable
from shared.internal_auth import internal_headers
from shared.request_id import outgoing_headers
from shared.settings import GatewaySettings
from shared.web.app import error_responses

router = APIRouter(tags=["admin"], responses=error_responses(401, 403, 404, 409))
_PASSED = ("content-type", "location", "retry-after")
log = logging.getLogger(__name__)


async def _forward(request: Request, method: str, path: str) -> Response:
    http: httpx.AsyncClient = request.app.state.http
    settings: GatewaySettings = request.app.state.settings
    url = settings.trainer_url.rstrip("/") + path
    headers = outgoing_headers() | internal_headers(settings.internal_token)
    if "content-type" in request.headers:
        headers["content-type"] = request.headers["content-type"]
    try:
        answer = await http.request(method, url, content=await request.body(), headers=headers,
                                    params=request.query_params, timeout=120)
    except httpx.TransportError as exc:
        log.warning("trainer at %s is unreachable: %r", url, exc)  # for ops, not callers
        raise Unavailable("the trainer is unreachable; retry shortly", retry_after_s=5) from None
    return Response(answer.content, status_code=answer.status_code,
                    headers={k: v for k, v in answer.headers.items() if k in _PASSED})


@router.post("/v1/jobs", response_model=Job, status_code=202)
async def create_job(request: Request, client: AdminClient) -> Response:
    """Train a head from a CSV (multipart, the trainer's form fields). Admin scope.

    ```
    curl -s localhost:8000/v1/jobs -H "Authorization: Bearer $ADMIN_KEY" \\
         -F name=intents -F file=@data/clinc150/train.csv
    ```
    """
    return await _forward(request, "POST", "/v1/jobs")


@router.post("/v1/jobs/feedback", response_model=Job, status_code=202)
async def create_feedback_job(request: Request, client: AdminClient) -> Response:
    """Retrain from inferences that received feedback. Admin scope."""
    return await _forward(request, "POST", "/v1/jobs/feedback")


@router.get("/v1/jobs", response_model=JobList)
async def list_jobs(request: Request, client: AdminClient) -> Response:
    return await _forward(request, "GET", "/v1/jobs")


@router.get("/v1/jobs/{job_id}", response_model=Job)
async def get_job(job_id: str, request: Request, client: AdminClient) -> Response:
    return await _forward(request, "GET", f"/v1/jobs/{job_id}")


@router.get("/v1/models/{name}/versions/{version}/report")
async def get_report(name: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                     request: Request, client: AdminClient) -> Response:
    """A version's full training report (admin): per-label precision, recall and F1, the
    confusion matrix, the most confused pairs with example texts, calibration, the
    abstain trade-off curve, the data it was trained on. 404 for an unknown model or version.

    ```
    curl -s localhost:8000/v1/models/intents/versions/1/report \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    """
    return await _forward(request, "GET",
                          f"/v1/models/{quote(name, safe='')}/versions/{version}/report")
