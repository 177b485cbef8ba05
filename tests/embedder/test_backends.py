"""Every backend against sentence-transformers: exact ones match it, int8 stays in its bound;
the lexical half of the features rows agrees across backends."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from services.embedder.backends.model_source import resolve
from shared.embedding_identity import EmbeddingIdentity
from tests.conftest import clinc_texts
from tests.embedder.conftest import BackendFactory

pytestmark = pytest.mark.model
EXACT = ("torch", "onnx")
# int8 (dynamic, per-channel weights) on these 1,000 CLINC150 phrases, packed: mean cosine
# 0.992, worst 0.958 (README "Backends"). Its activations are quantised per run, so a vector
# also moves a little with the texts it is batched with.
INT8_MEAN_COSINE, INT8_MIN_COSINE, INT8_BATCH_COSINE = 0.985, 0.93, 0.98


@pytest.fixture(scope="module")
def phrases() -> list[str]:
    return list(dict.fromkeys(clinc_texts("test.csv")))[::4][:1000]


@pytest.fixture(scope="module")
def expected(phrases: list[str]) -> np.ndarray:
    reference = SentenceTransformer(resolve("sentence-transformers/all-MiniLM-L6-v2").location,
                                    device="cpu")
    return reference.encode(phrases, normalize_embeddings=True, convert_to_numpy=True)


def _features(model_backend: BackendFactory, name: str, texts: list[str]) -> np.ndarray:
    backend = model_backend(name)
    tokens = backend.tokenize(texts)
    return np.concatenate([backend.features(tokens[i:i + 128])
                           for i in range(0, len(texts), 128)])


def _embed(model_backend: BackendFactory, name: str, texts: list[str]) -> np.ndarray:
    return _features(model_backend, name, texts)[:, :384]


@pytest.mark.parametrize("name", EXACT)
def test_exact_backends_match_sentence_transformers(model_backend: BackendFactory, name: str,
                                                    phrases: list[str],
                                                    expected: np.ndarray) -> None:
    assert len(phrases) == 1000
    cosine = (_embed(model_backend, name, phrases) * expected).sum(1)
    assert cosine.min() >= 0.9999, (name, cosine.min())
    identity = EmbeddingIdentity.parse(model_backend(name).info.identity)
    assert identity.precision == "fp32" and identity.exact


def test_exact_backends_share_one_identity(model_backend: BackendFactory) -> None:
    assert model_backend("torch").info.identity == model_backend("onnx").info.identity
    assert model_backend("onnx-int8").info.identity != model_backend("onnx").info.identity


def test_onnx_features_match_torch_in_both_halves(model_backend: BackendFactory,
                                                  phrases: list[str]) -> None:
    """fp32 ONNX and torch agree on sentence and lexical vectors; int8 quantises MatMul
    weights only, so its lexical half (embedding layer: Gather, LayerNorm) stays exact too."""
    torch_rows = _features(model_backend, "torch", phrases[:300])
    assert torch_rows.shape == (300, 768)
    np.testing.assert_allclose(np.linalg.norm(torch_rows[:, 384:], axis=1), 1, rtol=1e-5)
    for name, halves in (("onnx", (slice(0, 384), slice(384, 768))),
                         ("onnx-int8", (slice(384, 768),))):
        rows = _features(model_backend, name, phrases[:300])
        for half in halves:
            cosine = (rows[:, half] * torch_rows[:, half]).sum(1)
            assert cosine.min() >= 0.9999, (name, half, cosine.min())


def test_int8_within_its_documented_bound(model_backend: BackendFactory, phrases: list[str],
                                          expected: np.ndarray) -> None:
    cosine = (_embed(model_backend, "onnx-int8", phrases) * expected).sum(1)
    assert cosine.mean() >= INT8_MEAN_COSINE and cosine.min() >= INT8_MIN_COSINE, (
        cosine.mean(), cosine.min())
    identity = EmbeddingIdentity.parse(model_backend("onnx-int8").info.identity)
    assert identity.precision == "int8" and not identity.exact


@pytest.mark.parametrize("name", [*EXACT, "onnx-int8"])
def test_a_batch_gives_each_text_its_own_vector(model_backend: BackendFactory, name: str) -> None:
    """Mixed lengths (one truncated) in one batch, against each text run alone: both halves."""
    backend = model_backend(name)
    tokens = backend.tokenize(clinc_texts("val.csv", 80) + ["my card was declined again " * 70])
    assert tokens[-1].truncated
    batched = backend.features(tokens)
    alone = np.concatenate([backend.features([t]) for t in tokens])
    assert batched.shape == (81, 768) and batched.dtype == np.float32
    sentence = (batched[:, :384] * alone[:, :384]).sum(1)
    lexical = (batched[:, 384:] * alone[:, 384:]).sum(1)
    bound = INT8_BATCH_COSINE if name == "onnx-int8" else 0.99999
    assert sentence.min() >= bound and lexical.min() >= 0.99999, (name, sentence.min(),
                                                                   lexical.min())
    np.testing.assert_array_equal(backend.forward(tokens[:1]), alone[:1, :384])
