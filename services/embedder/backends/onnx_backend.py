"""The model on ONNX Runtime (CPU): fp32 (exact, the CPU default) or dynamic int8 (lossy).

The graph (exported once, see :mod:`onnx_export`) returns token states, pooled here per text.
Mixed-length batches of BERT-family models run packed (:mod:`packing`): one run, no compute
on padding. Batches with little padding, and other models, run as length-sorted micro-batches
of ``onnx_micro_batch`` texts, each padded only to its own longest text (sizes of 8 to 128
measured alike on 2 cores, within noise: bench/RESULTS.md). Intra-op spinning is off, so idle
runtime threads do not take the cores from the event loop between batches.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import onnxruntime as ort
from transformers import AutoConfig, AutoTokenizer
from transformers.utils import logging as hf_logging

from services.embedder.backends.base import ModelInfo, SentenceFromFeatures, Tokens, concurrency
from services.embedder.backends.model_source import model_revision, resolve
from services.embedder.backends.onnx_export import OUTPUTS, PACKED_INPUTS, Variant, ensure_export
from services.embedder.backends.packing import (
    Layout,
    lay_out,
    one_per_row,
    pack_rows,
    pool_texts,
    worth_packing,
)
from shared.embedding_identity import EmbeddingIdentity
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)


class OnnxBackend(SentenceFromFeatures):
    def __init__(self, session: ort.InferenceSession, tokenizer: object, info: ModelInfo,
                 pooling: str, micro_batch: int, pack_tokens: int) -> None:
        self.session = session
        self.info = info
        self._pooling = pooling
        self._micro_batch = micro_batch
        self._inputs = [i.name for i in session.get_inputs()]
        self._pack_tokens = pack_tokens if self._inputs == PACKED_INPUTS else 0  # 0: padded
        self._pad_id = getattr(tokenizer, "pad_token_id", None) or 0
        self._tok = tokenizer.backend_tokenizer  # type: ignore[attr-defined]  # fast tokenizers only
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=info.max_tokens)

    @classmethod
    def load(cls, settings: EmbedderSettings, *, int8: bool) -> OnnxBackend:
        start = time.perf_counter()
        source = resolve(settings.model)
        variant: Variant = "int8" if int8 else "fp32"
        graph = ensure_export(settings, source, variant)
        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(source.location)
        config = AutoConfig.from_pretrained(source.location)
        threads = concurrency(settings, "cpu").threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 1: each run on its caller's thread
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings are not ours to act on
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        limits = [n for n in (source.max_seq_length, getattr(tokenizer, "model_max_length", None),
                              getattr(config, "max_position_embeddings", None))
                  if isinstance(n, int) and 0 < n < 1_000_000]
        revision = model_revision(source.location) or str(
            getattr(config, "_commit_hash", None) or "unknown")[:12]
        info = ModelInfo(
            model_id=source.model_id,
            aliases=frozenset({source.model_id, source.model_id.split("/")[-1], settings.model}),
            dimension=int(config.hidden_size), max_tokens=min(limits) if limits else 512,
            device="cpu", dtype="int8" if int8 else "float32",
            lowercase=bool(getattr(tokenizer, "do_lower_case", False)),
            backend="onnx-int8" if int8 else "onnx",
            identity=str(EmbeddingIdentity(source.model_id, revision, variant)))
        pack_tokens = settings.pack_tokens if settings.packing != "off" else 0
        backend = cls(session, tokenizer, info, source.pooling, settings.onnx_micro_batch,
                      pack_tokens)
        backend.forward(backend.tokenize(["warm up the kernels"] * 4))
        log.info("model loaded", extra={"model": info.model_id, "backend": info.backend,
                                        "identity": info.identity, "device": "cpu",
                                        "dimension": info.dimension,
                                        "max_tokens": info.max_tokens,
                                        "micro_batch": settings.onnx_micro_batch,
                                        "packing": backend._pack_tokens or "off",
                                        "threads": threads,
                                        "pid": os.getpid(),
                                        "seconds": round(time.perf_counter() - start, 2)})
        return backend

    def tokenize(self, texts: list[str]) -> list[Tokens]:
        return [Tokens(ids=enc.ids, truncated=bool(enc.overflowing))
                for enc in self._tok.encode_batch(texts)]

    def features(self, batch: list[Tokens]) -> np.ndarray:
        texts = [t.ids for t in batch]
        lengths = [len(ids) for ids in texts]
        if self._pack_tokens and worth_packing(lengths):
            return self._run(lay_out(texts, pack_rows(lengths, self._pack_tokens), self._pad_id))
        order = sorted(range(len(batch)), key=lengths.__getitem__)
        out = np.empty((len(batch), self.info.feature_dimension), dtype=np.float32)
        for start in range(0, len(order), self._micro_batch):
            rows = order[start:start + self._micro_batch]
            out[rows] = self._run(lay_out([texts[i] for i in rows], one_per_row(len(rows)),
                                          self._pad_id))
        return out

    def _run(self, layout: Layout) -> np.ndarray:
        feeds = {name: getattr(layout, name) for name in self._inputs}
        last, embedded = self.session.run(OUTPUTS, feeds)
        return np.concatenate([pool_texts(last, layout, self._pooling),
                               pool_texts(embedded, layout, "mean")], axis=1)
