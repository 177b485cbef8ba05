"""Calls to the trainer's API from a CLI command: the answer or a :class:`CliError`, and a
job followed to its end with a progress bar."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import httpx
from tqdm import tqdm

from shared.contracts.training import Job

DEFAULT_URL = os.environ.get("TRAINER_URL", "http://127.0.0.1:8003")


class CliError(Exception):
    """What the command line prints after ``polyhead:`` before it exits with 1."""


def check(response: httpx.Response) -> Any:
    """The JSON of a successful answer; a :class:`CliError` with the service's message else."""
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise CliError(f"{response.status_code}: {error['message']}")
        except (ValueError, KeyError, TypeError):
            raise CliError(f"{response.status_code}: {response.text[:500]}") from None
    return response.json()


def follow(client: httpx.Client, job_id: str, *, quiet: bool = False,
           poll_s: float = 0.5) -> Job:
    """Poll a job to its end, drawing a progress bar of its stages."""
    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr,
               bar_format="{desc:<18} {percentage:3.0f}%|{bar}| {elapsed}")
    try:
        while True:
            job = Job.model_validate(check(_get_patiently(client, f"/v1/jobs/{job_id}")))
            bar.set_description_str(job.stage)
            bar.update(round(job.progress * 100) - bar.n)
            if job.status in ("succeeded", "failed"):
                return job
            time.sleep(poll_s)
    finally:
        bar.close()


def _get_patiently(client: httpx.Client, path: str, patience_s: float = 60) -> httpx.Response:
    """GET, riding out a trainer restart or a database blip (503, refused connection) for
    up to ``patience_s``: a long job is not given up on because one poll failed."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            response = client.get(path)
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)
