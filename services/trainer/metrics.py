"""Trainer metrics, read from the job records at scrape time.

Jobs run in worker processes that serve no HTTP, so the API reports what the database knows:
jobs per status and the age of the oldest queued job (alert when workers are gone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.trainer.jobs import JobStore

log = logging.getLogger(__name__)


class JobCollector(Collector):
    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no database query at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts, oldest = self.jobs.stats()
        except Exception:  # a scrape must not fail because the DB is down
            log.warning("job metrics: database unavailable", exc_info=True)
            return
        jobs = GaugeMetricFamily("polyhead_trainer_jobs", "Training jobs by status.",
                                 labels=["status"])
        for status in ("queued", "running", "succeeded", "failed"):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        yield GaugeMetricFamily("polyhead_trainer_oldest_queued_seconds",
                                "Age of the oldest queued job (0 when none).", value=oldest)
