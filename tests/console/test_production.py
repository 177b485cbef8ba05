"""The Production page in a real browser against the real stack: after predictions and
feedback through the gateway, its headline figures and time-series charts (uPlot, vendored)
show them, and the window chooser switches between 24 h, 7 and 30 days."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import expect_admin_only, screenshot, sign_in

pytestmark = pytest.mark.model
TEXTS = ["please wake me up with an alarm at 7am", "set an alarm for noon",
         "what is the balance of my checking account", "how much money do i have in savings",
         "is it going to rain tomorrow", "tell me a joke", "blorf wibble snark"]
CHARTS = ("volume", "latency", "abstain", "confidence", "cache", "accuracy", "drift")


def predict_and_wait(stack: dict[str, Any], rounds: int = 3) -> int:
    """Predictions (and feedback on the first few) through the gateway; waits until the
    series route counts them all (the log ships every half second). The volume seen."""
    headers = {"Authorization": f"Bearer {stack['keys']['owner']}"}
    with httpx.Client(base_url=stack["url"], headers=headers, timeout=30) as client:
        for i in range(rounds):
            answer = client.post("/v1/models/intents/predict", json={"texts": TEXTS}).json()
            for prediction in answer["predictions"][:2] if i == 0 else []:
                sent = client.post(f"/v1/inferences/{prediction['inference_id']}/feedback",
                                   json={"label": "alarm"})
                assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 20
        while True:
            volume = sum(client.get("/v1/reports/models/intents/series").json()["all"]["volume"])
            if volume >= rounds * len(TEXTS) or time.monotonic() > deadline:
                return volume


def points(page: Page, chart: str) -> int:
    return int(page.locator(f".timeseries[data-chart={chart}]").get_attribute("data-points")
               or 0)


def test_the_production_page_charts_the_traffic(page: Page, stack: dict[str, Any]) -> None:
    # Enough answers in the hour for label drift to be told from noise (drift.min_answers).
    assert predict_and_wait(stack, rounds=40) >= 40 * len(TEXTS)
    sign_in(page, stack, stack["keys"]["owner"])
    page.click(".model[data-model=intents] .production-link")
    expect(page.locator("h1")).to_have_text("intents in production")
    expect(page.locator("button.window[aria-pressed=true]")).to_have_text("Last 24 h")
    expect(page.locator("#headline dd").first).not_to_have_text("0")
    expect(page.locator("#window")).to_contain_text("charts per hour")
    for chart in CHARTS:  # one uPlot canvas each, with points drawn
        expect(page.locator(f"#chart-{chart} .timeseries .uplot canvas")).to_have_count(1)
        assert points(page, chart) > 0, chart
    # hover readout: the legend shows the values under the cursor
    box = page.locator("#chart-volume .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    expect(page.locator("#chart-volume .u-legend .u-value").first).not_to_have_text("")
    screenshot(page, "production")

    page.click("button.window[data-window='30d']")
    expect(page.locator("button.window[aria-pressed=true]")).to_have_text("Last 30 days")
    expect(page.locator("#window")).to_contain_text("charts per day")
    assert points(page, "volume") in (30, 31)  # whole UTC days around the last 30 days
    page.click("button.window[data-window='7d']")
    expect(page.locator("#window")).to_contain_text("charts per hour")
    assert points(page, "volume") in (168, 169)


def test_a_predict_key_gets_no_production_page(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, stack["keys"]["app"])
    expect(page.locator(".model[data-model=intents]")).to_be_visible()
    expect(page.locator(".production-link")).to_have_count(0)
    expect_admin_only(page, stack, "/models/intents/production")


def test_an_unknown_model_says_so(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    expect(page.locator(".model[data-model=intents]")).to_be_visible()
    page.goto(f"{stack['url']}/console#/models/nope/production")
    expect(page.locator(".message")).to_contain_text("nope")
