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
