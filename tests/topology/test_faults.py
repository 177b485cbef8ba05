"""The deployed shape under real faults, with steady traffic through the edge proxy: hosts
lost, hung and cut off, PostgreSQL and Redis restarted, a gateway scaled down during an outage,
rolling restarts of every tier, a flood of bad keys and a broken model. Each scenario's figures
are the ones bench/topology.py prints (services/cluster/scenarios.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.cluster.scenarios import SCENARIOS
from tests.faults.stack import figure
from tests.topology.conftest import Topology

pytestmark = pytest.mark.fault
CLIENTS = 4  # the load's: at most one request each in flight anywhere


def scenario(topology: Topology, name: str) -> dict[str, Any]:
    result = SCENARIOS[name](topology.cluster, topology.work)
    figure(name, **result)
    return result


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n.startswith("rolling")])
def test_rolling_restarts_fail_nothing_and_lose_nothing(topology: Topology, name: str) -> None:
    result = scenario(topology, name)
    assert result["failed"] == 0 and result["missing_ids"] == 0, result


@pytest.mark.parametrize("name", ["host_loss_classifier", "host_loss_gateway"])
def test_a_lost_host_fails_at_most_what_it_had_in_flight(topology: Topology, name: str) -> None:
    result = scenario(topology, name)
    assert result["failed"] <= CLIENTS and result["missing_ids"] == 0, result
    assert result["recovery_s"] <= 10, result


def test_a_hung_classifier_costs_no_tail(topology: Topology) -> None:
    """Each gateway waits GATEWAY_TRY_TIMEOUT_S for it once, ejects it and asks the other."""
    result = scenario(topology, "hung_classifier")
    assert result["failed"] == 0 and result["missing_ids"] == 0, result
    assert result["p99_ms"] <= 2000, result


def test_a_hung_gateway_costs_no_tail(topology: Topology) -> None:
    """The edge stops sending it new requests after two failed health checks (2 s), and asks
    the other gateway for each prediction it holds once 5 s pass without an answer (a gateway
    answers one within GATEWAY_PREDICT_DEADLINE_S, 4 s, when it works)."""
    result = scenario(topology, "hung_gateway")
    assert result["failed"] == 0 and result["missing_ids"] == 0, result
    assert result["p99_ms"] <= 2000, result


@pytest.mark.parametrize("name", ["partition_classifier", "partition_gateway",
                                  "scale_down_gateway_postgres_stopped"])
def test_what_was_answered_is_logged_after_the_heal(topology: Topology, name: str) -> None:
    assert scenario(topology, name)["missing_ids"] == 0


@pytest.mark.parametrize("name", ["postgres_restart", "redis_restart"])
def test_a_restarted_dependency_fails_nothing(topology: Topology, name: str) -> None:
    result = scenario(topology, name)
    assert result["failed"] == 0 and result["missing_ids"] == 0, result


def test_a_bad_key_flood_refuses_no_other_client(topology: Topology) -> None:
    assert scenario(topology, "bad_key_flood")["failed"] == 0


def test_a_broken_model_fails_no_other_and_every_gateway_stays_ready(
        topology: Topology) -> None:
    assert scenario(topology, "broken_model")["failed"] == 0
