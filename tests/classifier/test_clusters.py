"""Clustering the review queue's texts: texts of one intent end up together and apart from
the others, texts like no other stay unclustered, each cluster's words say what it is about,
and the nearest label is the head's label for the intent it knows. Real model throughout."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from services.classifier.clusters import Clustering, Group, cluster_texts
from services.trainer.fitters import FitSpec, fit
from services.trainer.in_scope import prototypes
from shared.clients.embedder import EmbedderClient
from shared.heads import Head
from shared.in_scope import InScopeScore
from shared.intent_map import INTENT_MAP_FILE, IntentMap
from shared.settings import EmbedderClientSettings
from tests.classifier.helpers import MODEL, publish
from tests.classifier.test_api import app_for
from tests.classifier.test_explain import embedder_requests
from tests.conftest import CLINC, clinc_rows, running

pytestmark = pytest.mark.model
ROWS = clinc_rows(labels=6, per_label=25)  # accept_reservations, account_blocked, alarm, ...
INTENTS = ("alarm", "weather", "restaurant_reservation")  # the head knows only alarm
NOISE = ["how do i get red wine out of a couch cushion", "can you see a hdmi cord",
         "how many prime numbers are there between 0 and 100",
         "can you put the car in fuel efficient mode"]


def intent_texts(per_intent: int = 8) -> tuple[list[str], list[str]]:
    """CLINC150 test texts of ``INTENTS`` (unseen in training), and each one's intent."""
    with open(CLINC / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts, intents = [], []
    for intent in INTENTS:
        chosen = [r["text"] for r in rows if r["label"] == intent][:per_intent]
        texts += chosen
        intents += [intent] * len(chosen)
    return texts, intents


def head_with_prototypes(embedder: EmbedderClient) -> Head:
    """A logreg head on ``ROWS`` with the trainer's per-label prototypes, as training gives."""
    labels = sorted({label for _, label in ROWS})
    x = embedder.embed([t for t, _ in ROWS]).vectors
    y = np.array([labels.index(label) for _, label in ROWS])
    head, _ = fit(FitSpec(kind="logreg"), x, y, labels, embedder_model=MODEL)
    head.in_scope_score = InScopeScore(prototypes=prototypes(x, y, len(labels), seed=0),
                                       center=(0.0, 0.0), scale=(1.0, 1.0))
    return head


def test_three_intents_make_three_clusters_and_the_noise_stays_alone(
        embedder_url: str) -> None:
    """With a head without prototypes every text is a candidate."""
    texts, intents = intent_texts()
    texts += NOISE
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        head = replace(head_with_prototypes(embedder), in_scope_score=None)
        found_ = cluster_texts(texts, embedder.embed(texts).vectors, head)
    groups, unclustered = found_.groups, found_.unclustered
    assert found_.near_known == []

    assert [len(g.members) for g in groups] == sorted((len(g.members) for g in groups),
                                                       reverse=True)
    for group in groups:  # pure: one intent each
        assert len({intents[i] for i in group.members}) == 1, [texts[i] for i in group.members]
    # Each intent mostly in one cluster ("make a reservation at X" and "a table for 3 at X"
    # may part), every intent text in some cluster, the noise in none.
    found: dict[str, Group] = {}
    for group in groups:
        found.setdefault(intents[group.members[0]], group)  # the intent's largest
    assert sorted(found) == sorted(INTENTS)
    assert all(len(group.members) >= 6 for group in found.values())
    assert sorted(unclustered) == list(range(len(intents), len(texts)))

    assert "alarm" in found["alarm"].keywords
    assert "alarm" in found["alarm"].proposed_label.split("_")
    assert "weather" in found["weather"].keywords
    assert {"table", "reservation", "reserve"} & set(found["restaurant_reservation"].keywords)
    assert not {"the", "a", "an", "for"} & {w for g in groups for w in g.keywords}
    # Without prototypes, the nearest label is the head's top label for the centre.
    assert (found["alarm"].nearest_label, found["alarm"].similarity) == ("alarm", None)


def test_texts_like_a_known_labels_examples_are_set_apart(embedder_url: str) -> None:
    """The head knows alarm (and accept_reservations): its prototypes are nearer the alarm
    texts than the other alarm texts are, and nearer the noise than anything else sent; the
    weather texts, of an intent it does not know, are nearer each other and cluster."""
    texts, intents = intent_texts()
    texts += NOISE
    intents += ["noise"] * len(NOISE)
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        head = head_with_prototypes(embedder)
        found = cluster_texts(texts, embedder.embed(texts).vectors, head)
    near = [intents[i] for i in found.near_known]
    assert near.count("alarm") == 8 and near.count("noise") == len(NOISE)
    assert near.count("restaurant_reservation") <= 2  # "book a table" is near accept_reservations
    assert "weather" not in near
    weather, reservations = found.groups
    assert [intents[i] for i in weather.members] == ["weather"] * 8
    assert {intents[i] for i in reservations.members} == {"restaurant_reservation"}
    assert reservations.nearest_label == "accept_reservations"
    assert weather.similarity is not None and reservations.similarity is not None
    assert weather.similarity < reservations.similarity


@pytest.mark.anyio
async def test_the_route_embeds_once_and_keeps_predicts_limits(tmp_path: Path,
                                                             embedder_url: str) -> None:
    """Through the classifier: one embedder request for all the texts; a head without
    prototypes names its top label for the centre, without a similarity."""
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", ROWS, embedder_url)
    texts, intents = intent_texts(per_intent=5)
    async with running(app_for(db, tmp_path, embedder_url, max_chars_per_text=100)) as client:
        before = embedder_requests(embedder_url)
        response = await client.post("/v1/cluster/intents", json={"texts": texts})
        assert response.status_code == 200, response.text
        assert embedder_requests(embedder_url) == before + 1
        body = response.json()
        assert (body["model"], body["version"]) == ("intents", 1)
        alarm = next(c for c in body["clusters"] if intents[c["members"][0]] == "alarm")
        assert alarm["nearest_label"] == "alarm" and alarm["similarity"] is None

        cases = [("nope", {"texts": ["hi"]}, 404, "unknown model 'nope'"),
                 ("intents", {"texts": []}, 422, "texts"),
                 ("intents", {"texts": ["hi"] * 2001}, 422, "texts"),
                 ("intents", {"texts": ["ok", " "]}, 422, "texts[1] is empty"),
                 ("intents", {"texts": ["x" * 101]}, 422, "texts[0] has 101 characters")]
        for model, request, status, message in cases:
            answer = await client.post(f"/v1/cluster/{model}", json=request)
            assert answer.status_code == status, (request, answer.text)
            assert message in answer.json()["error"]["message"], answer.text


@pytest.mark.anyio
async def test_the_route_clusters_in_the_versions_intent_map(tmp_path: Path,
                                                             embedder_url: str) -> None:
    """A version stored with an intent map is clustered in it, at its distance: a map that
    cuts at the widest cosine distance makes one cluster of texts of three intents."""
    db = f"sqlite:///{tmp_path}/db.sqlite"
    widest = IntentMap(mean=np.zeros(384, np.float32), projection=None, distance=2.0)
    publish(db, tmp_path, "mapped", ROWS, embedder_url,
            extra_files={INTENT_MAP_FILE: widest.to_file()})
    publish(db, tmp_path, "unmapped", ROWS, embedder_url)
    texts, _ = intent_texts(per_intent=4)
    async with running(app_for(db, tmp_path, embedder_url)) as client:
        mapped = (await client.post("/v1/cluster/mapped", json={"texts": texts})).json()
        unmapped = (await client.post("/v1/cluster/unmapped", json={"texts": texts})).json()
    assert [sorted(c["members"]) for c in mapped["clusters"]] == [list(range(len(texts)))]
    assert len(unmapped["clusters"]) >= 3


def test_one_text_is_unclustered(embedder_url: str) -> None:
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        head = head_with_prototypes(embedder)
        assert cluster_texts(["set an alarm"], embedder.embed(["set an alarm"]).vectors,
                             head) == Clustering([], [0], [])
