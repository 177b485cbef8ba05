"""Console fixtures: the real stack behind a gateway (a model trained by the real trainer
from CLINC150 rows, so its report is real) and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from services.classifier.app import create_app as create_classifier
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.conftest import ROOT, ServerThread, clinc_rows, pg_schema, to_csv
from tests.trainer.helpers import trainer_app, trainer_settings

CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by scripts/packages


@pytest.fixture(scope="package")
def stack(embedder_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    """Model ``intents`` v1 (15 CLINC150 intents, ``alarm`` among them) trained through the
    trainer, served by a classifier behind a gateway; keys with both scopes (owner), predict
    only (app) and admin only (ops)."""
    tmp = tmp_path_factory.mktemp("console")
    with pg_schema() as db:
        engine = make_engine(db)
        upgrade(engine)
        keys = KeyStore(session_factory(engine))
        found = {"owner": keys.create("owner", ["predict", "admin"]),
                 "app": keys.create("app", ["predict"]), "ops": keys.create("ops", ["admin"])}
        with ServerThread(trainer_app(trainer_settings(db, tmp), embedder_url)) as trainer:
            with httpx.Client(base_url=trainer.url, timeout=30) as client:
                train(client, "intents", to_csv(clinc_rows(labels=15, per_label=20)))
            classifier = create_classifier(
                ClassifierSettings(database_url=db, artifact_store=str(tmp / "artifacts"),
                                   log_json=False, environment="test"),
                embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
            with ServerThread(classifier) as replica, ServerThread(create_gateway(
                    GatewaySettings(database_url=db, classifier_urls=replica.url,
                                    trainer_url=trainer.url, log_dir=str(tmp / "log"),
                                    log_json=False, environment="test"))) as gateway:
                yield {"url": gateway.url, "keys": found, "classifier": replica.url}
        engine.dispose()


def train(client: httpx.Client, name: str, data: bytes, timeout_s: float = 180) -> None:
    """Train model ``name`` from a CSV through ``client`` (a trainer, or a gateway with an
    admin key) and wait until the job succeeds."""
    created = client.post("/v1/jobs", data={"name": name, "head": "logreg", "cv_folds": "3"},
                          files={"file": (f"{name}.csv", data, "text/csv")})
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + timeout_s
    while (job := client.get(f"/v1/jobs/{created.json()['id']}").json()
           )["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"training still {job['stage']}"
        time.sleep(0.2)
    assert job["status"] == "succeeded", job["error"]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, stack: dict[str, Any]) -> Iterator[Page]:
    """A fresh tab on the stack's gateway (see :func:`tab`)."""
    with tab(browser, stack["url"]) as opened:
        yield opened


@contextmanager
def tab(browser: Browser, gateway_url: str) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that may reach ``gateway_url`` only: any other URL
    is refused and fails the test, as does a script error or a CSP violation."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    outside: list[str] = []
    problems: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith(gateway_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_gateway)
    tab = context.new_page()
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("console", lambda line: problems.append(line.text) if line.type == "error"
           and not line.text.startswith("Failed to load resource") else None)
    yield tab
    context.close()
    assert not outside, f"the console asked for URLs outside the gateway: {outside}"
    assert not problems, f"errors in the page: {problems}"


def sign_in(page: Page, stack: dict[str, Any], key: str) -> None:
    page.goto(f"{stack['url']}/console")
    page.fill("#key", key)
    page.click("#signin button[type=submit]")


def expect_admin_only(page: Page, stack: dict[str, Any], route: str) -> None:
    """Opening the console's ``route`` (e.g. ``/train``) with the signed-in key says the page
    needs the admin scope."""
    page.goto(f"{stack['url']}/console#{route}")
    expect(page.locator(".message")).to_contain_text("needs a key with the admin scope")


def screenshot(page: Page | Locator, name: str) -> None:
    """``docs/console-<name>.png`` for the README (the whole page, or one part of it), with
    POLYHEAD_SCREENSHOTS=1 only (so test runs do not rewrite tracked files)."""
    if os.environ.get("POLYHEAD_SCREENSHOTS") != "1":
        return
    path = ROOT / "docs" / f"console-{name}.png"
    if isinstance(page, Page):
        page.screenshot(path=path, full_page=True)
    else:
        page.screenshot(path=path)
