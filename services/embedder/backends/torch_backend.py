"""The real model: transformers + torch, pooled and normalised as sentence-transformers does.

Loaded once per process. CUDA with fp16 when present, else CPU with a configurable thread
count. Tokenization uses the Rust tokenizer directly (truncation flags come for free).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from services.embedder.backends import ModelInfo, Tokens
from services.embedder.backends.model_source import resolve
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TorchBackend:
    def __init__(self, model: torch.nn.Module, tokenizer: object, info: ModelInfo,
                 pooling: str) -> None:
        self.model = model
        self.info = info
        self._pooling = pooling
        self._device = torch.device(info.device)
        self._pad_id = getattr(tokenizer, "pad_token_id", None) or 0
        self._tok = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
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
            lowercase=bool(getattr(tokenizer, "do_lower_case", False)),
        )
        backend = cls(model, tokenizer, info, source.pooling)
        backend.forward(backend.tokenize(["warm up the kernels"] * 4))
        log.info("model loaded", extra={"model": info.model_id, "device": device,
                                        "dtype": dtype_name, "dimension": info.dimension,
                                        "max_tokens": info.max_tokens,
                                        "threads": torch.get_num_threads(), "pid": os.getpid(),
                                        "seconds": round(time.perf_counter() - start, 2)})
        return backend

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        return [Tokens(ids=enc.ids, truncated=bool(enc.overflowing))
                for enc in self._tok.encode_batch(texts)]

    @torch.inference_mode()
    def forward(self, batch: list[Tokens]) -> np.ndarray:
        width = max(len(t.ids) for t in batch)
        ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens.ids)] = torch.tensor(tokens.ids, dtype=torch.long)
            mask[row, : len(tokens.ids)] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        pooled = self._pool(hidden, mask)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self._pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        if self._pooling == "max":
            return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
