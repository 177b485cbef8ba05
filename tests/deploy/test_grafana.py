"""The Grafana dashboard's SQL runs on the real inference database (PostgreSQL views)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import text

from shared.db import make_engine
from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.db.types import utcnow

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def test_every_panel_query_runs(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), [
            {"id": f"i{i}", "created_at": utcnow(), "model_name": "intents", "model_version": 1,
             "head_type": "logreg", "embedder_model": "m", "input_text": f"t{i}",
             "label": "a" if i % 3 else None, "probability": 0.8, "top_k": {},
             "abstained": not i % 3, "cache_hit": bool(i % 2), "total_ms": float(i),
             "feedback_label": "a" if i < 4 else None} for i in range(12)])
    dashboard = json.loads((GRAFANA / "dashboards" / "polyhead.json").read_text())
    assert dashboard["panels"]
    with engine.connect() as c:
        for panel in dashboard["panels"]:
            sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '1 day'",
                         panel["targets"][0]["rawSql"])
            rows = c.execute(text(sql)).all()
            assert rows, panel["title"]
    engine.dispose()
    datasource = (GRAFANA / "provisioning" / "datasources" / "postgres.yaml").read_text()
    assert "uid: polyhead-pg" in datasource
