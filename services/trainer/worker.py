"""A trainer worker process: ``polyhead-trainer-worker`` (or ``dramatiq services.trainer.worker``).

Needs ``REDIS_URL`` (or ``TRAINER_QUEUE_URL``): the queue it shares with the trainer API and
the other workers. Run as many as you like, on as many machines as you like.
"""

from __future__ import annotations

import sys

import dramatiq

from services.trainer.queue import QUEUE, declare, make_broker
from services.trainer.runtime import build_runtime
from shared.logs import configure_logging
from shared.settings import TrainerSettings

settings = TrainerSettings()
configure_logging("trainer-worker", settings.log_level, settings.log_json)
if not settings.queue_url:
    sys.exit("trainer worker: set REDIS_URL (or TRAINER_QUEUE_URL); without a queue the trainer "
             "runs jobs in its own process")
broker = make_broker(settings)
dramatiq.set_broker(broker)
runtime = build_runtime(settings)
train = declare(broker, runtime, settings)


def main() -> None:
    """Start dramatiq's worker CLI on this module: one process, one thread (training uses
    every core already); ``--processes``/``--threads`` may be passed to change that."""
    from dramatiq.cli import main as dramatiq_main, make_argument_parser

    extra = sys.argv[1:] or ["--processes", "1", "--threads", "1"]
    args = make_argument_parser().parse_args(["services.trainer.worker", "--queues", QUEUE,
                                              *extra])
    sys.exit(dramatiq_main(args))


if __name__ == "__main__":
    main()
