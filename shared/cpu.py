"""The CPU a measurement belongs to: its model and vector extensions. Benchmarks print it with
their figures (these VMs differ by 2x between draws, and ONNX Runtime's speed follows
AVX-512/VNNI), and the embedder keeps its choice of backend per CPU
(:mod:`services.embedder.backends.calibration`)."""

from __future__ import annotations

from pathlib import Path

VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_tile")


def cpu_model() -> str:
    """``"AMD EPYC (avx2)"``: ``/proc/cpuinfo``'s model name and which of
    :data:`VECTOR_FLAGS` it has ("unknown" where there is no such file)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in lines
                  if line.startswith("flags")), [])
    vector = [f for f in VECTOR_FLAGS if f in flags]
    return f"{name} ({', '.join(vector) or 'no AVX2'})"
