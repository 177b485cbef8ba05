"""``polyhead``: the command line for people, over the services' HTTP APIs.

    polyhead train data.csv --name intents        # upload, follow with a progress bar, report
    polyhead models                                # models, versions, production aliases
    polyhead promote intents 3 | polyhead rollback intents
    polyhead explain intents "where is my parcel"  # which words moved the answer (gateway)
    polyhead shadow intents 4 | polyhead canary intents 4 --weight 0.1 | polyhead withdraw intents
    polyhead compare intents                       # production against its shadow or canary
    polyhead keys create support-app --scopes predict   # into polyhead up's database
    polyhead up                                    # the whole suite, locally
    polyhead export-model [--int8]                 # the embedder's ONNX graph, ahead of start
"""

from __future__ import annotations

import argparse
import sys

import httpx

from services.cli import compare, explain, export_model, keys, shadow_canary, train, up, versions
from services.cli.trainer_api import DEFAULT_URL, CliError
from shared.internal_auth import env_internal_headers


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=DEFAULT_URL, help="trainer URL (env TRAINER_URL)")
    sub = p.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    versions.add_parsers(sub)
    explain.add_parser(sub)
    shadow_canary.add_parsers(sub)
    compare.add_parser(sub)
    export_model.add_parser(sub)
    keys.add_parser(sub)
    up.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. A command with ``local`` set talks to the gateway or the database
    itself; the others get a client of the trainer (``--url``)."""
    args = parser().parse_args(argv)
    try:
        if getattr(args, "local", False):
            return int(args.func(args))
        with httpx.Client(base_url=args.url, timeout=httpx.Timeout(300, connect=5),
                          headers=env_internal_headers()) as client:
            return int(args.func(client, args))
    except CliError as exc:
        print(f"polyhead: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"polyhead: cannot reach the trainer at {args.url} ({exc}); is it running?",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
