"""CI's fuzz run tries the same examples every time; ``scripts/fuzz`` tries new ones."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tests.fuzz.config import fuzz_settings


def drawn(environ: dict[str, str]) -> list[str]:
    """The examples one run of a fuzz test with these settings is given."""
    seen: list[str] = []

    @fuzz_settings(environ)
    @given(st.text())
    def fuzz_test(text: str) -> None:
        seen.append(text)

    fuzz_test()
    return seen


def test_ci_runs_the_same_examples_every_time() -> None:
    assert drawn({}) == drawn({}) == drawn({"FUZZ_RANDOM": "0"})


def test_scripts_fuzz_runs_new_examples_every_time() -> None:
    assert drawn({"FUZZ_RANDOM": "1"}) != drawn({"FUZZ_RANDOM": "1"})
