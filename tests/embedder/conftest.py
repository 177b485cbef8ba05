"""The real model on each backend, loaded once per session; ONNX exports go to a temp folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.embedder.backends import Backend, load_backend
from tests.conftest import settings

BackendFactory = Callable[[str], Backend]


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's ONNX exports live (exported once, on first use)."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def model_backend(onnx_dir: Path) -> BackendFactory:
    """``model_backend("onnx")``: the real model on that backend, shared by the session."""
    loaded: dict[str, Backend] = {}

    def get(name: str) -> Backend:
        if name not in loaded:
            loaded[name] = load_backend(settings(backend=name, onnx_dir=str(onnx_dir), threads=2))
        return loaded[name]

    return get
