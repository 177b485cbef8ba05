"""Text as every contract takes it: a string that can be stored and embedded."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from shared.text import problem


def storable_text(value: Any) -> Any:
    """``value`` when it is a string PostgreSQL can store and the model can encode, else a
    ``ValueError`` saying why; the answer's message names the field (``texts[2] contains a NUL
    character ...``, ``text must be a string, not int``)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if why := problem(value):
        raise ValueError(why)
    return value


Text = Annotated[str, BeforeValidator(storable_text)]
