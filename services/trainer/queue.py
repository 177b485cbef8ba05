"""The job queue, on dramatiq: Redis when configured, in-process otherwise.

With Redis, any number of workers on any machines take jobs; a worker that dies holds its
message only until its heartbeat times out, then the broker hands it to another worker
(``queue_heartbeat_timeout_ms``). Without Redis (the embedded default) the same actor runs on
dramatiq's in-memory broker, in a worker thread of the trainer process; jobs left unfinished by
a restart are re-sent at startup from their database records.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from shared.settings import TrainerSettings

QUEUE = "training"
ACTOR = "train"


def make_broker(settings: TrainerSettings) -> dramatiq.Broker:
    if settings.queue_url:
        return RedisBroker(url=settings.queue_url, namespace=settings.queue_namespace,
                           heartbeat_timeout=settings.queue_heartbeat_timeout_ms,
                           maintenance_chance=settings.queue_maintenance_chance)
    return StubBroker()


def declare(broker: dramatiq.Broker, run: Callable[[str], None],
            settings: TrainerSettings) -> dramatiq.Actor[[str], None]:
    """The one actor: ``train(job_id)``. Failures retry with backoff up to ``max_attempts``
    (the job record enforces the same limit, counting lost workers too)."""
    def train(job_id: str) -> None:
        run(job_id)

    return dramatiq.actor(train, broker=broker, actor_name=ACTOR, queue_name=QUEUE,
                          max_retries=settings.max_attempts, min_backoff=1000,
                          max_backoff=30_000, time_limit=int(settings.job_time_limit_s * 1000))


def in_process_worker(broker: dramatiq.Broker) -> dramatiq.Worker:
    """One worker thread: training uses every core already, two jobs at once only thrash."""
    return dramatiq.Worker(broker, worker_threads=1, worker_timeout=200)
