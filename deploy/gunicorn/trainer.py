"""gunicorn config for the trainer API: ``gunicorn -c deploy/gunicorn/trainer.py``.

The API only validates uploads and enqueues; training runs in ``polyhead-trainer-worker``
processes (set REDIS_URL). Without REDIS_URL keep one worker: it also runs the jobs.
"""

from shared.gunicorn import child_exit, common

globals().update(common("trainer", default_bind="127.0.0.1:8003", default_workers=1))
__all__ = ["child_exit"]
