"""gunicorn config for a classifier-head service: ``gunicorn -c deploy/gunicorn/classifier.py``.

Heads are small (NumPy arrays), so several workers per host are cheap; each keeps its own
copy of the heads and reloads them on promotion.
"""

from shared.gunicorn import child_exit, common

globals().update(common("classifier", default_bind="127.0.0.1:8002", default_workers=2))
__all__ = ["child_exit"]
