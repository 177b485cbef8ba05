"""How the model shares the CPU: batches at once x threads each, zeros filled in from the cores."""

from __future__ import annotations

import pytest

from services.embedder.backends import Concurrency, concurrency
from tests.conftest import settings


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3})


@pytest.mark.parametrize(("batches", "threads", "expected"), [
    (0, 0, Concurrency(4, 1)),  # the default: one single-threaded batch per core
    (0, 2, Concurrency(2, 2)),  # threads set: as many batches as fit the cores
    (1, 0, Concurrency(1, 4)),  # one batch at a time on every core
    (3, 0, Concurrency(3, 1)),
    (2, 3, Concurrency(2, 3)),  # both set: taken as they are
    (0, 8, Concurrency(1, 8)),
])
def test_zeros_are_filled_in_from_the_cores(four_cores: None, batches: int, threads: int,
                                            expected: Concurrency) -> None:
    chosen = settings(concurrent_batches=batches, threads=threads)
    assert concurrency(chosen, "cpu") == expected


def test_cuda_runs_one_batch_at_a_time(four_cores: None) -> None:
    assert concurrency(settings(concurrent_batches=3), "cuda").batches == 1


def test_without_an_affinity_call_the_cores_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no ``os.sched_getaffinity``: the machine's core count stands in."""
    monkeypatch.delattr("os.sched_getaffinity")
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert concurrency(settings(), "cpu") == Concurrency(3, 1)
