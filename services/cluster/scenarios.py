"""Faults under steady load, each measured the same way (:func:`services.cluster.load.figures`):
what ``tests/topology`` asserts on and ``bench/topology.py`` prints.

Each scenario starts traffic through the edge, waits until it flows, breaks something, holds,
heals, waits for traffic to flow again and for the log to reach the database, and leaves the
cluster whole for the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from services.cluster import faults
from services.cluster.cluster import Cluster
from services.cluster.load import Answer, Load, figures
from shared.db import make_engine


@dataclass
class Workload:
    """What the traffic sends: a model served by the cluster, its texts, a predict key."""

    model: str
    texts: list[str]
    key: str

    def load(self, cluster: Cluster, **options: object) -> Load:
        return Load(cluster.edge_url, self.key, f"/v1/models/{self.model}/predict",
                    lambda n: {"text": self.texts[n % len(self.texts)]}, **options)  # type: ignore[arg-type]  # options: Load's keywords


def wait_served(cluster: Cluster, work: Workload, timeout_s: float = 60) -> None:
    """Until every classifier serves the model and every gateway answers it: a scenario
    starts from a cluster at rest, not from one still loading a new head."""
    deadline = time.monotonic() + timeout_s
    for name in cluster.members("cls"):
        while not any(head["model"] == work.model for head in httpx.get(
                f"{cluster.url(name)}/v1/heads", timeout=10).json()["data"]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} does not serve {work.model}")
            time.sleep(0.2)
    time.sleep(1.5)  # one routes refresh of every gateway (GATEWAY_ROUTES_REFRESH_S=1)
    for name in cluster.members("gw"):
        while httpx.post(f"{cluster.url(name)}/v1/models/{work.model}/predict", timeout=10,
                         json={"text": "hi"}, headers={"Authorization": f"Bearer {work.key}"}
                         ).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} does not answer {work.model}")
            time.sleep(0.2)


def logged_ids(cluster: Cluster) -> set[str]:
    engine = make_engine(cluster.database_url)
    try:
        with engine.connect() as c:
            return set(c.scalars(text("SELECT id FROM inferences")))
    finally:
        engine.dispose()


def wait_logged(cluster: Cluster, answers: list[Answer], timeout_s: float = 60) -> set[str]:
    """The logged ids once every answered one is among them (or ``timeout_s`` has passed)."""
    answered = {i for a in answers for i in a.ids}
    deadline = time.monotonic() + timeout_s
    while True:
        logged = logged_ids(cluster)
        if answered <= logged or time.monotonic() > deadline:
            return logged
        time.sleep(0.5)


def run(cluster: Cluster, work: Workload, fault: Callable[[], object],
        heal: Callable[[], object] | None = None, hold_s: float = 5.0) -> dict[str, Any]:
    """Traffic, ``fault``, ``hold_s``, ``heal``, traffic again: the scenario's figures."""
    with work.load(cluster) as load:
        load.wait_for(20)
        fault_at = time.monotonic()
        fault()
        time.sleep(hold_s)
        healed_at = None
        if heal is not None:
            healed_at = time.monotonic()
            heal()
        load.wait_for(40)
    answers = load.snapshot()
    return figures(answers, fault_at, wait_logged(cluster, answers), healed_at)


def host_loss(cluster: Cluster, work: Workload, name: str) -> dict[str, Any]:
    """Every process of host ``name`` SIGKILLed; started again afterwards."""
    return run(cluster, work, lambda: faults.kill(cluster, name),
               lambda: faults.start(cluster, name), hold_s=8)


def hung_host(cluster: Cluster, work: Workload, name: str, hold_s: float = 30
              ) -> dict[str, Any]:
    return run(cluster, work, lambda: faults.freeze(cluster, name),
               lambda: faults.thaw(cluster, name), hold_s=hold_s)


def partition(cluster: Cluster, work: Workload, name: str, hold_s: float = 10
              ) -> dict[str, Any]:
    return run(cluster, work, lambda: cluster.host(name).cut(),
               lambda: cluster.host(name).heal(), hold_s=hold_s)


def rolling(cluster: Cluster, work: Workload, role: str) -> dict[str, Any]:
    return run(cluster, work, lambda: faults.rolling_restart(cluster, role), hold_s=0)


def postgres_restart(cluster: Cluster, work: Workload) -> dict[str, Any]:
    assert cluster.postgres is not None
    return run(cluster, work, cluster.postgres.restart, hold_s=3)


def redis_restart(cluster: Cluster, work: Workload) -> dict[str, Any]:
    redis = cluster.programs["redis"]
    return run(cluster, work, redis.stop, redis.start, hold_s=5)


def scale_down_during_outage(cluster: Cluster, work: Workload) -> dict[str, Any]:
    """PostgreSQL stopped; the last gateway taken out and stopped for good (what it answered
    is still on disk); PostgreSQL back: the other gateway ships it. gw2 comes back after."""
    assert cluster.postgres is not None
    postgres, last = cluster.postgres, cluster.members("gw")[-1]

    def scale_down() -> None:
        postgres.stop(remove=False)
        faults.take_out(cluster, last)
        for program in faults.programs_of(cluster, last):
            program.stop()

    def back() -> None:
        postgres.start()
        postgres.wait_ready()

    try:
        return run(cluster, work, scale_down, back, hold_s=2)
    finally:
        faults.start(cluster, last)  # the cluster as it was, for the next scenario


def bad_key_flood(cluster: Cluster, work: Workload) -> dict[str, Any]:
    """One caller (its own address) sends bad keys as fast as it can; the figures are the
    others': any answer but 200 is counted as failed (a refusal)."""
    flood = Load(cluster.edge_url, "ph_not-a-key", f"/v1/models/{work.model}/predict",
                 lambda n: {"text": "hi"}, clients=2, pause_s=0, source="127.0.0.2")
    with work.load(cluster) as load:
        load.wait_for(20)
        fault_at = time.monotonic()
        with flood:
            time.sleep(5)
        load.wait_for(20)
    refused = [a for a in flood.snapshot() if a.status == 429]
    if not refused:
        raise AssertionError("the flood was never limited: no 429 for the bad keys")
    answers = load.snapshot()
    result = figures(answers, fault_at, wait_logged(cluster, answers))
    result["failed"] = sum(a.status != 200 for a in answers)
    return result


def broken_model(cluster: Cluster, work: Workload) -> dict[str, Any]:
    """Requests pinned to a version whose artifact is gone (503 from every classifier) beside
    the production traffic, whose figures these are; every gateway must stay ready."""
    from shared.db import session_factory
    from shared.registry import Registry

    engine = make_engine(cluster.database_url)
    try:
        lost = Registry(session_factory(engine)).register(
            work.model, write=lambda v: f"file://{cluster.work}/lost/{v}", head_type="logreg",
            embedder_model="lost", embedder_dim=384, num_classes=2, train_rows=2,
            weighted_f1=0.0, metrics={}, params={}, data_fingerprint="", job_id=None).version
    finally:
        engine.dispose()
    pinned = Load(cluster.edge_url, work.key, f"/v1/models/{work.model}/predict",
                  lambda n: {"text": "hi", "version": lost}, clients=2)

    def break_it() -> None:
        with pinned:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for name in cluster.members("gw"):
                    ready = httpx.get(f"{cluster.url(name)}/ready", timeout=5)
                    if ready.status_code != 200:
                        raise AssertionError(f"{name} turned unready: {ready.text}")
                time.sleep(0.1)
        if not any(a.status == 503 for a in pinned.snapshot()):
            raise AssertionError("the broken version never answered 503")

    return run(cluster, work, break_it, hold_s=0)


SCENARIOS: dict[str, Callable[[Cluster, Workload], dict[str, Any]]] = {
    "host_loss_classifier": lambda c, w: host_loss(c, w, "cls1"),
    "host_loss_gateway": lambda c, w: host_loss(c, w, "gw1"),
    "hung_classifier": lambda c, w: hung_host(c, w, "cls2"),
    "partition_classifier": lambda c, w: partition(c, w, "cls1"),
    "partition_gateway": lambda c, w: partition(c, w, "gw2"),
    "rolling_gateways": lambda c, w: rolling(c, w, "gw"),
    "rolling_classifiers": lambda c, w: rolling(c, w, "cls"),
    "rolling_embedders": lambda c, w: rolling(c, w, "emb"),
    "rolling_trainer": lambda c, w: rolling(c, w, "trainer"),
    "hung_gateway": lambda c, w: hung_host(c, w, "gw1"),
    "postgres_restart": postgres_restart,
    "redis_restart": redis_restart,
    "scale_down_gateway_postgres_stopped": scale_down_during_outage,
    "bad_key_flood": bad_key_flood,
    "broken_model": broken_model,
}
