"""How much the fuzz tests explore, from the environment.

``FUZZ_EXAMPLES`` (default 25): examples per operation. ``FUZZ_RANDOM``: unset or ``0``, the
examples are derandomized (drawn from a seed fixed by each test, so every run tries the same
requests: ``scripts/test`` and CI); ``1``, fresh examples every run (``scripts/fuzz``).
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, settings


def fuzz_settings(environ: Mapping[str, str]) -> settings:
    return settings(max_examples=int(environ.get("FUZZ_EXAMPLES", 25)), deadline=None,
                    database=None, suppress_health_check=list(HealthCheck),
                    derandomize=environ.get("FUZZ_RANDOM", "0") != "1")
