"""The trainer end to end: real embedder (real model, real HTTP), real PostgreSQL, real heads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.heads import HEAD_FILES, Head
from shared.settings import EmbedderClientSettings
from tests.conftest import clinc_rows, running, to_csv
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

pytestmark = [pytest.mark.anyio, pytest.mark.model]

SLICE = clinc_rows(labels=6, per_label=25)
NONSENSE = ["asdfgh qwerty", "who won the world cup in 2018"]


async def test_csv_to_a_promoted_version_with_a_full_report(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    app = trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)
    async with running(app) as client:
        response = await submit(client, to_csv(SLICE))
        assert response.status_code == 202, response.text
        assert response.json()["report"]["data"]["rows_used"] == 150
        job = await wait_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job["error"]
        assert job["model"] == {"name": "intents", "version": 1} and job["promoted"] is True
        assert job["progress"] == 1.0 and job["attempts"] == 1

        report = job["report"]
        assert report["cv"]["weighted_f1"] > 0.85 and report["cv_folds"] == 5
        assert set(report["screened"]) == {"logreg", "mlp", "xgboost"}  # 6 classes: all tried
        # 25 rows per label: balanced class weights would be the same fit, so it is not tried.
        assert report["class_weight"] == {
            "mode": "auto", "note": "labels equally frequent: balanced weights change nothing",
            "chosen": "none"}
        assert report["label_names"] == {"used": False,
                                         "note": "every label has 20 examples or more"}
        assert len(report["per_class"]) == 6
        assert np.array(report["confusion_matrix"]["matrix"]).sum() == 150
        # No out-of-scope rows, yet the head abstains: its threshold is calibrated on held-out
        # predictions, at a cost in in-scope accuracy the report states.
        threshold = report["threshold"]
        assert threshold["method"] == "calibrated on out-of-fold predictions"
        assert "nearest label prototype" in threshold["score"] and "oos_recall" not in threshold
        assert threshold["in_scope_accuracy_without"] - threshold["in_scope_accuracy"] \
            <= threshold["max_accuracy_drop"] + 1e-5
        assert 0 <= threshold["in_scope_abstain_rate"] < 0.05
        # 6 x 768 weights, 48 prototypes and 400 nonsense rows of 384 float32
        assert 0 < report["memory_bytes"] < 800_000
        assert report["params"]["features"] == "sentence+lexical"
        assert 0 <= report["calibration"]["ece"] <= 1 and report["calibration"]["reliability"]
        assert len(report["tradeoff_curve"]) == 20 and isinstance(report["confused_pairs"], list)
        embedder_report = report["embedder"]
        assert embedder_report.pop("model") == "sentence-transformers/all-MiniLM-L6-v2"
        assert embedder_report.pop("dim") == 384  # the sentence vector's; rows are twice it
        assert embedder_report.pop("features") == "sentence+lexical"
        assert isinstance(embedder_report.pop("identity"), str)  # see shared.embedding_identity
        # The ratio depends on what this session embedded before (see the promotion test).
        assert set(embedder_report) == {"cache_hit_ratio"}
        assert 0.0 <= embedder_report["cache_hit_ratio"] <= 1.0

        model = (await client.get("/v1/models/intents")).json()
        assert model["production_version"] == 1
        version = model["versions"][0]
        assert version["status"] == "production" and version["train_rows"] == 150
        full = (await client.get("/v1/models/intents/versions/1/report")).json()
        assert full["version"] == 1 and full["per_class"] == report["per_class"]
        metrics = (await client.get("/metrics")).text
        assert 'polyhead_trainer_jobs{status="succeeded"} 1.0' in metrics
        assert "polyhead_trainer_oldest_queued_seconds 0.0" in metrics

    # The artifact is complete and serves: load the head, embed with the embedder, predict.
    store = ArtifactStore(str(tmp_path / "artifacts"))
    files = store.read_version(version["artifact_uri"])
    assert {"head.json", "report.json", "per_class.csv", "training_config.json",
            "data.json"} <= set(files)
    # 6 labels are too few to learn an intent map from (tests/trainer/test_intent_map.py).
    assert "intent_map.npz" not in files
    assert "needs 18 labels" in json.loads(files["report.json"])["intent_map"]["note"]
    head = Head.from_files(store.read_version(version["artifact_uri"], HEAD_FILES))
    head.check_embedder("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert head.in_scope_score is not None and head.threshold == threshold["threshold"]
    assert (head.features, head.input_dim) == ("sentence+lexical", 768)
    assert head.prototype_owners().tolist() == np.repeat(np.arange(6), 8).tolist()
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        held_out = clinc_rows("test.csv", labels=6, per_label=10)
        predictions = head.predict(embedder.features([t for t, _ in held_out]).head_rows)
        nonsense = head.predict(embedder.features(NONSENSE).head_rows)
    accuracy = np.mean([p.label == label
                        for p, (_, label) in zip(predictions, held_out, strict=True)])
    assert accuracy > 0.85  # abstentions counted as errors
    assert [p.label for p in nonsense] == [None] * len(NONSENSE)
    assert all(p.abstained and p.top for p in nonsense)  # the top labels are still given


async def test_promotion_policy_promote_and_rollback(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    # One phrase no earlier run embedded, so the first job must miss the cache at least once.
    rows = SLICE + [(f"what is my balance for account {uuid.uuid4().hex}", SLICE[0][1])]
    app = trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)
    async with running(app) as client:
        first = await wait_job(client, (await submit(client, to_csv(rows), head="logreg")
                                        ).json()["id"])
        second = await wait_job(client, (await submit(
            client, to_csv(rows), head="logreg", promote="never", cv_folds=3,
            threshold="none")).json()["id"])
        assert first["promoted"] is True and second["promoted"] is False
        # threshold=none: a head that never abstains (and no in-scope score to store).
        assert second["report"]["threshold"] is None and first["report"]["threshold"]
        assert second["report"]["memory_bytes"] < first["report"]["memory_bytes"]
        # The retrain of the same data is served entirely from the embedder's phrase cache.
        assert first["report"]["embedder"]["cache_hit_ratio"] < 1.0
        assert second["report"]["embedder"]["cache_hit_ratio"] == 1.0
        assert (await client.get("/v1/models/intents")).json()["production_version"] == 1

        move = await client.post("/v1/models/intents/promote", json={"version": 2})
        assert move.json() == {"model": "intents", "from_version": 1, "to_version": 2,
                               "action": "promote"}
        assert (await client.post("/v1/models/intents/rollback")).json()["to_version"] == 1
        refused = await client.post("/v1/models/intents/rollback")
        assert refused.status_code == 409
        assert "no earlier production version" in refused.json()["error"]["message"]
        missing = await client.post("/v1/models/intents/promote", json={"version": 9})
        assert missing.status_code == 404 and "no version 9" in missing.json()["error"]["message"]
        statuses = {v["version"]: v["status"] for v in
                    (await client.get("/v1/models/intents")).json()["versions"]}
        assert statuses == {1: "production", 2: "archived"}


async def test_out_of_scope_rows_calibrate_the_threshold(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    oos = clinc_rows("oos_train.csv", labels=1, per_label=60)
    app = trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)
    async with running(app) as client:
        job = await wait_job(client, (await submit(client, to_csv(SLICE + oos), head="logreg",
                                                   oos_label="oos")).json()["id"])
        assert job["status"] == "succeeded", job["error"]
        threshold = job["report"]["threshold"]
        assert threshold["oos_rows"] == 60 and threshold["threshold"] < 0  # below typical
        assert threshold["oos_recall"] > 0.3
        # Abstaining costs at most max_accuracy_drop of in-scope accuracy on the held-out
        # predictions (both accuracies are rounded to 5 decimals in the report).
        max_drop = trainer_settings(pg_url, tmp_path).max_accuracy_drop
        assert threshold["max_accuracy_drop"] == max_drop == 0.003
        assert threshold["in_scope_accuracy_without"] - threshold["in_scope_accuracy"] \
            <= max_drop + 1e-5
        assert job["metrics"]["oos_recall"] == threshold["oos_recall"]
        assert "oos" not in [row["label"] for row in job["report"]["per_class"]]


async def test_imbalanced_data_compares_class_weights(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    # 20 intents, alternately 5 and 100 rows: unweighted logistic regression neglects the small
    # intents on the screening fold, and balanced class weights win there. (With 60 rows,
    # sentence vectors alone lost, but sentence+lexical rows answered that fold perfectly.)
    rows = clinc_rows(labels=20, per_label=100)
    sizes = [5 if i % 2 == 0 else 100 for i in range(20)]
    skewed = [row for i, n in enumerate(sizes) for row in rows[100 * i: 100 * i + n]]
    app = trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)
    async with running(app) as client:
        job = await wait_job(client, (await submit(client, to_csv(skewed), head="logreg")
                                      ).json()["id"])
        assert job["status"] == "succeeded", job["error"]
        weighting = job["report"]["class_weight"]
        assert weighting["mode"] == "auto"
        assert weighting["balanced_weighted_f1"] > weighting["none_weighted_f1"]
        # The better weighting is kept, and the served head was fitted with it.
        assert weighting["chosen"] == "balanced"
        assert job["report"]["params"]["balanced"] is True
        assert job["report"]["data"]["class_counts"] == {
            label: n for label, n in zip(sorted({r[1] for r in rows}), sizes, strict=True)}
