"""gunicorn config for the embedder: ``gunicorn -c deploy/gunicorn/embedder.py``.

One worker by default: the model is loaded once per worker, and one process gathers all
concurrent requests into the largest batches. On a GPU keep one worker per GPU; on CPU see
bench/RESULTS.md for the measured sizing.
"""

from shared.gunicorn import child_exit, common

globals().update(common("embedder", default_bind="127.0.0.1:8001", default_workers=1))
__all__ = ["child_exit"]
