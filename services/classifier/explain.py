"""Leave-one-word-out explanations: how much each word moved a head's answer for one text.

A word is a run of non-whitespace in the text as sent, so its span indexes that text. The
variants are the text without each word in turn, cleaned like any input; the service embeds
the text and every variant in one embedder call. A word's delta is p(label | text) minus
p(label | variant), for the label the head ranks first. A one-word text has no variant (the
empty text is not an input), so its word is measured against the uniform distribution: what
a head that knows nothing would answer.
"""

from __future__ import annotations

import re

import numpy as np

from shared.contracts.classify import LabelScore
from shared.contracts.explain import ExplainResponse, WordInfluence
from shared.errors import InvalidInput
from shared.heads import HeadPrediction
from shared.text import clean

_WORD = re.compile(r"\S+")


def words_of(text: str, max_words: int) -> list[re.Match[str]]:
    """The words of ``text``; a 422 naming the limit when there are more than ``max_words``."""
    words = list(_WORD.finditer(text))
    if len(words) > max_words:
        raise InvalidInput(f"text has {len(words)} words; explain takes at most {max_words} "
                           "(each word is embedded once more)", param="text")
    return words


def variants(text: str, words: list[re.Match[str]]) -> list[str]:
    """The text without each word, cleaned; none for a one-word text."""
    if len(words) < 2:
        return []
    return [clean(text[:word.start()] + text[word.end():]) for word in words]


def explanation(model: str, version: int, labels: list[str], prediction: HeadPrediction,
                probs: np.ndarray, words: list[re.Match[str]]) -> ExplainResponse:
    """The answer, from the head's ``prediction`` for the whole text and ``probs``: its
    probabilities for the text (row 0) and then each variant, in the order of ``words``."""
    explained, probability = prediction.top[0]
    column = probs[:, labels.index(explained)]
    full = float(column[0])
    without = column[1:] if len(words) > 1 else np.full(len(words), 1 / len(labels))
    runner_up = prediction.top[1] if len(prediction.top) > 1 else None
    return ExplainResponse(
        model=model, version=version, label=prediction.label, abstained=prediction.abstained,
        explained_label=explained, probability=round(probability, 6),
        runner_up=LabelScore(label=runner_up[0], probability=round(runner_up[1], 6))
        if runner_up else None,
        words=[WordInfluence(word=word.group(), start=word.start(), end=word.end(),
                             delta=round(full - float(p), 6))
               for word, p in zip(words, without, strict=True)])
