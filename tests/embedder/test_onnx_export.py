"""The ONNX export is made once, reused by later starts, and rebuilt when corrupt or stale
(another runtime, or an export of an older format: pooled outputs, padded rows only)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import onnxruntime
import pytest

from services.embedder.backends.model_source import resolve
from services.embedder.backends.onnx_export import (
    GRAPH_FILE,
    MANIFEST_FILE,
    OUTPUTS,
    PACKED_INPUTS,
    cache_dir,
    ensure_export,
)
from tests.conftest import settings
from tests.embedder.conftest import BackendFactory

pytestmark = pytest.mark.model
SOURCE = resolve("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture
def export_copy(model_backend: BackendFactory, onnx_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's fp32 export, free to damage."""
    model_backend("onnx")  # exported by now
    shared = cache_dir(settings(onnx_dir=str(onnx_dir)), SOURCE) / "fp32"
    copy = cache_dir(settings(onnx_dir=str(tmp_path)), SOURCE) / "fp32"
    shutil.copytree(shared, copy)
    return copy


def _exports(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "exported the model to ONNX" for r in caplog.records)


def test_a_later_start_reuses_the_export(export_copy: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    before = (export_copy / GRAPH_FILE).stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        graph = ensure_export(settings(onnx_dir=str(tmp_path)), SOURCE, "fp32")
    assert graph == export_copy / GRAPH_FILE
    assert graph.stat().st_mtime_ns == before and _exports(caplog) == 0


@pytest.mark.parametrize("damage", ["corrupt", "stale", "older format"])
def test_a_corrupt_or_stale_export_is_rebuilt(export_copy: Path, tmp_path: Path, damage: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    good = json.loads((export_copy / MANIFEST_FILE).read_text())
    if damage == "corrupt":  # a truncated write, a bad disk
        with (export_copy / GRAPH_FILE).open("r+b") as handle:
            handle.truncate(1000)
    elif damage == "stale":  # exported by another onnxruntime: its graph may not suit this one
        stale = {**good, "fingerprint": {**good["fingerprint"], "onnxruntime": "1.0.0"}}
        (export_copy / MANIFEST_FILE).write_text(json.dumps(stale))
    else:  # format 2: pooled vectors out, padded rows in (its fingerprint said format 2)
        older = {**good, "fingerprint": {**good["fingerprint"], "format": 2}}
        (export_copy / MANIFEST_FILE).write_text(json.dumps(older))
    with caplog.at_level(logging.INFO):
        graph = ensure_export(settings(onnx_dir=str(tmp_path)), SOURCE, "fp32")
    assert _exports(caplog) == 1
    assert any(("corrupt" if damage == "corrupt" else "stale") in r.getMessage()
               for r in caplog.records)
    rebuilt = json.loads((export_copy / MANIFEST_FILE).read_text())
    assert rebuilt["fingerprint"] == good["fingerprint"] and good["fingerprint"]["format"] == 3
    assert graph.stat().st_size > 1000
    session = onnxruntime.InferenceSession(str(graph))
    assert [o.name for o in session.get_outputs()] == OUTPUTS == [
        "last_hidden_state", "embedding_output"]
    assert [i.name for i in session.get_inputs()] == PACKED_INPUTS  # MiniLM is a BERT
