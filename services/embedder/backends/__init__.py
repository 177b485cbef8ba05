"""Model backends behind one small protocol, so the engine never knows about torch.

A backend tokenizes (to count and truncate) and runs forward passes on already-batched,
already-tokenized texts. Batching, queueing and caching live above it.

One pass gives each text two unit vectors of the model's dimension: the *sentence* vector
(what ``/v1/embeddings`` answers) and the *lexical* vector, the mean of the embedding layer's
output (each token's word and position embedding before any attention: which words the text
has, without their context). Heads are trained on both (``/v1/features``): on CLINC150 the
lexical view lifts the trained head's test weighted F1 from 0.9564 to 0.9639 (bench/RESULTS.md
"Trainer").
"""

from __future__ import annotations

from services.embedder.backends.base import (
    Backend,
    Concurrency,
    ModelInfo,
    SentenceFromFeatures,
    Tokens,
    concurrency,
)
from shared.settings import EmbedderSettings

__all__ = ["Backend", "Concurrency", "ModelInfo", "SentenceFromFeatures", "Tokens",
           "concurrency", "load_backend"]


def load_backend(settings: EmbedderSettings) -> Backend:
    """Build the configured backend. ``auto``: torch on CUDA, else the faster exact backend on
    this CPU, measured at the first start (:mod:`.calibration`; torch if the ONNX export
    fails). Imports torch or onnxruntime only when that backend is asked for."""
    if settings.backend == "fake":
        from services.embedder.backends.fake import FakeBackend
        return FakeBackend()
    if settings.backend in ("onnx", "onnx-int8"):
        from services.embedder.backends.onnx_backend import OnnxBackend
        return OnnxBackend.load(settings, int8=settings.backend == "onnx-int8")
    if settings.backend == "auto" and not _wants_torch(settings):
        from services.embedder.backends.calibration import choose
        return choose(settings)
    from services.embedder.backends.torch_backend import TorchBackend
    return TorchBackend.load(settings)


def _wants_torch(settings: EmbedderSettings) -> bool:
    """CUDA (fp16 there) or a non-fp32 dtype asked for: only torch serves those."""
    if settings.dtype not in ("auto", "float32") or settings.device == "cuda":
        return True
    if settings.device == "cpu":
        return False
    import torch
    return bool(torch.cuda.is_available())
