"""Text normalisation shared by the cache keys, the embedder and the classifier heads."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize(text: str, *, lowercase: bool = False) -> str:
    """NFC, trimmed, runs of whitespace collapsed to one space; lowercased if asked.

    The embedder embeds the normalised text, so two inputs with the same normal form share one
    cache entry *and* one vector. Lowercasing is only asked for models whose tokenizer
    lowercases anyway (uncased models), where it changes nothing but the hit ratio.
    """
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return text.lower() if lowercase else text


def clean(text: str) -> str:
    """The cleaning every classifier head applies, in training and in serving alike.

    One function, imported by the trainer and the classifier, so the two can never drift apart.
    Lowercasing is left to the embedder's tokenizer (an uncased model lowercases anyway).
    """
    return normalize(text)


_SURROGATES = re.compile("[\ud800-\udfff]")


def problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or embedded as it is, or None when it is fine.

    A NUL character cannot be stored in a PostgreSQL text column (the inference log would
    refuse the row), and a lone UTF-16 surrogate (valid in JSON escapes, not in UTF-8) cannot
    be encoded at all: both are refused up front with a clear message instead.
    """
    if "\x00" in text:
        return f"contains a NUL character (U+0000) at position {text.index(chr(0))}"
    bad = _SURROGATES.search(text)
    if bad:
        return (f"contains a lone surrogate (U+{ord(bad.group()):04X}) at position "
                f"{bad.start()}, which is not valid Unicode text")
    return None
