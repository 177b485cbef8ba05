"""Production against its candidate on constructed rows, on real PostgreSQL and SQLite:
agreement on the same inputs, label shares, confidence, abstentions, latency, accuracy on
feedback with its Wilson interval; and the route (admin) with its errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine

from services.cli.compare import describe
from services.gateway.app import create_app
from services.gateway.reports import candidate_report
from shared.contracts.rollout import Candidate
from shared.db.types import utcnow
from shared.settings import GatewaySettings
from tests.rollouts.rows import give_feedback, registry_with, row, shadow_of as shadow_row, ship

AT = utcnow().replace(microsecond=0) - timedelta(hours=1)
WINDOW = (AT - timedelta(hours=1), AT + timedelta(hours=1))
PRODUCTION = ["billing", "refund", "greeting"] * 3 + [None]
SHADOW = ["billing", "refund", "greeting", "billing", "refund", "billing", "billing",
          "billing", "billing", "refund"]  # differs from production at 5, 7, 8 and 9
TRUTH = ["billing", "refund", "greeting", "billing", "refund", "greeting", "refund", "greeting"]


def shadowed(engine: Engine) -> list[dict[str, Any]]:
    """Ten production rows and their shadows in the window, one pair before it; feedback on
    the first eight production rows: production right on 6, the shadow on 5."""
    production = [row(i, AT, label, total_ms=10.0 + i) for i, label in enumerate(PRODUCTION)]
    early = row(50, AT - timedelta(days=2), "refund")
    ship(engine, production + [early] + [
        shadow_row(p, 100 + i, label, head_ms=float(i))
        for i, (p, label) in enumerate(zip(production, SHADOW, strict=True))]
        + [shadow_row(early, 150, "billing")])
    give_feedback(engine, {p["id"]: t for p, t in zip(production, TRUTH, strict=False)})
    return production


def test_shadow_against_production(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, Candidate(version=2, mode="shadow", share=1.0))
    shadowed(bare_engine)
    report = candidate_report(registry.sessions, registry, "intents", *WINDOW)
    assert (report["mode"], report["candidate_version"]) == ("shadow", 2)
    assert report["agreement"] == {"pairs": 10, "rate": 0.6}
    production, shadow = report["production"], report["candidate"]
    assert (production["requests"], shadow["requests"]) == (10, 10)
    assert (production["versions"], shadow["versions"]) == ({"1": 10}, {"2": 10})
    assert {x["label"]: x["share"] for x in production["labels"]} == {
        "billing": 0.3, "refund": 0.3, "greeting": 0.3, "(abstained)": 0.1}
    assert shadow["labels"][0] == {"label": "billing", "share": 0.6}
    assert (production["abstain_rate"], shadow["abstain_rate"]) == (0.1, 0.0)
    assert production["mean_confidence"] == pytest.approx(0.8)
    assert production["latency_ms"]["total"] == {"p50": 14.5, "p95": 18.55}
    assert shadow["latency_ms"] == {"total": {"p50": None, "p95": None},
                                    "head": {"p50": 4.5, "p95": 8.55}}
    # The shadow is scored against the feedback its production rows received.
    assert shadow["accuracy_on_feedback"] == {"rows": 8, "correct": 5, "accuracy": 0.625,
                                              "ci95": [0.3057, 0.8632]}
    assert production["accuracy_on_feedback"] == {"rows": 8, "correct": 6, "accuracy": 0.75,
                                                  "ci95": [0.4093, 0.9285]}
    printed = describe(orjson.dumps(report)).splitlines()  # polyhead compare's printout
    assert printed[-3] == "agreement               60.0% of 10 pairs"
    assert printed[6] == (f"{'accuracy on feedback':24}{'75.0% [41%-93%] n=8':>22}"
                          f"{'62.5% [31%-86%] n=8':>22}")
    assert printed[5].endswith("14.5/18.55" + "4.5/8.55 (head)".rjust(22))


def test_canary_against_production(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, Candidate(version=2, mode="canary", share=0.4))
    production = [row(i, AT, label) for i, label in enumerate(PRODUCTION[:6])]
    canary = [row(10 + i, AT, label, role="canary", version=2, total_ms=30.0)
              for i, label in enumerate(["refund", "refund", None, "billing"])]
    ship(bare_engine, production + canary)
    give_feedback(bare_engine, {production[0]["id"]: "billing", production[1]["id"]: "refund",
                                production[2]["id"]: "refund", canary[0]["id"]: "refund",
                                canary[1]["id"]: "billing", canary[2]["id"]: "billing",
                                canary[3]["id"]: "billing"})
    report = candidate_report(registry.sessions, registry, "intents", *WINDOW)
    assert report["mode"] == "canary"
    assert report["agreement"]["rate"] is None and "no same inputs" in report["agreement"]["note"]
    assert (report["production"]["requests"], report["candidate"]["requests"]) == (6, 4)
    assert report["candidate"]["abstain_rate"] == 0.25
    assert report["candidate"]["latency_ms"]["total"] == {"p50": 30.0, "p95": 30.0}
    assert {k: report["candidate"]["accuracy_on_feedback"][k] for k in ("rows", "correct")} \
        == {"rows": 4, "correct": 2}
    assert {k: report["production"]["accuracy_on_feedback"][k] for k in ("rows", "correct")} \
        == {"rows": 3, "correct": 2}


@pytest.mark.anyio
async def test_the_route_compares_and_refuses(pg_url: str, pg_engine: Engine,
                                              tmp_path: Path) -> None:
    registry = registry_with(pg_engine, Candidate(version=2, mode="shadow", share=1.0))
    shadowed(pg_engine)
    app = create_app(_settings(pg_url, tmp_path))
    window = {"from": WINDOW[0].isoformat(), "to": WINDOW[1].isoformat()}
    async with LifespanManager(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        url = "/v1/reports/models/intents/candidate"
        answer = (await http.get(url, params=window)).json()
        assert answer == candidate_report(registry.sessions, registry, "intents", *WINDOW) \
            | {"from": WINDOW[0].isoformat(), "to": WINDOW[1].isoformat()}
        too_long = {"from": (AT - timedelta(days=8)).isoformat(), "to": AT.isoformat()}
        assert (await http.get(url, params=too_long)).status_code == 422
        assert (await http.get(url, params={"from": AT.isoformat(),
                                            "to": AT.isoformat()})).status_code == 422
        assert (await http.get("/v1/reports/models/nope/candidate")).status_code == 404
        # No window: since the candidate started, not a day back (production's older rows
        # would count against a candidate that did not exist yet).
        since = registry.candidate_since("intents")
        assert since is not None
        assert (await http.get(url)).json()["from"] == since.isoformat()
        registry.clear_candidate("intents")
        assert registry.candidate_since("intents") is None
        refused = await http.get(url, params=window)
        assert refused.status_code == 409 and "version=" in refused.json()["error"]["message"]
        earlier = (await http.get(url, params=window | {"version": "2"})).json()
        assert (earlier["mode"], earlier["agreement"]["rate"]) == ("shadow", 0.6)


def _settings(pg_url: str, tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(database_url=pg_url, log_json=False, environment="test", auth=False,
                           log_dir=str(tmp_path / "log"), classifier_urls="http://127.0.0.1:9",
                           rollout_check_s=0)
