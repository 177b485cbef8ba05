"""The console in a real browser (headless Chromium) against the real stack: signing in,
the models list, a version's report and trying a text, only through the public API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from services.gateway.app import create_app as create_gateway
from shared.settings import GatewaySettings
from tests.console.conftest import expect_admin_only, screenshot, sign_in

pytestmark = pytest.mark.model
TEXT = "please wake me up with an alarm at 7am"
LABELS = 15


def test_a_good_key_lists_the_models(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    model = page.locator(".model[data-model=intents]")
    expect(model).to_be_visible()
    expect(model.locator(".versions tbody tr")).to_have_count(1)
    expect(model.locator(".badge.production")).to_have_text("production")
    expect(model.locator(".report-link")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("owner (admin, predict)")
    assert page.evaluate("sessionStorage.getItem('polyhead.key')") == stack["keys"]["owner"]
    assert page.evaluate("localStorage.length") == 0  # the key never outlives the tab
    screenshot(page, "models")


def test_a_wrong_key_gets_a_message(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, "ph_not-a-key")
    expect(page.locator("#signin-status .message")).to_contain_text("unknown or revoked")
    assert page.evaluate("sessionStorage.getItem('polyhead.key')") is None
    screenshot(page, "signin")


def test_what_a_predict_key_cannot_do_is_not_offered(page: Page, stack: dict[str, Any]
                                                     ) -> None:
    sign_in(page, stack, stack["keys"]["app"])
    expect(page.locator(".model[data-model=intents] .try-link")).to_be_visible()
    expect(page.locator(".report-link")).to_have_count(0)
    expect_admin_only(page, stack, "/models/intents/versions/1")


def test_a_report_draws_sorted_bars(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    page.click(".model[data-model=intents] .report-link")
    expect(page.locator("dl.facts dd").first).to_have_text("logreg")
    rows = page.locator("#per-label svg.bars g.row")
    expect(rows).to_have_count(LABELS)
    expect(page.locator("#per-label rect.bar.f1")).to_have_count(LABELS)
    report = httpx.get(f"{stack['url']}/v1/models/intents/versions/1/report",
                       headers={"Authorization": f"Bearer {stack['keys']['owner']}"}).json()
    worst_first = sorted(report["per_class"], key=lambda row: (row["f1"], row["label"]))
    assert [rows.nth(i).get_attribute("data-label") for i in range(LABELS)] == [
        row["label"] for row in worst_first]
    expect(page.locator("#abstain")).to_contain_text("the model abstains")
    expect(page.locator("#abstain tr.chosen")).to_have_count(1)
    expect(page.locator("#confused")).to_be_visible()
    screenshot(page, "report")


def test_trying_a_text_shows_the_label_and_coloured_words(page: Page, stack: dict[str, Any]
                                                           ) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    page.click(".model[data-model=intents] .try-link")
    page.fill("#text", TEXT)
    page.click("#try button[type=submit]")
    expect(page.locator("#prediction .label")).to_have_text("alarm")
    expect(page.locator("#prediction ol.top li")).to_have_count(5)
    words = page.locator("#words span.word")
    expect(words).to_have_count(9)
    assert page.locator("#words").text_content() == TEXT
    expect(page.locator("#words span.word.pos", has_text="alarm")).to_have_count(1)
    colour = page.locator("#words span.word", has_text="alarm").evaluate(
        "span => getComputedStyle(span).backgroundColor")
    assert colour.startswith("rgba(46, 160, 67")
    screenshot(page, "try")

    # Text from the API or the person is shown as text, never parsed as markup.
    page.fill("#text", "<b>alarm</b> at <i>7am</i>")
    page.click("#try button[type=submit]")
    expect(page.locator("#words")).to_have_text("<b>alarm</b> at <i>7am</i>")
    assert page.locator("#words b, #words i").count() == 0

    # One text per line: one answer each.
    page.fill("#text", f"{TEXT}\n\n  {TEXT}  \nasdfgh qwerty zxcvb\n")
    page.click("#try button[type=submit]")
    rows = page.locator("#predictions tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text(TEXT)
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("alarm")


def test_the_console_pages_carry_a_strict_csp(stack: dict[str, Any]) -> None:
    page = httpx.get(f"{stack['url']}/console")
    assert page.status_code == 200 and "script-src 'self'" in page.headers[
        "content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert httpx.get(f"{stack['url']}/console/app.js").headers["content-type"].startswith(
        "text/javascript")
    assert httpx.get(f"{stack['url']}/console/..%2Fme.py").status_code == 404


def test_the_routes_the_console_added_to_the_api(stack: dict[str, Any]) -> None:
    def get(path: str, key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{stack['url']}{path}", headers=headers, timeout=30)

    assert get("/v1/me", stack["keys"]["app"]).json() == {"name": "app", "scopes": ["predict"]}
    assert get("/v1/me", "ph_not-a-key").status_code == 401
    assert get("/v1/me", None).status_code == 401
    for key in ("app", "ops"):  # models are read with either scope
        models = get("/v1/models", stack["keys"][key]).json()["data"]
        assert "intents" in {model["name"] for model in models}
        assert get("/v1/models/intents", stack["keys"][key]).json()["production_version"] == 1
    report = "/v1/models/intents/versions/1/report"
    assert get(report, stack["keys"]["owner"]).json()["version"] == 1
    assert get(report, stack["keys"]["app"]).status_code == 403
    missing = get("/v1/models/intents/versions/9/report", stack["keys"]["owner"])
    assert missing.status_code == 404 and "no version 9" in missing.json()["error"]["message"]


def test_the_console_can_be_switched_off() -> None:
    """``GATEWAY_CONSOLE=false``: the console is not mounted (its paths answer 404)."""
    for on in (True, False):
        gateway = create_gateway(GatewaySettings(console=on, log_json=False))
        client = TestClient(gateway)  # no lifespan: static routes need no database
        for path in ("/console", "/console/app.js"):
            assert client.get(path).status_code == (200 if on else 404), (on, path)
