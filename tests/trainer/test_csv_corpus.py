"""A corpus of broken and hostile CSVs sent to the trainer's upload route: each one is refused
before any job with a clear reason, or accepted with every dropped row accounted for."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.trainer.pipeline import _per_class_csv
from tests.conftest import clinc_rows, running, to_csv
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

pytestmark = pytest.mark.anyio
GOOD = clinc_rows(labels=2, per_label=6)
LIMIT = 4 * 1024 * 1024  # a million-column row (2 MB) fits


def good(extra: str = "") -> bytes:
    return to_csv(GOOD) + extra.encode()


def zipped(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("train.csv", b"0" * size)
    return buf.getvalue()


UNICODE = [("أين طردي", "track"), ("\u202eevil reversed", "track"), ("👨‍👩‍👧 family plan", "plan"),
           ("cafe\u0301 e\u0301le\u0301gant", "plan"), ("\u200b", "plan"), ("tab\there", "track"),
           ("ok 👍🏽", "track"), ("שלום עולם", "plan")]
INJECTION = [("=cmd|' /C calc'!A0", "=evil"), ("@SUM(1+1)", "=evil"), ("+1 555", "+plus"),
             ("-2 minus", "+plus"), ("=HYPERLINK(\"http://x\")", "=evil"), ("normal", "+plus")]

# name -> (the upload, expected status, a phrase the answer must contain)
CORPUS: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "latin-1": (lambda: "text,label\ncafé au lait,drink\n".encode("latin-1"), 422, "not UTF-8"),
    "utf-16": (lambda: good().decode().encode("utf-16"), 422, "UTF-16"),
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(2000), 422, "PNG"),
    "zip-bomb": (lambda: zipped(20_000_000), 422, "ZIP"),        # 20 MB of zeros, ~20 KB sent
    "gzip-bomb": (lambda: gzip.compress(b"0" * 20_000_000), 422, "gzip"),
    "over-the-limit": (lambda: b"text,label\n" + b"x,y\n" * (LIMIT // 4), 413, "limit"),
    "nul-after-8k": (lambda: good("a" * 9000 + "\x00,b\n"), 422, "NUL character"),
    "unclosed-quote": (lambda: b'text,label\n"never closed,a\n' + b"x" * 200_000, 422,
                       "unclosed quote"),
    "empty": (lambda: b"", 422, "empty"),
    "header-only": (lambda: b"text,label\n", 422, "at least 2 labels"),
    "one-label": (lambda: to_csv([(f"t{i}", "a") for i in range(10)]), 422, "at least 2 labels"),
    "no-columns": (lambda: b"foo;bar\n1;2\n", 422, "missing column"),
    "million-column-row": (lambda: good("x," * 1_000_000 + "y\n"), 202, "malformed_row"),
    "text-too-long": (lambda: good("y" * 9000 + ",label\n"), 202, "text_too_long"),
    "label-too-long": (lambda: good("text," + "z" * 300 + "\n"), 202, "label_too_long"),
    "csv-injection": (lambda: to_csv(INJECTION * 2), 202, "=evil"),
    "unicode-edges": (lambda: "\ufeff".encode() + to_csv(UNICODE * 2).replace(b"\n", b"\r\n"),
                      202, "rows_used"),
}


@pytest.fixture
async def trainer(pg_url: str, tmp_path: Path) -> Any:
    app = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False,
                                       max_upload_bytes=LIMIT), "http://127.0.0.1:9")
    async with running(app) as client:
        yield client


@pytest.mark.parametrize("name", list(CORPUS))
async def test_each_file_is_refused_clearly_or_accounted_for(trainer: httpx.AsyncClient,
                                                             name: str) -> None:
    make, status, phrase = CORPUS[name]
    response = await submit(trainer, make(), cv_folds=2)
    assert response.status_code == status, response.text[:500]
    body = response.json()
    if status != 202:
        assert phrase in body["error"]["message"], body
        assert (await trainer.get("/v1/jobs")).json()["data"] == []  # no job was created
    else:
        report = body["report"]["data"]
        assert phrase in str(report), report
        assert report["rows_read"] == report["rows_used"] + report["rows_dropped"] + \
            report["oos_rows"]


async def test_gzip_content_encoding_is_not_inflated(trainer: httpx.AsyncClient) -> None:
    """A decompression bomb sent as Content-Encoding: gzip stays the bytes it is."""
    bomb = gzip.compress(b"text,label\n" + b"a,b\n" * 5_000_000)
    response = await trainer.post("/v1/jobs", data={"name": "x"},
                                  files={"file": ("d.csv", bomb)},
                                  headers={"content-encoding": "gzip"})
    assert response.status_code == 422 and "gzip" in response.text


def test_per_class_report_neutralises_spreadsheet_formulas() -> None:
    rows = [{"label": label, "precision": 1, "recall": 1, "f1": 1, "support": 1}
            for label in ["=evil", "+plus", "-minus", "@at", "plain", "\tx"]]
    text = _per_class_csv(rows).decode()
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == [
        "'=evil", "'+plus", "'-minus", "'@at", "plain", "'\tx"]


@pytest.mark.model
async def test_unicode_and_formula_labels_train_end_to_end(pg_url: str, tmp_path: Path,
                                                           embedder_url: str) -> None:
    app = trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)
    async with running(app) as client:
        submitted = await submit(client, to_csv(INJECTION * 3 + UNICODE * 3, ), cv_folds=2,
                                 head="logreg")
        assert submitted.status_code == 202, submitted.text
        job = await wait_job(client, submitted.json()["id"], timeout_s=120)
        assert job["status"] == "succeeded", job["error"]
    [per_class] = list(tmp_path.rglob("per_class.csv"))
    assert "'=evil" in per_class.read_text()
