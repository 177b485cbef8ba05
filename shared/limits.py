"""The input limits the gateway, the classifier and the embedder all put on texts."""

from __future__ import annotations

from shared.errors import InvalidInput


def check_texts(texts: list[str], *, max_texts: int, max_chars: int, param: str) -> None:
    """Refuse too many texts, a text over ``max_chars``, or an empty one, with a 422 that names
    the request field ``param`` (and the index of the text at fault)."""
    if len(texts) > max_texts:
        raise InvalidInput(f"{param} has {len(texts)} texts; the limit is {max_texts} "
                           "per request", param=param)
    for i, text in enumerate(texts):
        check_text(text, max_chars=max_chars, param=f"{param}[{i}]")


def check_text(text: str, *, max_chars: int, param: str) -> None:
    """Refuse one text over ``max_chars``, or an empty one, with a 422 that names ``param``."""
    if len(text) > max_chars:
        raise InvalidInput(f"{param} has {len(text)} characters; the limit is {max_chars}",
                           param=param)
    if not text.strip():
        raise InvalidInput(f"{param} is empty or only whitespace", param=param)
