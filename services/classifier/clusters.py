"""Group texts by meaning: the review queue's candidate new intents.

Texts are clustered by average-linkage agglomerative clustering on cosine distance, cut at a
distance: a cluster's texts are on average closer to each other than that. It needs no number
of clusters, and a text like no other stays alone (answered as *unclustered*). They are
clustered in the version's intent map (:mod:`shared.intent_map`: the directions along which
its labels differ, and the cut the trainer measured on labels held out of them) when it has
one, else on their sentence embeddings cut at ``DISTANCE_THRESHOLD``. Measured with
all-MiniLM-L6-v2 on CLINC150 test texts (20 intents x 10 texts plus 50 out-of-scope ones;
60 x 8 plus 200), that cut makes clusters 96-99% pure (homogeneity), clusters about 90% of the
intent texts and leaves 71-86% of the out-of-scope texts alone; a wider cut clusters more but
mixes intents, which labelling a whole cluster must not. HDBSCAN (minimum cluster size 3)
scored alike but left more intent texts out.

Each cluster is described by its most distinctive words, class-based TF-IDF (each cluster's
texts are one document, the unclustered texts another, English stop words dropped), a name
proposed from them (:func:`proposed_label`), and the head's label whose prototypes
(:mod:`shared.in_scope`) lie nearest the cluster's centre (each prototype's label:
:meth:`shared.heads.Head.prototype_owners`). No FastAPI here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from shared.heads import Head
from shared.intent_map import IntentMap

DISTANCE_THRESHOLD = 0.55  # average cosine distance within a cluster, at most
KEYWORDS = 5
NAME_WORDS = 2  # distinctive words in a proposed name


@dataclass(frozen=True)
class Group:
    members: list[int]  # indexes into the texts, nearest the centre first
    keywords: list[str]
    proposed_label: str
    nearest_label: str | None
    similarity: float | None  # None: the head has no prototypes


def cluster_texts(texts: list[str], rows: np.ndarray, head: Head,
                  intent_map: IntentMap | None = None) -> tuple[list[Group], list[int]]:
    """Clusters of two texts or more, largest first, and the indexes of the texts in none.
    ``rows``: the texts' features rows for ``head`` (:meth:`Head.inputs`), in order; texts are
    clustered in ``intent_map``, or on their (unit) sentence embeddings without one."""
    vectors = head.sentence(rows)
    assignment = (assign(intent_map.rows(vectors), intent_map.distance) if intent_map
                  else assign(vectors))
    sizes = np.bincount(assignment) if len(assignment) else np.zeros(0, dtype=int)
    grouped = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 1]
    unclustered = [i for i, c in enumerate(assignment) if sizes[c] == 1]
    documents = [" ".join(texts[i] for i in np.flatnonzero(assignment == c)) for c in grouped]
    words = keywords([*documents, " ".join(texts[i] for i in unclustered)])
    owners = head.prototype_owners() if head.in_scope_score is not None else None
    groups = []
    for c, described in zip(grouped, words, strict=False):
        members = np.flatnonzero(assignment == c)
        centre = vectors[members].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        order = np.argsort(-(vectors[members] @ centre), kind="stable")
        label, similarity = nearest_label(centre, head, owners, rows[members].mean(axis=0))
        ordered = [int(i) for i in members[order]]
        groups.append(Group(members=ordered, keywords=described,
                            proposed_label=proposed_label(described, [texts[i] for i in ordered]),
                            nearest_label=label, similarity=similarity))
    return groups, unclustered


def assign(vectors: np.ndarray, distance: float = DISTANCE_THRESHOLD) -> np.ndarray:
    """A cluster number for each row (a single row is its own cluster)."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    clustering = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=distance)
    return np.asarray(clustering.fit_predict(vectors), dtype=int)


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


def proposed_label(keywords: list[str], texts: list[str]) -> str:
    """A name for a cluster: its ``NAME_WORDS`` most distinctive words, in the order they first
    come in its texts (nearest the centre first), joined by ``_`` ("credit_score");
    ``"unnamed"`` when it has no distinctive word."""
    words = keywords[:NAME_WORDS]
    if not words:
        return "unnamed"
    said = " ".join(texts).lower().split()
    return "_".join(sorted(words, key=lambda w: said.index(w) if w in said else len(said)))


def nearest_label(centre: np.ndarray, head: Head, owners: np.ndarray | None,
                  mean_row: np.ndarray) -> tuple[str | None, float | None]:
    """The label whose prototypes lie nearest ``centre`` and the cosine to the nearest one
    (``owners``: each prototype's label index); for a head without prototypes, its top label
    for ``mean_row`` (the members' mean features row) and no similarity."""
    if head.in_scope_score is None or owners is None:
        return head.labels[int(head.predict_proba(mean_row[None]).argmax())], None
    cosines = head.in_scope_score.prototypes @ centre
    best = int(cosines.argmax())
    return head.labels[int(owners[best])], round(float(cosines[best]), 4)
