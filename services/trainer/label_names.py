"""Label names as text: a prior for labels with few examples.

A label's name usually says what it means (``alarm_query``, ``book_flight``), and the encoder
reads it as it reads a text. Where a label has few examples, the name as one more training
row helps: on HWU64 with 5 examples a label, test accuracy 0.7612 → 0.7862 with the name of
each label added twice (bench/RESULTS.md "Few examples a label"). A name that says nothing
(``label_7``, ``A12``) could mislead, so the trainer keeps the names only where they do better
on a held-out fold (:mod:`services.trainer.selection`).
"""

from __future__ import annotations

import re

import numpy as np

BELOW = 20  # compared only when a label has fewer examples: more, and a name adds nothing
COPIES = 2  # rows a name adds to its label's training rows


def as_text(label: str) -> str:
    """The name as words: separators and camelCase boundaries become spaces."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    return " ".join(re.sub(r"[_\-.:/]+", " ", spaced).split()).lower()


def with_names(x: np.ndarray, y: np.ndarray, names: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Training rows ``x, y`` with :data:`COPIES` rows of each label's name (``names``: one
    features row per label, in label order) added; unchanged when ``names`` is None."""
    if names is None:
        return x, y
    labels = np.tile(np.arange(len(names)), COPIES)
    return np.vstack([x, names[labels]]), np.concatenate([y, labels])
