"""The inference log's promise with real processes and the real PostgreSQL: every answered
inference id reaches the table, once, whatever kills the gateway; a record the database
refuses is set aside without holding up the others; a full disk loses nothing silently."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.conftest import PostgresOutage, small_disk
from tests.faults.conftest import Stack
from tests.faults.stack import Service, Traffic, figure, summary
from tests.faults.test_faults import wait_logged

pytestmark = [pytest.mark.model, pytest.mark.fault]


def duplicates(stack: Stack) -> int:
    with stack.engine.connect() as c:
        return int(c.scalar(text("SELECT count(*) - count(DISTINCT id) FROM inferences")))


def outcomes(service: Service) -> dict[str, float]:
    """``polyhead_inference_log_records_total`` by outcome, from the process's /metrics."""
    families = text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text)
    return {s.labels["outcome"]: s.value for f in families
            if f.name == "polyhead_inference_log_records" for s in f.samples
            if s.name.endswith("_total")}


def _sigkill_under_load(stack: Stack, outage: PostgresOutage | None) -> None:
    with Traffic(stack.gateway.url, stack.key, stack.texts, clients=8, pause_s=0) as traffic:
        traffic.wait_for(300)
        if outage is not None:
            outage.stop()
            traffic.wait_for(200)
        stack.gateway.kill()  # SIGKILL: no shutdown code runs
    if outage is not None:
        outage.start()
    answered = traffic.ids()
    stack.gateway.start()  # a new process claims the folder the dead one left
    shipped_s = wait_logged(stack, answered, timeout_s=60)
    missing = answered - stack.logged_ids()
    figure("gateway_sigkill" + ("_db_down" if outage else ""), answered=len(answered),
           lost=len(missing), duplicates=duplicates(stack),
           shipped_after_restart_s=round(shipped_s, 2))
    assert not missing and duplicates(stack) == 0


def test_gateway_sigkill_under_load_loses_no_answer(stack: Stack) -> None:
    _sigkill_under_load(stack, None)


def test_gateway_sigkill_while_the_database_is_down(stack: Stack,
                                                    postgres_outage: PostgresOutage) -> None:
    _sigkill_under_load(stack, postgres_outage)


POISON = "poison: a value this database refuses"


def test_a_poison_record_is_set_aside_while_traffic_flows(stack: Stack) -> None:
    with stack.engine.begin() as c:  # the database refuses one value (a DBA's new constraint)
        c.execute(text(f"ALTER TABLE inferences ADD CONSTRAINT no_poison "
                       f"CHECK (input_text <> '{POISON}')"))
    headers = {"Authorization": f"Bearer {stack.key}"}
    url = f"{stack.gateway.url}/v1/models/intents/predict"
    try:
        with Traffic(stack.gateway.url, stack.key, stack.texts) as traffic:
            traffic.wait_for(20)
            poison = httpx.post(url, json={"text": POISON}, headers=headers)
            long_ids = {n: httpx.post(url, json={"text": "where is my parcel"},
                                      headers=headers | {"X-Request-ID": "r" * n})
                        for n in (64, 65, 100)}
            traffic.wait_for(100)
        assert poison.status_code == 200 and all(r.status_code == 200 for r in long_ids.values())
        normal = traffic.ids() | {r.json()["predictions"][0]["inference_id"]
                                  for r in long_ids.values()}
        landed_s = wait_logged(stack, normal, timeout_s=5)
    finally:
        with stack.engine.begin() as c:
            c.execute(text("ALTER TABLE inferences DROP CONSTRAINT no_poison"))
    poison_id = poison.json()["predictions"][0]["inference_id"]
    dead = [json.loads(line) for line in (stack.log_dir / "dead-letter.jsonl").read_text()
            .splitlines()]
    figure("poison_record", normal=len(normal), landed_after_s=round(landed_s, 2),
           quarantined=outcomes(stack.gateway).get("quarantined"))
    assert [d["record"]["id"] for d in dead] == [poison_id] and "no_poison" in dead[0]["error"]
    assert outcomes(stack.gateway)["quarantined"] == 1
    assert long_ids[64].headers["X-Request-ID"] == "r" * 64  # kept: it fits
    assert len(long_ids[65].headers["X-Request-ID"]) == 32  # replaced before any use
    assert len(long_ids[100].headers["X-Request-ID"]) == 32


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem: the log fills it within a hundred predictions."""
    with small_disk(tmp_path / "small", "64k") as path:
        yield path


def test_a_full_log_disk_still_answers_and_counts_every_record(stack: Stack,
                                                               full_disk: Path) -> None:
    gateway = Service("gateway", stack.gateway_env() | {"GATEWAY_LOG_DIR": str(full_disk)},
                      stack.gateway.workdir).start()
    try:
        with Traffic(gateway.url, stack.key, stack.texts) as traffic:
            traffic.wait_for(300)
        assert not traffic.failed(), summary(traffic.failed())
        answered = traffic.ids()
        wait_logged(stack, answered)
        counts = outcomes(gateway)
    finally:
        gateway.stop()
    figure("full_log_disk", answered=len(answered), **counts)
    assert counts["appended"] > 0 and counts["direct"] > 0 and counts["dropped"] == 0
    assert counts["appended"] + counts["direct"] + counts["dropped"] == len(answered)
    assert counts["shipped"] == counts["appended"]


def test_a_killed_worker_s_log_is_shipped_by_a_live_one(stack: Stack) -> None:
    """Two gateway processes share GATEWAY_LOG_DIR (as gunicorn workers do); one is SIGKILLed
    and never restarted: the live one claims its folder and ships it, no row twice."""
    second = Service("gateway", stack.gateway_env(), stack.gateway.workdir).start()
    with Traffic(stack.gateway.url, stack.key, stack.texts) as first_traffic, \
            Traffic(second.url, stack.key, stack.texts, clients=8, pause_s=0) as second_traffic:
        second_traffic.wait_for(200)
        killed_at = time.monotonic()
        second.kill()
        first_traffic.wait_for(50)
    shipped_s = wait_logged(stack, first_traffic.ids() | second_traffic.ids(), timeout_s=30)
    figure("worker_sigkill_shared_dir", answered_by_killed=len(second_traffic.ids()),
           shipped_by_live_after_s=round(time.monotonic() - killed_at, 2),
           duplicates=duplicates(stack))
    assert duplicates(stack) == 0 and shipped_s < 30
    assert len(list(stack.log_dir.iterdir())) <= 2  # the live folder (+ the dead-letter file)
