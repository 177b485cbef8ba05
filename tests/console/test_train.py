"""Training from the console and moving production from a report, in headless Chromium
against the real stack: a CSV previewed in the browser, the job followed to the new version's
report, a file the trainer refuses, a job that fails, and a promotion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.settings import GatewaySettings
from tests.conftest import ServerThread, clinc_rows, free_port, pg_schema, to_csv
from tests.console.conftest import expect_admin_only, screenshot, sign_in, tab
from tests.trainer.helpers import trainer_app, trainer_settings

pytestmark = pytest.mark.model
ROWS = clinc_rows(labels=3, per_label=10)
BAD_LINE = len(ROWS) + 2  # after the header and the good rows
# Every stage the page shows, recorded as it appears (the page changes to the report after).
RECORD_STAGES = """() => {
  window.stagesSeen = [];
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach(
    (node) => node.parentElement?.id === "stages" && window.stagesSeen.push(node.textContent))))
    .observe(document.getElementById("view"), { childList: true, subtree: true });
}"""


def _choose_file(page: Page, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    page.click("#train-link")
    page.set_input_files("#file", str(path))


def test_training_from_a_csv_with_one_bad_row_then_promoting_it(
        page: Page, stack: dict[str, Any], tmp_path: Path) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    _choose_file(page, tmp_path, to_csv(ROWS) + b'"book a table for two",\n')  # no label
    expect(page.locator("#preview thead th")).to_have_text(["text", "label"])
    expect(page.locator("#preview tbody tr")).to_have_count(5)
    expect(page.locator("#preview tbody tr").first.locator("td")).to_have_text(list(ROWS[0]))
    expect(page.locator("#label_column")).to_have_value("label")
    page.fill("#name", "support")
    page.click(".options summary")
    page.select_option("#head", "logreg")
    page.select_option("#cv_folds", "3")
    page.select_option("#promote", "never")
    page.evaluate(RECORD_STAGES)
    page.click("#train button[type=submit]")

    dropped = page.locator("#job-area [data-reason=empty_label]")  # from the job's answer
    expect(dropped).to_contain_text("1 row dropped: empty label")
    expect(dropped).to_contain_text(f"line {BAD_LINE}")
    screenshot(page, "train")
    expect(page).to_have_url(re.compile(r"#/models/support/versions/1$"), timeout=120_000)
    stages = page.evaluate("window.stagesSeen")
    assert stages[0] == "queued" and stages[-1] == "done", stages  # more between on a slow job
    expect(page.locator("#data-problems [data-reason=empty_label]")).to_contain_text(
        "book a table for two")
    expect(page.locator("#serving")).to_have_text("No version is in production.")
    expect(page.locator("#production")).to_contain_text("the promote policy is never")

    page.click("#promote")
    page.fill("#reason", "read the report")
    page.click("#confirm")
    expect(page.locator("#move")).to_have_text("production: none → v1 (promote by owner)")
    expect(page.locator("#serving")).to_have_text("v1 is in production.")
    expect(page.locator("#promote")).to_have_count(0)
    model = httpx.get(f"{stack['url']}/v1/models/support",
                      headers={"Authorization": f"Bearer {stack['keys']['owner']}"}).json()
    assert model["production_version"] == 1

    page.click("#rollback")  # nothing earlier to go back to: the API's answer, in place
    page.click("#confirm")
    expect(page.locator("#move .message.error")).to_contain_text("no earlier production version")


def test_a_file_the_trainer_refuses_says_why(page: Page, stack: dict[str, Any],
                                            tmp_path: Path) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    _choose_file(page, tmp_path, to_csv(clinc_rows(labels=3, per_label=1)))
    page.fill("#name", "lonely")
    page.click("#train button[type=submit]")
    expect(page.locator("#job-area .message.error")).to_contain_text(
        "Not started: need at least 2 labels with 2 or more examples each")
    jobs = httpx.get(f"{stack['url']}/v1/jobs", params={"model": "lonely"},
                     headers={"Authorization": f"Bearer {stack['keys']['owner']}"}).json()
    assert jobs["data"] == []


def test_a_binary_file_is_named_for_what_it_is(page: Page, stack: dict[str, Any],
                                              tmp_path: Path) -> None:
    """A spreadsheet chosen as the CSV: a clear message, no preview, nothing to start."""
    sign_in(page, stack, stack["keys"]["owner"])
    _choose_file(page, tmp_path, b"PK\x03\x04" + bytes(range(256)) * 200)
    expect(page.locator("#found .message.error")).to_contain_text("it holds binary data")
    expect(page.locator("#preview")).to_have_count(0)
    expect(page.locator("#train button[type=submit]")).to_be_disabled()
    latin = tmp_path / "latin-1.csv"
    latin.write_bytes("text,label\ncafé au lait,drinks\n".encode("latin-1"))
    page.set_input_files("#file", str(latin))
    expect(page.locator("#found .message.error")).to_contain_text("not UTF-8 text")


@pytest.fixture
def failing(stack: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A gateway on a database of its own (and the stack's classifier) whose trainer's
    embedder is gone (nothing listens on its port): a job is accepted, then fails after its
    one attempt."""
    with pg_schema() as db:
        engine = make_engine(db)
        upgrade(engine)
        key = KeyStore(session_factory(engine)).create("owner", ["predict", "admin"])
        nowhere = f"http://127.0.0.1:{free_port()}"
        settings = trainer_settings(db, tmp_path, max_attempts=1, embedder_wait_s=0)
        with ServerThread(trainer_app(settings, nowhere)) as trainer, ServerThread(
                create_gateway(GatewaySettings(database_url=db, classifier_urls=stack["classifier"],
                                               trainer_url=trainer.url, log_json=False,
                                               log_dir=str(tmp_path / "log"),
                                               environment="test"))) as gateway:
            yield {"url": gateway.url, "keys": {"owner": key}}
        engine.dispose()


def test_a_job_that_fails_says_at_which_stage_and_why(
        browser: Browser, failing: dict[str, Any], tmp_path: Path) -> None:
    with tab(browser, failing["url"]) as page:
        sign_in(page, failing, failing["keys"]["owner"])
        _choose_file(page, tmp_path, to_csv(ROWS))
        page.fill("#name", "doomed")
        page.click("#train button[type=submit]")
        failure = page.locator("#job-note .message.error")
        expect(failure).to_contain_text("The job failed: ", timeout=60_000)
        job = httpx.get(f"{failing['url']}/v1/jobs", params={"model": "doomed"},
                        headers={"Authorization": f"Bearer {failing['keys']['owner']}"}
                        ).json()["data"][0]
        assert job["status"] == "failed" and "the embedder is unreachable" in job["error"]
        expect(failure).to_have_text(f"The job failed: {job['error']}")
        expect(page.locator("#job-stage")).to_have_text(
            f"failed: {job['stage']} ({round(job['progress'] * 100)}%)")
        expect(page.locator("#stages li").last).to_have_text(job["stage"])
        shown = page.locator("#view").inner_text()
        assert "Traceback" not in shown and 'File "' not in shown and "127.0.0.1" not in shown
        expect(page).to_have_url(re.compile(r"#/train$"))  # no version to open
        screenshot(page, "failed-job")


def test_the_preview_reads_quotes_and_other_delimiters(page: Page, stack: dict[str, Any],
                                                       tmp_path: Path) -> None:
    sign_in(page, stack, stack["keys"]["owner"])
    data = '\ufefflabel;Text\r\ngreet;"say ""hi""; twice\nplease"\r\nbye;ciao\r\n'.encode()
    _choose_file(page, tmp_path, data)
    expect(page.locator("#preview thead th")).to_have_text(["label", "Text"])
    expect(page.locator("#preview tbody tr")).to_have_count(2)
    cell = page.locator("#preview tbody tr").first.locator("td").nth(1)
    assert cell.text_content() == 'say "hi"; twice\nplease'
    expect(page.locator("#text_column")).to_have_value("Text")
    expect(page.locator("#label_column")).to_have_value("label")


def test_a_predict_key_is_not_offered_training(page: Page, stack: dict[str, Any]) -> None:
    sign_in(page, stack, stack["keys"]["app"])
    expect(page.locator("#whoami")).to_be_visible()
    expect(page.locator("#train-link")).to_have_count(0)
    expect_admin_only(page, stack, "/train")
