"""HTTP layer of the trainer: jobs in, registry out. Handlers only validate and enqueue; the
work happens in :mod:`services.trainer.pipeline` on a queue worker."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from pydantic import ValidationError

from services.trainer.dataset import DatasetError, parse
from services.trainer.pipeline import Runtime
from shared.app import error_responses
from shared.artifacts import ArtifactError
from shared.contracts.training import (MODEL_NAME, AliasMove, FeedbackJobRequest, HeadChoice, Job,
                                       JobList, ModelInfo, ModelInfoList, PromoteRequest,
                                       RollbackRequest, TrainOptions, Version)
from shared.errors import InvalidInput, NotFound, PayloadTooLarge
from shared.responses import JSONBytes

# PostgreSQL integers are 32-bit: a bigger number is refused (422) before any query.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = APIRouter(responses=error_responses(404, 409))


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _enqueue(request: Request, job: Job) -> JSONBytes:
    request.app.state.actor.send(job.id)
    return JSONBytes(job.model_dump(mode="json"), status_code=202,
                     headers={"Location": f"/v1/jobs/{job.id}"})


@router.post("/v1/jobs", response_model=Job, status_code=202, tags=["jobs"])
async def create_job(
    request: Request, runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="CSV with a text and a label column (UTF-8)")],
    name: Annotated[str, Form(pattern=MODEL_NAME, description="model name, e.g. intents")],
    head: Annotated[HeadChoice, Form()] = "auto",
    cv_folds: Annotated[int, Form(ge=2, le=20)] = 5,
    class_weight: Annotated[str, Form()] = "auto",
    threshold: Annotated[str, Form(description="auto, calibrate, none or a probability")] = "auto",
    oos_label: Annotated[str | None, Form()] = None,
    text_column: Annotated[str, Form()] = "text",
    label_column: Annotated[str, Form()] = "label",
    promote: Annotated[str | None, Form(description="if_not_worse, always or never")] = None,
) -> JSONBytes:
    """Train a head from a CSV. Answers 202 with the job; poll ``GET /v1/jobs/{id}``.

    ```
    curl -s localhost:8003/v1/jobs -F name=intents -F file=@data/clinc150/train.csv
    ```
    The file is checked before anything is queued: a CSV that cannot be trained on (not UTF-8,
    missing columns, a single label...) is refused with 422 and the reason.
    """
    options = _options(head=head, cv_folds=cv_folds, class_weight=class_weight,
                       threshold=threshold, oos_label=oos_label or None, text_column=text_column,
                       label_column=label_column, promote=promote or None)
    limit = runtime.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the file is over the {limit}-byte limit", param="file")
    try:
        dataset = await anyio.to_thread.run_sync(lambda: parse(
            data, text_column=options.text_column, label_column=options.label_column,
            min_per_class=options.cv_folds, oos_label=options.oos_label,
            max_rows=runtime.settings.max_rows))
    except DatasetError as exc:
        raise InvalidInput(str(exc), param="file") from None
    job_id = uuid.uuid4().hex
    uri = await anyio.to_thread.run_sync(runtime.store.put, f"_uploads/{job_id}.csv", data)
    job = await anyio.to_thread.run_sync(lambda: runtime.jobs.create(
        job_id=job_id, model_name=name, options=options.model_dump(), source="csv",
        filename=file.filename, upload_uri=uri, upload_bytes=len(data)))
    job.report = {"data": dataset.report}
    return _enqueue(request, job)


@router.post("/v1/jobs/feedback", response_model=Job, status_code=202, tags=["jobs"])
async def create_feedback_job(body: FeedbackJobRequest, request: Request,
                              runtime: RuntimeDep) -> JSONBytes:
    """Retrain from inferences that received feedback (``POST /v1/inferences/{id}/feedback``).

    ```
    curl -s localhost:8003/v1/jobs/feedback -H 'content-type: application/json' \\
         -d '{"name": "intents"}'
    ```
    """
    options = body.options.model_dump() | {"source_model": body.source_model or body.name}
    job = await anyio.to_thread.run_sync(lambda: runtime.jobs.create(
        model_name=body.name, options=options, source="feedback"))
    return _enqueue(request, job)


@router.get("/v1/jobs", response_model=JobList, tags=["jobs"])
def list_jobs(runtime: RuntimeDep, status: str | None = None, model: str | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JobList:
    """Newest first. ``curl -s 'localhost:8003/v1/jobs?status=running'``"""
    return JobList(data=runtime.jobs.list(limit=limit, status=status, model_name=model))


@router.get("/v1/jobs/{job_id}", response_model=Job, tags=["jobs"])
def get_job(job_id: str, runtime: RuntimeDep) -> Job:
    """Status, stage, progress, metrics, the model version produced, or the error."""
    return runtime.jobs.get(job_id)


@router.get("/v1/models", response_model=ModelInfoList, tags=["registry"])
def list_models(runtime: RuntimeDep) -> ModelInfoList:
    """Every model with its versions and which one is in production."""
    return ModelInfoList(data=runtime.registry.list_models())


@router.get("/v1/models/{name}", response_model=ModelInfo, tags=["registry"])
def get_model(name: str, runtime: RuntimeDep) -> ModelInfo:
    return runtime.registry.model(name)


@router.get("/v1/models/{name}/versions/{version}", response_model=Version, tags=["registry"])
def get_version(name: str, version: VersionNumber, runtime: RuntimeDep) -> Version:
    return runtime.registry.version(name, version)


@router.get("/v1/models/{name}/versions/{version}/report", tags=["registry"])
def get_report(name: str, version: VersionNumber, runtime: RuntimeDep) -> JSONBytes:
    """The full training report: per-class table, confusion matrix, candidates, timings."""
    row = runtime.registry.version(name, version)
    try:
        files = runtime.store.read_version(row.artifact_uri, ("report.json",))
    except ArtifactError as exc:
        raise NotFound(str(exc)) from None
    return JSONBytes(json.loads(files["report.json"]))


@router.post("/v1/models/{name}/promote", response_model=AliasMove, tags=["registry"])
def promote(name: str, body: PromoteRequest, runtime: RuntimeDep) -> AliasMove:
    """Point ``production`` at a version. ``-d '{"version": 2}'``"""
    return runtime.registry.promote(name, body.version, actor="api", reason=body.reason)


@router.post("/v1/models/{name}/rollback", response_model=AliasMove, tags=["registry"])
def rollback(name: str, runtime: RuntimeDep, body: RollbackRequest | None = None) -> AliasMove:
    """Move ``production`` back to the version it pointed at before the current one."""
    return runtime.registry.rollback(name, actor="api", reason=body.reason if body else "")


def _options(**values: Any) -> TrainOptions:
    threshold = values["threshold"]
    if threshold not in ("auto", "calibrate", "none"):
        try:
            values["threshold"] = float(threshold)
        except ValueError:
            raise InvalidInput("threshold must be auto, calibrate, none or a number between 0 and 1",
                               param="threshold") from None
        if not 0 <= values["threshold"] <= 1:
            raise InvalidInput("threshold must be between 0 and 1", param="threshold")
    try:
        return TrainOptions(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{first['loc'][0]}: {first['msg']}", param=str(first["loc"][0])) from None
