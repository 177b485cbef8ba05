"""Words for a cluster of texts: its most distinctive words, and a name proposed from them.

The distinctive words are class-based TF-IDF: each cluster's texts are one document (the
texts in no cluster another), English stop words dropped, and a word weighs by how much more
often its cluster says it than the others do. No FastAPI here.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

KEYWORDS = 5
NAME_WORDS = 2  # distinctive words in a proposed name


def keywords(documents: list[str], top: int = KEYWORDS) -> list[list[str]]:
    """Each document's most distinctive words against the others (class-based TF-IDF)."""
    try:
        counts = CountVectorizer(stop_words="english").fit(documents)
    except ValueError:  # nothing but stop words (or no words at all)
        return [[] for _ in documents]
    matrix = counts.transform(documents)
    weights = TfidfTransformer().fit_transform(matrix).toarray()
    vocabulary = counts.get_feature_names_out()
    return [[str(vocabulary[j]) for j in np.argsort(-row, kind="stable")[:top] if row[j] > 0]
            for row in weights]


def proposed_label(distinctive: list[str], texts: list[str]) -> str:
    """A name for a cluster: its ``NAME_WORDS`` most ``distinctive`` words, in the order they first
    come in its texts (nearest the centre first), joined by ``_`` ("credit_score");
    ``"unnamed"`` when it has no distinctive word."""
    words = distinctive[:NAME_WORDS]
    if not words:
        return "unnamed"
    said = " ".join(texts).lower().split()
    return "_".join(sorted(words, key=lambda w: said.index(w) if w in said else len(said)))
