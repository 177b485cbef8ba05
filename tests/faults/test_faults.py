"""The serving path's promises under steady concurrent traffic, with real parts failing.

Each test runs a few clients predicting through the gateway without pause, breaks one
dependency (PostgreSQL, Redis, the embedder, a classifier replica, the gateway itself), heals
it, and counts: failed predictions, their latency and message, and logged rows against
successful answers. Figures go to bench/RESULTS.md (``POLYHEAD_FIGURES``, see stack.figure).
The trainer-worker fault is tests/trainer/test_worker.py.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis

from services.gateway.inference_log.wal import count_frames
from tests.conftest import PostgresOutage
from tests.faults.conftest import Stack
from tests.faults.stack import Traffic, figure, summary

pytestmark = [pytest.mark.model, pytest.mark.fault]


def wait_logged(stack: Stack, ids: set[str], timeout_s: float = 30) -> float:
    """Seconds until every id is a row in the inference table (fails after ``timeout_s``)."""
    start = time.monotonic()
    while True:
        missing = ids - stack.logged_ids()
        if not missing:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout_s, f"{len(missing)} of {len(ids)} not logged"
        time.sleep(0.2)


def test_one_classifier_replica_killed(stack: Stack) -> None:
    """SIGKILL one of two replicas: the gateway routes around it (it retries the other one)."""
    with Traffic(stack.gateway.url, stack.key, stack.texts) as traffic:
        traffic.wait_for(40)
        killed_at = time.monotonic()
        stack.classifiers[0].kill()
        traffic.wait_for(150)
    failed = traffic.failed()
    after = [o for o in traffic.ok() if o.start > killed_at]
    figure("classifier_replica_killed", requests=len(traffic.outcomes), failed=len(failed),
           ok_after_kill=len(after), in_flight_bound=traffic.clients)
    assert len(failed) <= traffic.clients, summary(failed)  # at most those in flight
    assert len(after) >= 100
    wait_logged(stack, traffic.ids())
    stack.heal()


def test_redis_restart(stack: Stack) -> None:
    """Redis stopped, then started empty: no error, and the shared cache is written again."""
    unique = [f"{text} (ticket {i})" for i, text in enumerate(stack.texts * 10)]
    cache = redis.Redis.from_url(stack.redis.url)
    with Traffic(stack.gateway.url, stack.key, unique) as traffic:
        traffic.wait_for(20)
        stack.redis.stop()
        stopped = time.monotonic()
        traffic.wait_for(80)
        stack.redis.start()  # empty, same port
        restarted = time.monotonic()
        traffic.wait_for(40)
        deadline = time.monotonic() + 10
        while cache.dbsize() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        keys = cache.dbsize()
    cache.close()
    failed = traffic.failed()
    figure("redis_restart", requests=len(traffic.outcomes), failed=len(failed),
           down_s=round(restarted - stopped, 1),
           keys_after_restart=keys, seconds_to_first_key=round(time.monotonic() - restarted, 2))
    assert not failed, summary(failed)
    assert keys > 0, "the embedder did not use Redis again after it came back"


def test_embedder_down_fails_fast_then_recovers(stack: Stack) -> None:
    """Embedder killed: clear 503s within 1 s each; it comes back: predictions resume, with no
    restart of the classifiers or the gateway."""
    with Traffic(stack.gateway.url, stack.key, stack.texts) as traffic:
        traffic.wait_for(20)
        down_at = time.monotonic()
        stack.embedder.kill()
        time.sleep(5)
        up_at = time.monotonic()
        stack.embedder.start()  # same port; loads the model again
        ready_at = time.monotonic()
        deadline = ready_at + 30
        while not [o for o in traffic.ok() if o.start > ready_at]:
            assert time.monotonic() < deadline, summary(traffic.snapshot()[-20:])
            time.sleep(0.05)
        recovered_at = min(o.end for o in traffic.ok() if o.start > ready_at)
    during = [o for o in traffic.snapshot() if down_at <= o.start < up_at]
    failed = [o for o in during if o.status != 200]
    figure("embedder_down", requests_while_down=len(during), failed=len(failed),
           max_failure_s=round(max(o.seconds for o in failed), 3),
           p50_failure_s=round(sorted(o.seconds for o in failed)[len(failed) // 2], 3),
           restart_s=round(ready_at - up_at, 1), recovered_after_ready_s=round(
               recovered_at - ready_at, 2), statuses=summary(failed))
    assert len(failed) >= 10
    assert {o.status for o in failed} == {503}, summary(failed)
    assert all("embedder" in o.error for o in failed), summary(failed)
    assert max(o.seconds for o in failed) < 1.0, sorted(o.seconds for o in failed)[-5:]
    for service in [*stack.classifiers, stack.gateway]:
        assert service.alive  # nothing else was restarted


def test_postgres_down_for_30_seconds(stack: Stack, postgres_outage: PostgresOutage) -> None:
    """No failed prediction while PostgreSQL is down; every answer's row exists afterwards."""
    with Traffic(stack.gateway.url, stack.key, stack.texts) as traffic:
        traffic.wait_for(20)
        postgres_outage.stop()
        stopped = time.monotonic()
        time.sleep(30)
        during = len(traffic.ok())
        postgres_outage.start()
        traffic.wait_for(40)
    failed = traffic.failed()
    drained_s = wait_logged(stack, traffic.ids(), timeout_s=60)
    figure("postgres_down_30s", requests=len(traffic.outcomes), failed=len(failed),
           answered_by_end_of_outage=during, logged=len(traffic.ids()),
           outage_s=round(time.monotonic() - stopped, 1), drained_after_s=round(drained_s, 2))
    assert not failed, summary(failed)


def graceful(stack: Stack, code: int) -> bool:
    """uvicorn ends a graceful shutdown by re-raising the signal, so -15 is a clean exit too."""
    return code in (0, -signal.SIGTERM) and "Application shutdown complete" in stack.gateway.tail()


def _sigterm_under_load(stack: Stack, outage: PostgresOutage | None = None
                        ) -> tuple[Traffic, float, int]:
    with Traffic(stack.gateway.url, stack.key, stack.texts, clients=6, pause_s=0) as traffic:
        traffic.wait_for(40)
        if outage is not None:
            outage.stop()
            traffic.wait_for(100)
        signalled = time.monotonic()
        stack.gateway.signal(signal.SIGTERM)
        code = stack.gateway.wait(60)
    return traffic, signalled, code


def test_gateway_sigterm_under_load(stack: Stack) -> None:
    """SIGTERM: requests already taken are answered, new connections are refused, and every
    answered prediction is in the database when the process has exited."""
    traffic, signalled, code = _sigterm_under_load(stack)
    outcomes = traffic.snapshot()
    # Sent more than a moment before the signal: the server had read them, so must answer.
    taken = [o for o in outcomes if o.start < signalled - 0.2]
    in_flight = [o for o in outcomes if o.start < signalled < o.end and o.status == 200]
    late = [o for o in outcomes if o.start >= signalled - 0.2]
    missing = traffic.ids() - stack.logged_ids()  # no wait: the exit must have flushed them
    figure("gateway_sigterm", exit_code=code, answered=len(traffic.ok()),
           in_flight_completed=len(in_flight), refused_after=summary(late), unlogged=len(missing))
    assert graceful(stack, code), stack.gateway.tail()
    assert all(o.status == 200 for o in taken), summary(taken)
    assert in_flight, "no request was in flight at SIGTERM; the test proved nothing"
    assert all(o.status in (200, None) for o in late), summary(late)  # refused, never a 5xx
    assert not missing
    stack.heal()


def test_gateway_sigterm_while_database_down_keeps_the_log_for_the_next_start(
        stack: Stack, postgres_outage: PostgresOutage) -> None:
    traffic, _, code = _sigterm_under_load(stack, postgres_outage)
    kept = sum(count_frames(p, 0) for p in stack.log_dir.glob("*/*.wal"))
    postgres_outage.start()
    ids = traffic.ids() - stack.logged_ids()  # answered while the database was down
    stack.gateway.start()  # the next start claims the folder the last one left
    shipped_s = wait_logged(stack, ids)
    figure("gateway_sigterm_db_down", exit_code=code, answered=len(ids), kept_on_disk=kept,
           shipped_after_start_s=round(shipped_s, 2))
    assert graceful(stack, code), stack.gateway.tail()
    assert kept >= len(ids) > 0
