"""Few examples a label, through the real trainer: 5, 8 or 10 examples of 6 labels train a head
that serves and abstains on keyboard mashes; a label with 1 or 2 examples still trains; the
folds never leave a label out of a fold's training rows. Real embedder, real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from services.trainer.in_scope import nonsense_texts
from services.trainer.label_names import as_text
from services.trainer.selection import folds_of
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.heads import HEAD_FILES, Head
from shared.settings import EmbedderClientSettings
from tests.conftest import clinc_rows, running, to_csv
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

MASHES = ["asdfgh qwerty", "jkl jkl", "zxcvb", "qwe rtyu iop"]


@pytest.mark.parametrize("counts", [[5, 5, 5], [2, 7, 1, 4], [1, 1, 3, 9, 2]])
def test_every_fold_trains_on_every_label_and_singletons_are_never_held_out(
        counts: list[int]) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    folds, tested = folds_of(y, 5, seed=0)
    assert tested.tolist() == [counts[label] >= 2 for label in y]
    held_out = np.concatenate([test for _, test in folds])
    assert sorted(held_out.tolist()) == np.flatnonzero(tested).tolist()  # each once
    for train, test in folds:
        assert set(y[train].tolist()) == set(range(len(counts)))
        assert len(test)


@pytest.mark.parametrize(("label", "text"), [
    ("alarm_query", "alarm query"), ("iot_hue_lightOff", "iot hue light off"),
    ("book-flight", "book flight"), ("General.Quirky", "general quirky"), ("oos", "oos")])
def test_a_label_name_reads_as_words(label: str, text: str) -> None:
    assert as_text(label) == text


@pytest.mark.anyio
@pytest.mark.model
@pytest.mark.parametrize("per_label", [5, 8, 10])
async def test_a_few_examples_a_label_train_a_head_that_serves_and_abstains(
        pg_url: str, tmp_path: Path, embedder_url: str, per_label: int) -> None:
    rows = clinc_rows(labels=6, per_label=per_label)
    async with running(trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)) as client:
        job = await wait_job(client, (await submit(client, to_csv(rows))).json()["id"])
        head = await served_head(client, tmp_path)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 1
    report = job["report"]
    assert report["cv_rows"] == 6 * per_label and report["cv"]["accuracy"] > 0.7
    # The label names were compared as training rows on the first fold, and the better kept.
    named = report["label_names"]
    assert named["used"] == (named["with_weighted_f1"] > named["without_weighted_f1"])
    # Boosted trees are screened from 10 examples a label (their early-stopping split works).
    assert ("xgboost" in report["skipped"]) == (per_label < 10)
    assert ("xgboost" in report["screened"]) == (per_label >= 10)
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        held_out = clinc_rows("test.csv", labels=6, per_label=10)
        answers = head.predict(embedder.features([t for t, _ in held_out]).head_rows)
        mashes = head.predict(embedder.features(MASHES).head_rows)
    accuracy = np.mean([a.label == label for a, (_, label) in zip(answers, held_out,
                                                                  strict=True)])
    assert accuracy > 0.7
    assert [a.label for a in mashes] == [None] * len(MASHES)
    assert not set(MASHES) & set(nonsense_texts())  # not the very strings the gate was fit on


@pytest.mark.anyio
@pytest.mark.model
async def test_labels_with_one_or_two_examples_train_and_serve(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    extra = clinc_rows(labels=6, per_label=2)  # labels 5 and 6 are not among the first 4
    one, two = extra[8], extra[10:12]
    rows = clinc_rows(labels=4, per_label=6) + [one, *two]
    async with running(trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)) as client:
        job = await wait_job(client, (await submit(client, to_csv(rows))).json()["id"])
        head = await served_head(client, tmp_path)
    assert job["status"] == "succeeded", job["error"]
    data = job["report"]["data"]
    assert data["classes"] == 6 and data["dropped_labels"] == {}
    assert data["warnings"] == [f"labels with one example train but cannot be measured: "
                                f"{one[1]}"]
    assert job["report"]["cv_rows"] == len(rows) - 1  # the single example is never held out
    assert set(head.labels) == {label for _, label in rows}
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        answers = head.predict(embedder.features([one[0], two[0][0]]).head_rows)
    assert [a.top[0][0] for a in answers] == [one[1], two[0][1]]  # its own texts, recognised


async def served_head(client: httpx.AsyncClient, tmp_path: Path) -> Head:
    """The head of the model's production version, as a classifier loads it."""
    model = (await client.get("/v1/models/intents")).json()
    [version] = [v for v in model["versions"] if v["version"] == model["production_version"]]
    store = ArtifactStore(str(tmp_path / "artifacts"))
    return Head.from_files(store.read_version(version["artifact_uri"], HEAD_FILES))
