"""The loop the console exists for, in headless Chromium against the real stack: a product
app's predictions of two intents the model does not know queue for review, grouped by meaning;
a cluster is labelled with a new label; retraining from the feedback lands on the new
version's report, which knows the label."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import clinc_rows, to_csv
from tests.console.conftest import screenshot, sign_in, train

pytestmark = pytest.mark.model
MODEL = "helpdesk"  # its own model: the other tests keep "intents" v1 in production
WEATHER = ["what's the weather on mars", "what is the weather like on mars today",
           "how is the weather on mars", "tell me the weather on mars",
           "what's the weather on jupiter", "how is the weather on venus right now"]
TABLES = ["book a table at an italian restaurant", "reserve a table for two at the sushi place",
          "book me a table for four at a thai restaurant tonight",
          "can you reserve a table at the steakhouse", "get us a table at a pizza restaurant",
          "book a dinner table at the french bistro"]


def _api(stack: dict[str, Any], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["url"], timeout=60,
                        headers={"Authorization": f"Bearer {stack['keys'][key]}"})


def _served(app: httpx.Client, texts: list[str], timeout_s: float = 30) -> httpx.Response:
    """The answer to ``texts`` once the new model is served (classifiers and the gateway
    learn of it within seconds)."""
    deadline = time.monotonic() + timeout_s
    while (answered := app.post(f"/v1/models/{MODEL}/predict", json={"texts": texts})
           ).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answered.status_code == 200, answered.text
    return answered


def _queued(owner: httpx.Client, texts: list[str], timeout_s: float = 30) -> dict[str, Any]:
    """The review queue once every one of ``texts`` is in it (the log ships in a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        queue = owner.get(f"/v1/models/{MODEL}/review").json()
        found = {t["text"] for c in queue["clusters"] for t in c["texts"]}
        found |= {t["text"] for t in queue["unclustered"] + queue["near_known"]}
        if set(texts) <= found or time.monotonic() > deadline:
            assert set(texts) <= found, sorted(set(texts) - found)
            return queue
        time.sleep(0.2)


def test_labelling_a_review_cluster_with_a_new_label_and_retraining(
        page: Page, stack: dict[str, Any]) -> None:
    with _api(stack, "owner") as owner, _api(stack, "app") as app:
        train(owner, MODEL, to_csv(clinc_rows(labels=15, per_label=20)))
        answered = _served(app, WEATHER + TABLES)
        # Only the texts the model was unsure of queue; these are far from all it knows.
        unsure = [text for text, p in zip(WEATHER + TABLES, answered.json()["predictions"],
                                          strict=True) if p["abstained"] or p["probability"] < 0.5]
        assert set(WEATHER) <= set(unsure), answered.json()
        _queued(owner, unsure)

    sign_in(page, stack, stack["keys"]["owner"])
    page.locator(f'.model[data-model="{MODEL}"] .review-link').click()
    expect(page).to_have_url(re.compile(rf"#/models/{MODEL}/review$"))
    weather = page.locator(".cluster", has=page.locator(".chip", has_text=re.compile("^weather$")))
    expect(weather).to_have_count(1)
    expect(weather.locator("li")).to_have_count(len(WEATHER))
    expect(weather.locator(".nearest")).to_contain_text("nearest label")
    expect(page.locator("#review-summary")).to_contain_text("with no feedback yet")
    screenshot(page, "review")

    page.fill("#review-below", "0.499")  # the weather texts are below 0.5 (checked above)
    page.select_option("#review-days", "1")
    page.click("#review-filters button")
    expect(page.locator("#review-summary")).to_contain_text("below 49.9% confidence")
    expect(weather.locator("li")).to_have_count(len(WEATHER))

    page.fill("#review-label", "weather")
    expect(page.locator("#new-label")).to_be_checked()  # not one of the labels it knows
    weather.locator(".label-cluster").click()
    expect(page.locator("#label-note")).to_have_text(
        f"Labelled {len(WEATHER)} inferences “weather”.")
    expect(weather).to_have_count(0)

    page.click("#retrain")
    expect(page).to_have_url(re.compile(rf"#/models/{MODEL}/versions/2$"), timeout=240_000)
    expect(page.locator("#per-label")).to_contain_text("weather")
