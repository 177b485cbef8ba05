"""The model as an ONNX graph, exported once from its local folder and cached on disk.

The graph returns, per token, the last hidden state and the embedding layer's output; the
backend pools them per text into the sentence and lexical vectors (:mod:`packing`). For
BERT-family models the graph takes packed rows (``input_ids``, ``position_ids``, ``segments``:
several texts per row, each attending only to itself), else padded rows (``input_ids``,
``attention_mask``). It is exported with torch.onnx's TorchScript exporter and eager attention
(a plain graph ONNX Runtime optimises well on CPU); ``int8`` is that graph with dynamic int8
quantisation of its MatMul weights, per output channel (per-tensor scales cost far more
accuracy on MiniLM). The embedding layer is a Gather and a LayerNorm, not a MatMul, so the
lexical embedding stays exact in ``int8``.

Each export lives in ``<cache>/<variant>/`` beside a ``manifest.json`` holding a fingerprint
(the model files' hash, torch/transformers/onnx/onnxruntime versions, the options) and the
graph's SHA-256. A later start reuses it when both still match; a stale or corrupt export is
rebuilt. A file lock keeps concurrent starts (gunicorn workers) from exporting twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from services.embedder.backends.model_source import ModelSource, model_revision
from services.embedder.backends.packing import PACKABLE_MODEL_TYPES
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
Variant = Literal["fp32", "int8"]
# Bump when the exported graph changes shape or meaning. 2: the lexical output. 3: token
# states out (pooled by the backend), packed rows in for BERT-family models.
EXPORT_FORMAT = 3
OUTPUTS = ["last_hidden_state", "embedding_output"]
PACKED_INPUTS = ["input_ids", "position_ids", "segments"]
PADDED_INPUTS = ["input_ids", "attention_mask"]
OPSET = 17
GRAPH_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


def cache_dir(settings: EmbedderSettings, source: ModelSource) -> Path:
    """``EMBEDDER_ONNX_DIR``/<model>, else beside the model if writable, else the user cache."""
    slug = source.model_id.replace("/", "--")
    if settings.onnx_dir:
        return Path(settings.onnx_dir).expanduser() / slug
    folder = Path(source.location)
    if folder.is_dir() and os.access(folder, os.W_OK):
        return folder / "polyhead-onnx"
    return Path.home() / ".cache" / "polyhead" / "onnx" / slug


def packs(source: ModelSource) -> bool:
    """Whether the model's graph takes packed rows (its positions restart per text)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source.location).model_type in PACKABLE_MODEL_TYPES


def fingerprint(source: ModelSource, variant: Variant) -> dict[str, Any]:
    """What an export depends on: any change means the cached graph is stale."""
    return {"format": EXPORT_FORMAT, "model": source.model_id,
            "model_revision": model_revision(source.location), "variant": variant,
            "opset": OPSET, "rows": "packed" if packs(source) else "padded",
            **{name: version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")}}


def ensure_export(settings: EmbedderSettings, source: ModelSource, variant: Variant) -> Path:
    """The path of a valid graph for ``variant``, exporting (or re-exporting) it if needed."""
    folder = cache_dir(settings, source) / variant
    folder.mkdir(parents=True, exist_ok=True)
    wanted = fingerprint(source, variant)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second worker waits, then finds it done
        if _valid(folder, wanted):
            return folder / GRAPH_FILE
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
            graph = Path(tmp) / GRAPH_FILE
            if variant == "int8":
                _quantize(ensure_export(settings, source, "fp32"), graph)
            else:
                _export_fp32(source, graph)
            os.replace(graph, folder / GRAPH_FILE)
        manifest = {"fingerprint": wanted, "sha256": _sha256(folder / GRAPH_FILE)}
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        log.info("exported the model to ONNX", extra={
            "model": source.model_id, "variant": variant, "path": str(folder / GRAPH_FILE),
            "seconds": round(time.perf_counter() - start, 2)})
        return folder / GRAPH_FILE


def _valid(folder: Path, wanted: dict[str, Any]) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        same = manifest["fingerprint"] == wanted
        intact = same and manifest["sha256"] == _sha256(folder / GRAPH_FILE)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not intact:
        log.warning("the cached ONNX export is %s; exporting again",
                    "corrupt" if same else "stale", extra={"path": str(folder)})
    return intact


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _export_fp32(source: ModelSource, path: Path) -> None:
    import torch
    from transformers import AutoModel

    from services.embedder.backends.pooling import PackedTokenStates, TokenStates

    model = AutoModel.from_pretrained(source.location, attn_implementation="eager",
                                      dtype=torch.float32).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    example: tuple[torch.Tensor, ...]
    if packs(source):  # two texts in the first row, one in the second (then padding)
        wrapper: torch.nn.Module = PackedTokenStates(model)
        names, example = PACKED_INPUTS, (ids, torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4]] * 2),
                                         torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1],
                                                       [0, 0, 0, 0, 0, -1, -1, -1]]))
    else:
        wrapper, names, example = TokenStates(model), PADDED_INPUTS, (ids, torch.ones_like(ids))
    axes = {name: {0: "rows", 1: "tokens"} for name in [*names, *OUTPUTS]}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python code
        torch.onnx.export(wrapper, example, str(path), dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=OUTPUTS, dynamic_axes=axes)


def _quantize(fp32: Path, path: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # the quantizer logs per tensor on the root logger
    try:
        quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        logging.disable(logging.NOTSET)
