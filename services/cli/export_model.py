"""``polyhead export-model``: export the embedder's ONNX graphs ahead of its first start.

Uses the embedder's own settings (``EMBEDDER_MODEL``, ``EMBEDDER_ONNX_DIR``), so the service
finds the export where it looks and starts without exporting. Offline: the graph comes from the
local model folder. An export that is still valid is reused, not redone.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export-model", help="export the embedder's model to ONNX (cached)")
    p.add_argument("--int8", action="store_true", help="also the dynamic int8 graph (lossy)")
    p.set_defaults(func=export_model, local=True)


def export_model(args: argparse.Namespace) -> int:
    from services.embedder.backends.model_source import resolve
    from services.embedder.backends.onnx_export import Variant, ensure_export
    from shared.settings import EmbedderSettings

    settings = EmbedderSettings()
    source = resolve(settings.model)
    variants: list[Variant] = ["fp32", "int8"] if args.int8 else ["fp32"]
    for variant in variants:
        print(f"{variant}: {ensure_export(settings, source, variant)}")
    return 0
