"""The intent map learned from the labels a team has groups the texts of intents it never saw
better than raw sentence embeddings do, at a cut measured on held-out labels; with too few
labels there is none. Real model: CLINC150 intents the map was not fitted on."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from services.classifier.clusters import DISTANCE_THRESHOLD, assign
from services.trainer.intent_map import DISTANCES, fit_intent_map
from shared.clients.embedder import EmbedderClient
from shared.settings import EmbedderClientSettings
from tests.conftest import CLINC

pytestmark = pytest.mark.model


def rows_of(name: str, labels: list[str], per_label: int) -> tuple[list[str], np.ndarray]:
    with open(CLINC / name, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts, y = [], []
    for i, label in enumerate(labels):
        chosen = [r["text"] for r in rows if r["label"] == label][:per_label]
        texts += chosen
        y += [i] * len(chosen)
    return texts, np.array(y)


def test_the_map_groups_unseen_intents_better_than_raw_embeddings(embedder_url: str) -> None:
    with open(CLINC / "train.csv", newline="", encoding="utf-8") as f:
        intents = sorted({r["label"] for r in csv.DictReader(f)})
    known, unseen = intents[::3][:40], intents[1::3][:12]
    with EmbedderClient(EmbedderClientSettings(url=embedder_url, timeout_s=120)) as embedder:
        texts, y = rows_of("train.csv", known, 20)
        x = embedder.embed(texts).vectors
        new_texts, truth = rows_of("test.csv", unseen, 10)
        new = embedder.embed(new_texts).vectors

    intent_map, report = fit_intent_map(x, y, seed=0)
    assert intent_map is not None, report
    assert report["distance"] in DISTANCES and report["held_out_labels_ari"] > 0.6
    mapped = adjusted_rand_score(truth, assign(intent_map.rows(new), intent_map.distance))
    raw = adjusted_rand_score(truth, assign(new, DISTANCE_THRESHOLD))
    assert mapped > raw + 0.05, (mapped, raw, report)


def test_a_discriminant_is_kept_where_it_beats_the_raw_vectors_on_held_out_labels() -> None:
    """Labels that differ along 4 of 40 directions, with wide noise along the others: held-out
    labels, and new ones, cluster by the discriminant, hardly by the raw vectors."""
    rng = np.random.default_rng(0)
    centres = np.zeros((40, 40))
    centres[:, :4] = rng.normal(scale=3, size=(40, 4))
    y = np.repeat(np.arange(40), 12)
    x = centres[y] + rng.normal(size=(len(y), 40)) * np.r_[np.full(4, 0.3), np.full(36, 2.0)]
    intent_map, report = fit_intent_map(x, y, seed=0)
    assert intent_map is not None and intent_map.projection is not None, report
    assert report["dims"] == 19 and intent_map.projection.shape == (40, 19)
    assert report["held_out_labels_ari"] > report["sentence_ari"] + 0.2, report
    unseen = np.repeat(np.arange(6), 10)
    new_centres = np.zeros((6, 40))
    new_centres[:, :4] = rng.normal(scale=3, size=(6, 4))
    new = new_centres[unseen] + rng.normal(size=(60, 40)) * np.r_[np.full(4, 0.3),
                                                                np.full(36, 2.0)]
    mapped = adjusted_rand_score(unseen, assign(intent_map.rows(new), intent_map.distance))
    raw = adjusted_rand_score(unseen, assign(new / np.linalg.norm(new, axis=1, keepdims=True)))
    assert mapped > raw + 0.2, (mapped, raw, report)


def test_too_few_labels_make_no_map() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(17), 3)
    intent_map, report = fit_intent_map(rng.normal(size=(len(y), 16)), y, seed=0)
    assert intent_map is None
    assert "needs 18 labels with 2 rows or more, found 17" in report["note"]
