"""The served vectors are sentence-transformers' own, for the default model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from services.embedder.app import create_app
from services.embedder.backends import Backend
from services.embedder.backends.model_source import resolve
from shared.contracts import EmbeddingResponse
from tests.conftest import clinc_texts, running, settings
from tests.embedder.conftest import BackendFactory

pytestmark = [pytest.mark.anyio, pytest.mark.model]


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return SentenceTransformer(resolve("sentence-transformers/all-MiniLM-L6-v2").location,
                               device="cpu")


async def test_cosine_against_sentence_transformers(real_backend: Backend,
                                                    reference: SentenceTransformer) -> None:
    texts = clinc_texts("test.csv")[::45][:100]
    assert len(set(texts)) == 100
    expected = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    async with running(create_app(settings(), backend=real_backend)) as client:
        body = EmbeddingResponse.model_validate(
            (await client.post("/v1/embeddings", json={"input": texts})).json())
    cosine = (body.matrix() * expected).sum(1)
    assert cosine.min() >= 0.9999, cosine.min()
    assert body.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert body.matrix().shape == (100, 384)
    assert body.embedding_identity == real_backend.info.identity


async def test_truncation_at_max_length_matches_reference(real_backend: Backend,
                                                          reference: SentenceTransformer) -> None:
    long_text = "please tell me about my account balance and recent transfers " * 60
    assert real_backend.info.max_tokens == reference.max_seq_length == 256
    expected = reference.encode([long_text], normalize_embeddings=True)[0]
    async with running(create_app(settings(), backend=real_backend)) as client:
        response = await client.post("/v1/embeddings", json={"input": long_text})
    item = response.json()["data"][0]
    assert item["truncated"] is True
    assert response.json()["usage"]["total_tokens"] == 256
    assert float(np.asarray(item["embedding"], dtype=np.float32) @ expected) >= 0.9999


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_padded_and_packed_batches_agree(model_backend: BackendFactory, onnx_dir: Path,
                                         name: str) -> None:
    """On CPU: packing (the default there) and plain padded batches give the same sentence and
    lexical vectors."""
    from services.embedder.backends import load_backend
    from services.embedder.backends.onnx_backend import OnnxBackend
    from services.embedder.backends.torch_backend import TorchBackend
    packed = model_backend(name)
    padded = load_backend(settings(backend=name, packing="off", threads=2,
                                   onnx_dir=str(onnx_dir)))
    assert isinstance(packed, TorchBackend | OnnxBackend)
    assert isinstance(padded, TorchBackend | OnnxBackend)
    assert padded._pack_tokens == 0 and packed._pack_tokens > 0
    texts = clinc_texts("val.csv", 80) + ["my card was declined again " * 70]
    tokens = packed.tokenize(texts)
    both = packed.features(tokens) * padded.features(tokens)
    for cosine in (both[:, :384].sum(1), both[:, 384:].sum(1)):
        assert cosine.min() >= 0.99999, cosine.min()


def test_model_resolution() -> None:
    packaged = resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert packaged.location.endswith("model") and packaged.pooling == "mean"
    assert packaged.max_seq_length == 256
    assert resolve("all-MiniLM-L6-v2").model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve(packaged.location).location == packaged.location  # a local folder works too
    other = resolve("BAAI/bge-small-en-v1.5")  # any Hub id goes to transformers as is
    assert (other.model_id, other.location) == ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5")
