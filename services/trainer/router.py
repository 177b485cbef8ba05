"""HTTP layer of the trainer: jobs in, registry out. Handlers only validate and enqueue; the
work happens in :mod:`services.trainer.pipeline` on a queue worker."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from pydantic import ValidationError

from services.trainer.dataset import Dataset, DatasetError, parse
from services.trainer.pipeline import Runtime
from services.trainer.sources import feedback_dataset, production_training
from shared.artifacts import ArtifactError
from shared.contracts.training import (
    MODEL_NAME,
    AliasMove,
    FeedbackJobRequest,
    HeadChoice,
    Job,
    JobList,
    ModelInfo,
    ModelInfoList,
    PromoteRequest,
    RollbackRequest,
    TrainOptions,
    Version,
)
from shared.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from shared.messages import describe
from shared.web.app import error_responses
from shared.web.deps import InternalToken
from shared.web.responses import JSONBytes

# PostgreSQL integers are 32-bit: a bigger number is refused (422) before any query.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = APIRouter(responses=error_responses(404, 409))
log = logging.getLogger(__name__)


async def get_runtime(request: Request) -> Runtime:
    """``async``: FastAPI would run a plain ``def`` in a worker thread, a hop per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _enqueue(request: Request, job: Job) -> JSONBytes:
    request.app.state.actor.send(job.id)
    return JSONBytes(job.model_dump(mode="json"), status_code=202,
                     headers={"Location": f"/v1/jobs/{job.id}"})


def multipart_upload(request: Request) -> None:
    """A dependency: 422 saying what to send when the body is not a multipart upload (JSON
    would otherwise answer "name: field required" though it has a name)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput(
            "POST /v1/jobs takes multipart/form-data: a CSV in the field \"file\" and the model "
            "name in \"name\" (curl -F name=intents -F file=@train.csv); to retrain from "
            "feedback, POST JSON to /v1/jobs/feedback", param="body")


@router.post("/v1/jobs", response_model=Job, status_code=202, tags=["jobs"],
             dependencies=[InternalToken, Depends(multipart_upload)],
             responses=error_responses(401))
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
            oos_label=options.oos_label,
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


@router.post("/v1/jobs/feedback", response_model=Job, status_code=202, tags=["jobs"],
             dependencies=[InternalToken], responses=error_responses(401))
async def create_feedback_job(body: FeedbackJobRequest, request: Request,
                              runtime: RuntimeDep) -> JSONBytes:
    """Retrain from the production version's training data plus the inferences that received
    feedback since (``POST /v1/inferences/{id}/feedback``); feedback wins where both give a
    text a label.

    ```
    curl -s localhost:8003/v1/jobs/feedback -H 'content-type: application/json' \\
         -d '{"name": "intents"}'
    ```
    The data is checked before anything is queued: no feedback yet, or too few labels to
    train, is refused with 422 and the reason. ``oos_label`` defaults to the production
    version's.
    """
    source = body.source_model or body.name

    def check() -> tuple[TrainOptions, Dataset]:
        base = production_training(runtime.registry, runtime.store, source)
        options: TrainOptions = body.options
        if base is not None and "oos_label" not in options.model_fields_set:
            options = options.model_copy(update={"oos_label": base.oos_label})
        return options, feedback_dataset(runtime.registry, source, base,
                                         oos_label=options.oos_label)

    try:
        options, dataset = await anyio.to_thread.run_sync(check)
    except DatasetError as exc:
        raise InvalidInput(str(exc), param="name") from None
    except ArtifactError:
        log.warning("feedback job for %s: production artifact unreadable", source, exc_info=True)
        raise Unavailable("the production version's training data cannot be read; retry "
                          "shortly", retry_after_s=5) from None
    job = await anyio.to_thread.run_sync(lambda: runtime.jobs.create(
        model_name=body.name, options=options.model_dump() | {"source_model": source},
        source="feedback"))
    job.report = {"data": dataset.report}
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
    """The full training report: per-class table, confusion matrix, the head kinds screened,
    timings."""
    row = runtime.registry.version(name, version)
    try:
        report = runtime.store.read_version(row.artifact_uri, ("report.json",)).get("report.json")
    except ArtifactError:
        log.warning("report of %s v%d unreadable", name, version, exc_info=True)  # the URI
        report = None
    if report is None:  # the store's location stays in the log
        raise NotFound(f"the report of model {name!r} v{version} is missing from the artifact "
                       "store")
    return JSONBytes(json.loads(report))


@router.post("/v1/models/{name}/promote", response_model=AliasMove, tags=["registry"],
             dependencies=[InternalToken], responses=error_responses(401))
def promote(name: str, body: PromoteRequest, runtime: RuntimeDep) -> AliasMove:
    """Point ``production`` at a version. ``-d '{"version": 2}'``"""
    return runtime.registry.promote(name, body.version, actor="api", reason=body.reason)


@router.post("/v1/models/{name}/rollback", response_model=AliasMove, tags=["registry"],
             dependencies=[InternalToken], responses=error_responses(401))
def rollback(name: str, runtime: RuntimeDep, body: RollbackRequest | None = None) -> AliasMove:
    """Move ``production`` back to the version it pointed at before the current one."""
    return runtime.registry.rollback(name, actor="api", reason=body.reason if body else "")


def _options(**values: Any) -> TrainOptions:
    threshold = values["threshold"]
    if threshold not in ("auto", "calibrate", "none"):
        try:
            values["threshold"] = float(threshold)
        except ValueError:
            raise InvalidInput("threshold must be auto, calibrate, none or a number "
                               "between 0 and 1", param="threshold") from None
        if not 0 <= values["threshold"] <= 1:
            raise InvalidInput("threshold must be between 0 and 1", param="threshold")
    try:
        return TrainOptions(**values)
    except ValidationError as exc:
        message, param = describe(exc.errors())
        raise InvalidInput(message, param=param) from None
