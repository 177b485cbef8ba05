"""The one input-limit check the gateway, the classifier and the embedder share."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from shared.limits import check_texts


def _refusal(texts: list[str], param: str = "texts") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_texts(texts, max_texts=2, max_chars=5, param=param)
    return caught.value


def test_accepts_texts_within_the_limits() -> None:
    check_texts(["hello", " a "], max_texts=2, max_chars=5, param="texts")


@pytest.mark.parametrize(("texts", "message", "param"), [
    (["a", "b", "c"], "texts has 3 texts; the limit is 2 per request", "texts"),
    (["a", "toolong"], "texts[1] has 7 characters; the limit is 5", "texts[1]"),
    (["a", " \n\t"], "texts[1] is empty or only whitespace", "texts[1]"),
])
def test_refusals_name_the_field_and_the_text(texts: list[str], message: str, param: str) -> None:
    error = _refusal(texts)
    assert error.message == message
    assert error.param == param


def test_the_field_name_is_the_services_own() -> None:
    assert _refusal(["", "x"], param="input").message == "input[0] is empty or only whitespace"
