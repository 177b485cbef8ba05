"""The real model: transformers + torch, pooled and normalised as sentence-transformers does.

Loaded once per process. CUDA with fp16 when present, else CPU with a configurable thread
count. Tokenization uses the Rust tokenizer directly (truncation flags come for free).

Padding-free batches (CPU, BERT family): short texts of different lengths waste most of a
padded batch (CLINC150 phrases average 11 tokens, a batch's longest ~25). Packed, the texts
run as one sequence with per-text position ids and a block-diagonal attention mask, so no
compute goes to padding; groups are capped at ``pack_tokens`` because attention over the
packed sequence grows with its square. Batches with little padding (similar lengths) stay
padded, which is faster for them. Measured ~1.4x over padded batches of 32 random CLINC150
phrases on 2 CPU cores (bench/RESULTS.md). Both paths pool the lexical vector (the embedding
layer's output, :mod:`services.embedder.backends`) over each text's own tokens, as the sentence.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from services.embedder.backends import ModelInfo, SentenceFromFeatures, Tokens
from services.embedder.backends.model_source import model_revision, resolve
from services.embedder.backends.pooling import pool
from shared.embedding_identity import EmbeddingIdentity, Precision
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PRECISIONS: dict[str, Precision] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# Models whose positions are plain 0..n-1 per text, so explicit position ids pack safely.
_PACKABLE = {"bert"}
# Pack only batches where padding would be over this share of the padded tensor: a batch of
# similar lengths runs faster padded (one pass reads the weights once for all its texts).
_PACK_ABOVE_PADDING = 0.25


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
        if device == "cpu" and settings.threads:
            torch.set_num_threads(settings.threads)
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
        packable = model.config.model_type in _PACKABLE and source.pooling == "mean"
        pack = settings.packing == "on" or (settings.packing == "auto" and device == "cpu")
        if pack and not packable:
            log.warning("packing needs a BERT-family model with mean pooling; using padding",
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
        padding = 1 - sum(lengths) / (len(lengths) * max(lengths))
        if not self._pack_tokens or padding <= _PACK_ABOVE_PADDING:
            return self._padded(batch)
        out = np.empty((len(batch), self.info.feature_dimension), dtype=np.float32)
        start, used = 0, 0
        for end, tokens in enumerate(batch):
            if end > start and used + len(tokens.ids) > self._pack_tokens:
                out[start:end] = self._packed(batch[start:end])
                start, used = end, 0
            used += len(tokens.ids)
        out[start:] = self._packed(batch[start:])
        return out

    @torch.inference_mode()
    def _packed(self, batch: list[Tokens]) -> np.ndarray:
        """One sequence of all texts; each attends only to itself, positions restart per text."""
        lengths = torch.tensor([len(t.ids) for t in batch])
        ids = torch.tensor([i for t in batch for i in t.ids], dtype=torch.long)[None]
        positions = torch.cat([torch.arange(n) for n in lengths.tolist()])[None]
        segment = torch.repeat_interleave(torch.arange(len(batch)), lengths)
        mask = (segment[:, None] == segment[None, :])[None, None]  # (1, 1, T, T)
        out = self.model(input_ids=ids.to(self._device), position_ids=positions.to(self._device),
                         attention_mask=mask.to(self._device),
                         token_type_ids=torch.zeros_like(ids, device=self._device),
                         output_hidden_states=True)
        segment, sizes = segment.to(self._device), lengths.to(self._device, torch.float32)[:, None]

        def mean_per_text(hidden: torch.Tensor) -> torch.Tensor:
            sums = torch.zeros(len(batch), hidden.shape[1], device=self._device)
            return sums.index_add_(0, segment, hidden.float()) / sizes

        return _unit_rows(mean_per_text(out.last_hidden_state[0]),
                          mean_per_text(out.hidden_states[0][0]))

    @torch.inference_mode()
    def _padded(self, batch: list[Tokens]) -> np.ndarray:
        width = max(len(t.ids) for t in batch)
        ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens.ids)] = torch.tensor(tokens.ids, dtype=torch.long)
            mask[row, : len(tokens.ids)] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
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
