"""The machine a figure belongs to (``shared.cpu``, which the embedder's calibration uses too)."""

from shared.cpu import VECTOR_FLAGS, cpu_model

__all__ = ["VECTOR_FLAGS", "cpu_model"]
