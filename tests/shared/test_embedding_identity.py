"""Embedding identity: heads record it, serving checks it, and an int8 head is refused by fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.classifier.app import create_app
from shared.artifacts import ArtifactStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.embedding_identity import EmbeddingIdentity, accepts
from shared.heads import Head, HeadMismatch
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderClientSettings
from tests.conftest import running

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FP32, INT8 = f"{MODEL}@37d22de51af9:fp32", f"{MODEL}@37d22de51af9:int8"


def head(identity: str | None, dim: int = 4) -> Head:
    rng = np.random.default_rng(0)
    return Head(kind="logreg", labels=["a", "b"], embedder_model=MODEL, embedder_dim=dim,
                layers=[(rng.normal(size=(dim, 2)).astype(np.float32), np.zeros(2, np.float32))],
                embedder_identity=identity)


def test_identity_round_trips_and_says_what_is_exact() -> None:
    parsed = EmbeddingIdentity.parse(INT8)
    assert (parsed.model, parsed.revision, parsed.precision) == (MODEL, "37d22de51af9", "int8")
    assert str(parsed) == INT8 and not parsed.exact and EmbeddingIdentity.parse(FP32).exact
    for bad in ("no-precision", f"{MODEL}@rev", f"{MODEL}@rev:int4", "@rev:fp32"):
        with pytest.raises(ValueError, match="not an embedding identity"):
            EmbeddingIdentity.parse(bad)


def test_heads_record_their_identity() -> None:
    loaded = Head.from_files(head(INT8).to_files())
    assert loaded.embedder_identity == INT8


def test_a_head_accepts_only_its_own_identity() -> None:
    head(FP32).check_embedder(MODEL, 4, FP32)
    head(INT8).check_embedder(MODEL, 4, INT8)
    with pytest.raises(HeadMismatch, match=f"trained on {INT8} embeddings .* serves {FP32}"):
        head(INT8).check_embedder(MODEL, 4, FP32)
    with pytest.raises(HeadMismatch):
        head(FP32).check_embedder(MODEL, 4, f"{MODEL}@37d22de51af9:fp16")
    with pytest.raises(HeadMismatch):  # same precision, other weights
        head(FP32).check_embedder(MODEL, 4, f"{MODEL}@0123456789ab:fp32")


def test_heads_saved_before_identities_are_exact_fp32_of_their_model() -> None:
    legacy = head(None)
    legacy.check_embedder(MODEL, 4, FP32)
    legacy.check_embedder(MODEL, 4, f"{MODEL}@0123456789ab:fp32")  # any revision
    legacy.check_embedder(MODEL, 4)  # an embedder that does not say
    with pytest.raises(HeadMismatch, match=f"trained on {MODEL} \\(fp32\\) embeddings"):
        legacy.check_embedder(MODEL, 4, INT8)
    assert not accepts(None, MODEL, "garbage")


@pytest.mark.anyio
@pytest.mark.model
async def test_an_int8_head_is_refused_by_an_fp32_embedder(tmp_path: Path,
                                                           embedder_url: str) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    engine = make_engine(db)
    upgrade(engine)
    registry, store = Registry(session_factory(engine)), ArtifactStore(str(tmp_path))
    int8_head = head(INT8, dim=384)
    version = registry.register(
        "intents", write=lambda v: store.write_version("intents", v, int8_head.to_files()),
        head_type="logreg", embedder_model=MODEL, embedder_dim=384, num_classes=2,
        train_rows=2, weighted_f1=0.9, params={}, metrics={}, data_fingerprint="", job_id=None)
    registry.promote("intents", version.version)
    engine.dispose()
    embedder = AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url, retries=0))
    app = create_app(ClassifierSettings(database_url=db, artifact_store=str(tmp_path),
                                        log_json=False, environment="test"), embedder=embedder)
    async with running(app) as client:
        response = await client.post("/v1/classify/intents", json={"texts": ["hello"]})
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert f"trained on {INT8} embeddings" in message and ":fp32" in message
