"""One cluster (scripts/cluster's) for every topology test: 2 gateways behind HAProxy, 2
classifiers, 2 embedders, the trainer and its worker, PostgreSQL and Redis, each on a host of
its own. Started once (about a minute); each test breaks one thing and leaves it whole."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.cluster.cluster import Cluster
from services.cluster.scenarios import Workload, wait_served
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from tests.classifier.helpers import publish
from tests.conftest import clinc_rows, clinc_texts, free_port

ROWS = clinc_rows(labels=6, per_label=20)


@dataclass
class Topology:
    cluster: Cluster
    work: Workload
    keys: KeyStore


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    assert os.geteuid() == 0, "tests/topology need root (network namespaces); CI runs as root"
    work: Path = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(work, edge_port=free_port(), net=100 + os.getpid() % 150,
                      extra_env={"GATEWAY_LOG_DRAIN_S": "5"})
    cluster.start()
    engine = make_engine(cluster.database_url)
    try:
        publish(cluster.database_url, work / "artifacts", "intents", ROWS, cluster.url("emb1"))
        keys = KeyStore(session_factory(engine))
        key = keys.create("topology", ["predict"])
        served = Workload("intents", clinc_texts("test.csv", limit=300), key)
        wait_served(cluster, served)
        yield Topology(cluster, served, keys)
    finally:
        engine.dispose()
        cluster.stop()

