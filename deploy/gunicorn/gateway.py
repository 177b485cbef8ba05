"""gunicorn config for the gateway: ``gunicorn -c deploy/gunicorn/gateway.py``.

Several workers: each logs inferences through its own buffer and its own spool file (named by
pid) in ``GATEWAY_SPOOL_DIR``; a worker that dies leaves its spool for the others to replay.
Keep the spool directory on a persistent volume.
"""

from shared.gunicorn import child_exit, common

globals().update(common("gateway", default_bind="0.0.0.0:8000", default_workers=2))
__all__ = ["child_exit"]
