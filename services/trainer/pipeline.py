"""One training job, start to finish: validate, embed, select and fit, register, promote.

Runs in a queue worker (a thread of the trainer in the embedded default, or a
``polyhead-trainer-worker`` process). Imports no FastAPI: the HTTP layer only enqueues.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from services.trainer import evaluate, label_names
from services.trainer.dataset import Dataset, DatasetError, parse
from services.trainer.in_scope import nonsense_texts
from services.trainer.intent_map import fit_intent_map
from services.trainer.jobs import JobStore, attempts
from services.trainer.promotion import Decision, decide
from services.trainer.selection import select_and_fit
from services.trainer.sources import (
    TRAINING_ROWS,
    feedback_dataset,
    production_training,
    training_rows_csv,
)
from shared import __version__
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.contracts.embeddings import SENTENCE_LEXICAL
from shared.contracts.training import TrainOptions, Version
from shared.db.models import TrainingJob
from shared.errors import InvalidInput, NotFound, PolyheadError, Unavailable
from shared.intent_map import INTENT_MAP_FILE
from shared.registry import Registry
from shared.settings import TrainerSettings

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A problem retrying cannot fix (bad data, unknown model): fail the job with this text."""


class Stopping(Exception):
    """The worker is stopping: the job ends at its next step and goes back to the queue."""


class RunAgainLater(Exception):
    """The job is back in ``queued`` without having used an attempt: send it again after
    ``delay_s``, carrying ``waiting_since`` (when it began waiting for the embedder)."""

    def __init__(self, delay_s: float, waiting_since: float | None) -> None:
        super().__init__(f"run again in {delay_s} s")
        self.delay_s, self.waiting_since = delay_s, waiting_since


@dataclass
class Runtime:
    """Everything a job needs, built once per process."""

    settings: TrainerSettings
    jobs: JobStore
    registry: Registry
    store: ArtifactStore
    embedder: EmbedderClient
    engine: Engine
    # Set when the worker stops (queue.StopRunningJobs): a running job ends at its next step.
    stopping: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.embedder.close()
        self.engine.dispose()

    def run(self, job_id: str, waiting_since: float | None = None) -> None:
        """Entry point for the queue: claim the job, run it, record the outcome; once the job
        has ended (succeeded, or failed for good) its upload is deleted."""
        try:
            self._attempt(job_id, waiting_since)
        finally:
            self._drop_upload_if_ended(job_id)

    def _attempt(self, job_id: str, waiting_since: float | None) -> None:
        worker = f"{socket.gethostname()}:{os.getpid()}"
        if not self.jobs.start(job_id, worker=worker, max_attempts=self.settings.max_attempts):
            log.info("job %s: nothing to do (finished or out of attempts)", job_id)
            return
        with self._heartbeat(job_id):
            try:
                self._train(self.jobs.row(job_id))
            except (JobFailed, DatasetError, InvalidInput, NotFound) as exc:
                log.info("job %s failed: %s", job_id, exc)
                self.jobs.fail(job_id, _message(exc))
            except Exception as exc:
                self._put_back_if_not_the_jobs_fault(job_id, exc, waiting_since)
                # Transient (embedder down, database blip...) or a bug: retry, then give up.
                row = self.jobs.row(job_id)
                text = _problem(exc)
                if row.attempts >= self.settings.max_attempts:
                    log.exception("job %s failed for good", job_id)
                    self.jobs.fail(job_id, f"gave up after {attempts(row.attempts)}; "
                                           f"last problem: {text}")
                    return
                log.warning("job %s attempt %d failed, will retry: %s", job_id, row.attempts, text)
                self.jobs.retry_later(job_id, f"attempt {row.attempts} failed ({text}); retrying")
                raise

    def _put_back_if_not_the_jobs_fault(self, job_id: str, exc: Exception,
                                         waiting_since: float | None) -> None:
        """Raise :class:`RunAgainLater`, the attempt given back, when the run was cut short by
        this worker stopping, or by an embedder that is unreachable or not ready (starting or
        stopping) for less than ``embedder_wait_s`` so far. Logged as a warning, no traceback."""
        if self.stopping.is_set():
            self.jobs.put_back(job_id, stage="queued (worker stopped)",
                               note="the worker stopped during the job; it runs again")
            log.warning("job %s put back, not counted as an attempt: the worker is stopping",
                        job_id)
            raise RunAgainLater(1.0, None) from None
        now = time.time()
        since = waiting_since or now
        if (isinstance(exc, Unavailable) and exc.retry_after_s is not None
                and now - since < self.settings.embedder_wait_s):
            self.jobs.put_back(job_id, stage="waiting for the embedder", note=exc.message)
            log.warning("job %s put back, not counted as an attempt: %s (waiting for %.0f s)",
                        job_id, exc.message, now - since)
            raise RunAgainLater(max(exc.retry_after_s, 2.0), since) from None

    def _drop_upload_if_ended(self, job_id: str) -> None:
        """What a version needs for retraining is in its artifact folder by now
        (:data:`~services.trainer.sources.TRAINING_ROWS`), so the upload is no longer needed."""
        try:
            row = self.jobs.row(job_id)
            if row.status in ("succeeded", "failed") and row.upload_uri:
                self.store.delete(row.upload_uri)
                log.info("job %s ended: deleted its upload %s", job_id, row.upload_uri)
        except FileNotFoundError:
            pass  # deleted when it ended earlier (a duplicate delivery)
        except Exception:
            log.warning("job %s: could not delete its upload", job_id, exc_info=True)

    @contextmanager
    def _heartbeat(self, job_id: str) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.heartbeat_s):
                try:
                    self.jobs.heartbeat(job_id)
                except Exception:
                    log.warning("job %s: heartbeat failed", job_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"heartbeat-{job_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _train(self, job: TrainingJob) -> None:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        options = TrainOptions.model_validate(job.options)

        def stage(name: str, fraction: float, lo: float, hi: float) -> None:
            if self.stopping.is_set():
                raise Stopping(f"stopped during {name!r}")
            self.jobs.progress(job.id, name, lo + (hi - lo) * fraction)

        # 1. Validate (before any compute).
        stage("validating", 0, 0, 0.02)
        t = time.perf_counter()
        data = self._dataset(job, options)
        timings["validate_s"] = time.perf_counter() - t

        # 2. Embed through the embedder service (sharing its phrase cache with serving): the
        # features rows, sentence then lexical vectors (README "The trainer", step 2).
        t = time.perf_counter()
        stage("embedding", 0, 0.02, 0.5)
        # With a calibrated threshold, random letter strings too (the score's nonsense gate).
        nonsense = nonsense_texts() if options.threshold in ("auto", "calibrate") else []
        names = [label_names.as_text(label) for label in data.classes]  # a prior (see module)
        vectors, model_id, cached, identity = self._embed(
            data.texts + data.oos_texts + nonsense + names,
            lambda f: stage("embedding", f, 0.02, 0.5))
        n_in, n_oos, n_nonsense = len(data.texts), len(data.oos_texts), len(nonsense)
        x, x_oos = vectors[:n_in], vectors[n_in:n_in + n_oos]
        x_nonsense = vectors[n_in + n_oos:n_in + n_oos + n_nonsense]
        x_names = vectors[n_in + n_oos + n_nonsense:]
        timings["embed_s"] = time.perf_counter() - t

        # 3. Choose, cross-validate and fit the head.
        labels = data.classes
        index = {label: i for i, label in enumerate(labels)}
        y = np.array([index[label] for label in data.labels], dtype=np.int64)
        t = time.perf_counter()
        selected = select_and_fit(
            x, y, labels, x_oos if len(x_oos) else None, options, embedder_model=model_id,
            budget_s=self.settings.time_budget_s, threads=self.settings.threads,
            xgboost_max_classes=self.settings.xgboost_max_classes,
            max_accuracy_drop=self.settings.max_accuracy_drop,
            progress=lambda name, f: stage(name, f, 0.5, 0.95),
            x_nonsense=x_nonsense if nonsense else None, x_names=x_names,
            features=SENTENCE_LEXICAL)
        selected.head.embedder_identity = identity  # checked when the head is served
        intent_map, intent_map_report = fit_intent_map(selected.head.sentence(x), y,
                                                       seed=options.seed)
        timings["fit_s"] = time.perf_counter() - t
        files = selected.head.to_files() | (
            {INTENT_MAP_FILE: intent_map.to_file()} if intent_map is not None else {})
        held_out = selected.tested
        diagnosis = evaluate.diagnosis(y[held_out], selected.oof[held_out], labels,
                                       [t for t, kept in zip(data.texts, held_out, strict=True)
                                        if kept], selected.in_scores, selected.oos_scores)

        # 4. Register the version, then promote it if the policy says so.
        stage("registering", 0, 0.95, 1)
        timings["total_s"] = time.perf_counter() - started
        decision = self._promotion(job.model_name, options, selected.report["cv"]["weighted_f1"],
                                   labels)
        report = selected.report | diagnosis | {
            "intent_map": intent_map_report, "data": data.report,
            "embedder": {"model": model_id, "identity": identity,
                         "dim": selected.head.embedder_dim, "features": selected.head.features,
                         "cache_hit_ratio": round(cached, 4)},
            "timings": {k: round(v, 2) for k, v in timings.items()},
            "promotion": decision.report(),
            "job_id": job.id, "code_version": __version__, "options": options.model_dump()}
        version = self.registry.register(
            job.model_name, write=lambda v: self._write(job.model_name, v, files, report, data,
                                                        options),
            head_type=selected.spec.kind, embedder_model=model_id,
            embedder_dim=selected.head.embedder_dim,
            num_classes=len(labels), train_rows=len(y), weighted_f1=report["cv"]["weighted_f1"],
            metrics=_summary(report), params=selected.spec.params(),
            data_fingerprint=data.fingerprint(), job_id=job.id)
        if decision.promote:
            self.registry.promote(job.model_name, version.version, action="auto_promote",
                                  actor="trainer", reason=decision.reason)
        self.jobs.succeed(job.id, version=version.version, promoted=decision.promote,
                          report=report)
        log.info("job %s: %s v%d (%s, cv weighted F1 %.4f), %s", job.id, job.model_name,
                 version.version, selected.spec.kind, report["cv"]["weighted_f1"],
                 decision.reason)

    def _dataset(self, job: TrainingJob, options: TrainOptions) -> Dataset:
        parse_options: dict[str, Any] = {"oos_label": options.oos_label}
        if job.source == "feedback":
            source = job.options.get("source_model") or job.model_name
            return feedback_dataset(self.registry, source,
                                    production_training(self.registry, self.store, source),
                                    **parse_options)
        if not job.upload_uri:
            raise JobFailed("the job has no uploaded data")
        return parse(self.store.get(job.upload_uri), text_column=options.text_column,
                     label_column=options.label_column, max_rows=self.settings.max_rows,
                     **parse_options)

    def _embed(self, texts: list[str], progress: Any
               ) -> tuple[np.ndarray, str, float, str | None]:
        parts, cached, model, identities = [], 0, "", set[str | None]()
        size = self.settings.embed_batch
        for i in range(0, len(texts), size):
            result = self.embedder.features(texts[i:i + size])
            parts.append(result.head_rows)
            cached += sum(result.cached)
            model = result.model
            identities.add(result.identity)
            progress(min(1.0, (i + size) / len(texts)))
        if len(identities) > 1:  # an embedder rollout mid-job: vectors must not be mixed
            raise Unavailable("the embedder changed its embeddings during the job",
                              retry_after_s=5)
        identity = next(iter(identities), None)
        return np.concatenate(parts), model, cached / max(len(texts), 1), identity

    def _write(self, name: str, version: int, version_files: dict[str, bytes],
               report: dict[str, Any], data: Dataset, options: TrainOptions) -> str:
        files = dict(version_files)
        files["report.json"] = json.dumps(report | {"model": name, "version": version},
                                          indent=2, default=str).encode()
        files["per_class.csv"] = _per_class_csv(report["per_class"])
        files["training_config.json"] = json.dumps(options.model_dump(), indent=2).encode()
        files["data.json"] = json.dumps({"fingerprint": data.fingerprint(), **data.report},
                                        indent=2).encode()
        files[TRAINING_ROWS] = training_rows_csv(data, options.oos_label)
        return self.store.write_version(name, version, files)

    def _promotion(self, name: str, options: TrainOptions, f1: float,
                   labels: list[str]) -> Decision:
        try:
            production: Version | None = self.registry.version(name, "production")
        except NotFound:  # a new model, or one with no production version
            production = None
        return decide(options.promote or self.settings.promote, f1, labels, production,
                      self.settings.promote_tolerance)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures stored on the version row (the full report is in the artifact)."""
    keys = ("cv", "train", "train_cv_gap", "threshold", "class_weight", "screened", "cv_folds")
    summary = {k: report[k] for k in keys if k in report}
    summary["class_counts"] = report["data"]["class_counts"]  # the baseline for drift reports
    if report["options"]["oos_label"] is not None:  # a label feedback may give, too
        summary["oos_label"] = report["options"]["oos_label"]
    return summary


def _per_class_csv(rows: list[dict[str, Any]]) -> bytes:
    """The per-class report for spreadsheets. Labels come from uploaded data, so one starting
    with = + - @ (a formula to Excel: "CSV injection") is written with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["label", "precision", "recall", "f1", "support"])
    writer.writeheader()
    writer.writerows({**row, "label": _inert(str(row["label"]))} for row in rows)
    return out.getvalue().encode()


def _inert(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, PolyheadError) else str(exc)


def _problem(exc: BaseException) -> str:
    """What stopped an attempt, in words a job's owner may read: our errors' own messages; for
    anything else only its type (its text may hold internal addresses or SQL: the log has it)."""
    if isinstance(exc, PolyheadError):
        return exc.message
    return f"an unexpected {type(exc).__name__} (the trainer's log has the details)"
