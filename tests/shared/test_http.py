"""Reading another polyhead service's error message (never relaying anything else), and
waiting for a service to be ready."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI, Response

from shared.http import NotReady, polyhead_error_message, wait_ready
from tests.conftest import ServerThread, free_port


def test_a_polyhead_error_body_gives_its_message() -> None:
    response = httpx.Response(422, json={"error": {"message": "texts[0] is empty"}})
    assert polyhead_error_message(response) == "texts[0] is empty"


def test_the_message_is_cut_to_max_chars() -> None:
    response = httpx.Response(422, json={"error": {"message": "x" * 500}})
    assert polyhead_error_message(response, 10) == "x" * 10


def test_anything_else_gives_none() -> None:
    for response in (httpx.Response(502, text="<html>Bad Gateway at 10.0.0.7</html>"),
                     httpx.Response(500, json={"detail": "internal"}),
                     httpx.Response(500, json=["error"])):
        assert polyhead_error_message(response) is None


def test_wait_ready_returns_once_the_service_answers_200() -> None:
    app = FastAPI()
    answers: list[int] = []  # what /ready answers next; 200 once empty

    @app.get("/ready")
    def ready() -> Response:
        return Response(status_code=answers.pop(0) if answers else 200)

    with ServerThread(app) as server:  # its own start waits with wait_ready: ready now
        answers.extend([503, 503])
        wait_ready(server.url, timeout_s=5, interval_s=0.01)
        assert answers == []  # it asked again after each 503, until the 200


def test_wait_ready_gives_up_after_the_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(NotReady, match="not ready after 0.3 s") as caught:
        wait_ready(url, timeout_s=0.3, interval_s=0.05)
    assert not caught.value.exited
    assert time.monotonic() - started < 3


def test_wait_ready_stops_at_once_when_the_process_died() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NotReady, match="exited") as caught:
        wait_ready(url, timeout_s=60, alive=lambda: False)
    assert caught.value.exited
