"""gunicorn config for the gateway: ``gunicorn -c deploy/gunicorn/gateway.py``.

Several workers: each appends inferences to its own folder of the local log in
``GATEWAY_LOG_DIR`` and ships it; the folder of a worker that dies (SIGKILL, OOM, timeout) is
claimed and shipped by a live one. Keep the log directory on a persistent volume.
"""

from shared.gunicorn import child_exit, common

globals().update(common("gateway", default_bind="0.0.0.0:8000", default_workers=2))
__all__ = ["child_exit"]
