"""The Grafana dashboard: its SQL runs on the real inference database (views over the rollups,
filled as the log shipper fills them) and finds data; its Prometheus queries name only metrics
the gateway really exports, so renaming a metric breaks this test, not the dashboard."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.gateway.feedback import store_feedback
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.types import utcnow
from tests.gateway.helpers import gateway_client, record, ship

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
# The inference log's metrics (services/gateway/inference_log/metrics.py), as Prometheus names them.
LOG_METRICS = {"polyhead_inference_log_records_total", "polyhead_inference_log_errors_total",
               "polyhead_inference_log_backlog_records", "polyhead_inference_log_backlog_bytes",
               "polyhead_inference_log_oldest_seconds"}


def panels(datasource: str) -> list[dict[str, Any]]:
    dashboard = json.loads((GRAFANA / "dashboards" / "polyhead.json").read_text())
    chosen = [p for p in dashboard["panels"] if p["datasource"]["uid"] == datasource]
    assert chosen, datasource
    return chosen


def rollout_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A v2 shadow row for each of the first half of ``rows`` (disagreeing on one), and canary
    rows of v3, so the rollout panels' pairs and roles find data."""
    shadows = [row | {"id": uuid.uuid4().hex, "model_version": 2, "role": "shadow",
                      "shadow_of": row["id"], "total_ms": None,
                      "label": "b" if i == 0 else row["label"]}
               for i, row in enumerate(rows[:6])]
    canaries = [row | {"id": uuid.uuid4().hex, "model_version": 3, "role": "canary",
                       "shadow_of": None} for row in rows[6:9]]
    return shadows + canaries


def test_every_sql_panel_query_finds_data(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    now = utcnow()
    rows = [record(now - timedelta(minutes=i), label="a" if i % 3 else None,
                   abstained=not i % 3, cache_hit=bool(i % 2), total_ms=float(i))
            for i in range(12)]
    ship(engine, rows)
    ship(engine, rollout_rows(rows))
    for row in rows[:4]:
        store_feedback(session_factory(engine), row["id"], "a")
    answers: dict[str, Sequence[Any]] = {}
    with engine.connect() as c:
        for panel in panels("polyhead-pg"):
            sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '1 day'",
                         panel["targets"][0]["rawSql"])
            found = c.execute(text(sql)).all()
            assert found and any(r[-1] is not None for r in found), panel["title"]
            answers[panel["title"]] = found
    engine.dispose()
    [(model, version, pairs, agreement)] = answers["Rollouts: shadow agreement (period)"]
    assert (model, version, pairs, round(float(agreement), 4)) == ("intents", 2, 6, 0.8333)
    roles = {(r.role, r.version): r.requests
             for r in answers["Rollouts: production vs candidate (period)"]}
    assert roles == {("production", 1): 12, ("shadow", 2): 6, ("canary", 3): 3}
    datasource = (GRAFANA / "provisioning" / "datasources" / "postgres.yaml").read_text()
    assert "uid: polyhead-pg" in datasource


@pytest.mark.anyio
async def test_prometheus_panels_name_the_gateways_metrics(tmp_path: Path) -> None:
    async with gateway_client(f"sqlite:///{tmp_path / 'polyhead.db'}",
                              tmp_path / "inference-log") as client:
        exposition = (await client.get("/metrics")).text
    exported = set(re.findall(r"^# TYPE (\S+)", exposition, re.MULTILINE))
    assert exported >= LOG_METRICS, LOG_METRICS - exported
    for panel in panels("polyhead-prom"):
        for target in panel["targets"]:
            metrics = set(re.findall(r"\bpolyhead_\w+", target["expr"]))
            assert metrics and metrics <= LOG_METRICS, (panel["title"], metrics)
    datasource = (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    assert "uid: polyhead-prom" in datasource
