"""The job queue, on dramatiq: Redis when configured, in-process otherwise.

With Redis, any number of workers on any machines take jobs; a worker that dies holds its
message only until its heartbeat times out, then the broker hands it to another worker
(``queue_heartbeat_timeout_ms``). Without Redis (the embedded default) the same actor runs on
dramatiq's in-memory broker, in a worker thread of the trainer process; jobs left unfinished by
a restart are re-sent at startup from their database records.

A job cut short by its worker stopping, or by an embedder that is starting or stopping, is put
back and sent again after a pause, without using one of its attempts (see ``Runtime.run``).
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from services.trainer.pipeline import RunAgainLater, Runtime
from shared.settings import TrainerSettings

QUEUE = "training"
ACTOR = "train"


def make_broker(settings: TrainerSettings) -> dramatiq.Broker:
    if settings.queue_url:
        return RedisBroker(url=settings.queue_url.get_secret_value(),
                           namespace=settings.queue_namespace,
                           heartbeat_timeout=settings.queue_heartbeat_timeout_ms,
                           maintenance_chance=settings.queue_maintenance_chance)
    return StubBroker()


class StopRunningJobs(dramatiq.Middleware):
    """When the worker begins to stop, tell the job it runs to end at its next step."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.stopping.set()


def declare(broker: dramatiq.Broker, runtime: Runtime,
            settings: TrainerSettings) -> dramatiq.Actor[..., None]:
    """The one actor: ``train(job_id)``. Failures retry with backoff up to ``max_attempts``
    (the job record enforces the same limit, counting lost workers too). A job put back
    without using an attempt is sent again as a new message, so it uses no retry either."""
    broker.add_middleware(StopRunningJobs(runtime.stopping))

    def train(job_id: str, waiting_since: float | None = None) -> None:
        try:
            runtime.run(job_id, waiting_since)
        except RunAgainLater as later:
            actor.send_with_options(args=(job_id, later.waiting_since),
                                    delay=round(later.delay_s * 1000))

    actor: dramatiq.Actor[..., None] = dramatiq.actor(
        broker=broker, actor_name=ACTOR, queue_name=QUEUE,
        max_retries=settings.max_attempts, min_backoff=1000, max_backoff=30_000,
        time_limit=int(settings.job_time_limit_s * 1000))(train)
    return actor


def in_process_worker(broker: dramatiq.Broker) -> dramatiq.Worker:
    """One worker thread: training uses every core already, two jobs at once only thrash."""
    return dramatiq.Worker(broker, worker_threads=1, worker_timeout=200)
