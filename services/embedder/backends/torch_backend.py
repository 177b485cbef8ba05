"""The real model: transformers + torch, pooled and normalised as sentence-transformers does.

Loaded once per process. CUDA with fp16 when present, else CPU with a configurable thread
count. Tokenization uses the Rust tokenizer directly (truncation flags come for free).

Padding-free batches (CPU, BERT family; :mod:`packing`): mixed-length batches run packed, several
texts a row, each attending only to itself. Measured ~1.4x over padded batches of 32 random
CLINC150 phrases on 2 CPU cores (bench/RESULTS.md). Both paths pool the lexical vector (the
embedding layer's output, :mod:`services.embedder.backends`) over each text's own tokens, as
the sentence.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from services.embedder.backends.base import ModelInfo, SentenceFromFeatures, Tokens, concurrency
from services.embedder.backends.model_source import model_revision, resolve
from services.embedder.backends.packing import (
    PACKABLE_MODEL_TYPES,
    Layout,
    lay_out,
    one_per_row,
    pack_rows,
    pool_texts,
    worth_packing,
)
from services.embedder.backends.pooling import pool
from shared.embedding_identity import EmbeddingIdentity, Precision
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PRECISIONS: dict[str, Precision] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


class TorchBackend(SentenceFromFeatures):
    def __init__(self, model: torch.nn.Module, tokenizer: object, info: ModelInfo,
                 pooling: str, pack_tokens: int = 0) -> None:
        self.model = model
        self.info = info
        self._pooling = pooling
        self._pack_tokens = pack_tokens  # 0: padded batches
        self._device = torch.device(info.device)
        self._pad_id = getattr(tokenizer, "pad_token_id", None) or 0
        self._tok = tokenizer.backend_tokenizer  # type: ignore[attr-defined]  # fast tokenizers only
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=info.max_tokens)

    @classmethod
    def load(cls, settings: EmbedderSettings) -> TorchBackend:
        start = time.perf_counter()
        source = resolve(settings.model)
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype_name = settings.dtype
        if dtype_name == "auto":
            dtype_name = "float16" if device == "cuda" else "float32"
        if device == "cpu":  # per forward pass: the engine runs several at once
            torch.set_num_threads(concurrency(settings, device).threads)
        hf_logging.disable_progress_bar()  # one JSON log line says it loaded; no bars in logs
        tokenizer = AutoTokenizer.from_pretrained(source.location)
        model = AutoModel.from_pretrained(source.location, dtype=_DTYPES[dtype_name])
        model.eval().to(device)
        limits = [n for n in (source.max_seq_length, getattr(tokenizer, "model_max_length", None),
                              getattr(model.config, "max_position_embeddings", None))
                  if isinstance(n, int) and 0 < n < 1_000_000]
        info = ModelInfo(
            model_id=source.model_id,
            aliases=frozenset({source.model_id, source.model_id.split("/")[-1], settings.model}),
            dimension=int(model.config.hidden_size),
            max_tokens=min(limits) if limits else 512,
            device=device, dtype=dtype_name,
            lowercase=bool(getattr(tokenizer, "do_lower_case", False)), backend="torch",
            identity=str(EmbeddingIdentity(
                source.model_id, model_revision(source.location) or _hub_commit(model),
                _PRECISIONS[dtype_name])),
        )
        packable = model.config.model_type in PACKABLE_MODEL_TYPES
        pack = settings.packing == "on" or (settings.packing == "auto" and device == "cpu")
        if pack and not packable:
            log.warning("packing needs a BERT-family model; using padding",
                        extra={"model_type": model.config.model_type})
        backend = cls(model, tokenizer, info, source.pooling,
                      pack_tokens=settings.pack_tokens if pack and packable else 0)
        backend.forward(backend.tokenize(["warm up the kernels"] * 4))
        log.info("model loaded", extra={"model": info.model_id, "backend": "torch",
                                        "identity": info.identity, "device": device,
                                        "dtype": dtype_name, "dimension": info.dimension,
                                        "max_tokens": info.max_tokens,
                                        "packing": backend._pack_tokens or "off",
                                        "threads": torch.get_num_threads(), "pid": os.getpid(),
                                        "seconds": round(time.perf_counter() - start, 2)})
        return backend

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        return [Tokens(ids=enc.ids, truncated=bool(enc.overflowing))
                for enc in self._tok.encode_batch(texts)]

    def features(self, batch: list[Tokens]) -> np.ndarray:
        lengths = [len(t.ids) for t in batch]
        if not self._pack_tokens or not worth_packing(lengths):
            return self._padded(batch)
        rows = pack_rows(lengths, self._pack_tokens)
        return self._packed(lay_out([t.ids for t in batch], rows, self._pad_id))

    @torch.inference_mode()
    def _packed(self, layout: Layout) -> np.ndarray:
        """Several texts a row; each attends only to itself, positions restart per text."""
        ids, positions, segments = (torch.from_numpy(a).to(self._device) for a in (
            layout.input_ids, layout.position_ids, layout.segments))
        mask = (segments[:, :, None] == segments[:, None, :])[:, None]  # (rows, 1, T, T)
        out = self.model(input_ids=ids, position_ids=positions, attention_mask=mask,
                         token_type_ids=torch.zeros_like(ids), output_hidden_states=True)
        last, embedded = (h.float().cpu().numpy() for h in (out.last_hidden_state,
                                                             out.hidden_states[0]))
        return np.concatenate([pool_texts(last, layout, self._pooling),
                               pool_texts(embedded, layout, "mean")], axis=1)

    @torch.inference_mode()
    def _padded(self, batch: list[Tokens]) -> np.ndarray:
        layout = lay_out([t.ids for t in batch], one_per_row(len(batch)), self._pad_id)
        ids, mask = (torch.from_numpy(a).to(self._device) for a in (layout.input_ids,
                                                                    layout.attention_mask))
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return _unit_rows(pool(out.last_hidden_state.float(), mask, self._pooling),
                          pool(out.hidden_states[0].float(), mask, "mean"))


def _unit_rows(sentence: torch.Tensor, lexical: torch.Tensor) -> np.ndarray:
    """Features rows [sentence | lexical], each half L2-normalised."""
    halves = [torch.nn.functional.normalize(h, p=2, dim=1) for h in (sentence, lexical)]
    return torch.cat(halves, dim=1).cpu().numpy()


def _hub_commit(model: torch.nn.Module) -> str:
    """The Hub commit transformers loaded a non-local model from (its revision)."""
    commit = getattr(model.config, "_commit_hash", None)
    return str(commit)[:12] if commit else "unknown"
