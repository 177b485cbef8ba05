"""Group texts by meaning: the review queue's candidate new intents.

First the texts that look like a known label's are set apart (:func:`near_known`): unsure
answers between labels the head knows, worth a correction but not a new intent. On CLINC150
with 38 of 150 intents left out of training (``bench/discovery.py``), this lifts the share of
the candidates that are of a left-out intent from 0.62 to 0.85 at the review's default
confidence (0.7), keeping 91% of the left-out intents' texts that queued.

The candidates are clustered by average-linkage agglomerative clustering on cosine distance,
cut at a distance: a cluster's texts are on average closer to each other than that. It needs
no number of clusters, and a text like no other stays alone (answered as *unclustered*). They
are clustered in the version's intent map (:mod:`shared.intent_map`: the directions along
which its labels differ, and the cut the trainer measured on labels held out of them) when it
has one, else on their sentence embeddings cut at ``DISTANCE_THRESHOLD``. Measured with
all-MiniLM-L6-v2 on CLINC150 test texts (20 intents x 10 texts plus 50 out-of-scope ones;
60 x 8 plus 200), that cut makes clusters 96-99% pure (homogeneity), clusters about 90% of the
intent texts and leaves 71-86% of the out-of-scope texts alone; a wider cut clusters more but
mixes intents, which labelling a whole cluster must not. HDBSCAN (minimum cluster size 3)
scored alike but left more intent texts out.

Each cluster is described by its most distinctive words and a name proposed from them
(:mod:`services.classifier.cluster_names`), and the head's label whose prototypes
(:mod:`shared.in_scope`) lie nearest the cluster's centre (each prototype's label:
:meth:`shared.heads.Head.prototype_owners`). No FastAPI here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from services.classifier.cluster_names import keywords, proposed_label
from shared.heads import Head
from shared.intent_map import IntentMap

DISTANCE_THRESHOLD = 0.55  # average cosine distance within a cluster, at most
NEIGHBOURS = 3  # other texts whose mean cosine to a text says how alike its peers are


@dataclass(frozen=True)
class Group:
    members: list[int]  # indexes into the texts, nearest the centre first
    keywords: list[str]
    proposed_label: str
    nearest_label: str | None
    similarity: float | None  # None: the head has no prototypes


@dataclass(frozen=True)
class Clustering:
    groups: list[Group]  # clusters of two texts or more, largest first
    unclustered: list[int]  # indexes of the candidate texts in no cluster
    near_known: list[int]  # indexes of the texts that look like a known label's (not clustered)


def cluster_texts(texts: list[str], rows: np.ndarray, head: Head,
                  intent_map: IntentMap | None = None) -> Clustering:
    """Set apart the texts :func:`near_known`, then cluster the others (the candidates).
    ``rows``: the texts' features rows for ``head`` (:meth:`Head.inputs`), in order; texts are
    clustered in ``intent_map``, or on their (unit) sentence embeddings without one."""
    vectors = head.sentence(rows)
    known = near_known(vectors, head)
    candidates = np.flatnonzero(~known)
    assignment = np.full(len(texts), -1)
    assignment[candidates] = (
        assign(intent_map.rows(vectors[candidates]), intent_map.distance) if intent_map
        else assign(vectors[candidates]))
    sizes = np.bincount(assignment[candidates], minlength=1)
    grouped = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] > 1]
    unclustered = [int(i) for i in candidates if sizes[assignment[i]] == 1]
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
    return Clustering(groups, unclustered, [int(i) for i in np.flatnonzero(known)])


def near_known(vectors: np.ndarray, head: Head) -> np.ndarray:
    """Which texts lie nearer a known label's examples (the cosine to the head's nearest
    prototype) than to the other texts sent (the mean cosine to their ``NEIGHBOURS`` nearest):
    an unsure answer between labels the head knows, not a new intent, whose texts resemble
    each other more than anything the head learned. None for a head without prototypes, or
    for a single text."""
    if head.in_scope_score is None or len(vectors) < 2:
        return np.zeros(len(vectors), dtype=bool)
    similarities = vectors @ vectors.T
    np.fill_diagonal(similarities, -np.inf)
    k = min(NEIGHBOURS, len(vectors) - 1)
    peers = np.partition(similarities, -k, axis=1)[:, -k:].mean(axis=1)
    known = (vectors @ head.in_scope_score.prototypes.T).max(axis=1)
    return np.asarray(known >= peers)


def assign(vectors: np.ndarray, distance: float = DISTANCE_THRESHOLD) -> np.ndarray:
    """A cluster number for each row (a single row is its own cluster)."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    clustering = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=distance)
    return np.asarray(clustering.fit_predict(vectors), dtype=int)


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
