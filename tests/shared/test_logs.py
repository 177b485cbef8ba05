from __future__ import annotations

import json
import logging

import pytest
from asgi_correlation_id import correlation_id

from shared.logs import configure_logging


def test_json_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("embedder", "INFO", json=True)
    token = correlation_id.set("req-42")
    try:
        logging.getLogger("polyhead.test").info("embedded", extra={"texts": 3})
    finally:
        correlation_id.reset(token)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["request_id"] == "req-42" and line["service"] == "embedder"
    assert line["message"] == "embedded" and line["texts"] == 3 and line["level"] == "INFO"
