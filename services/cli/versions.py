"""Versions and the production alias, through the trainer:

    polyhead models                  # models, versions, production aliases
    polyhead promote intents 3       # production -> v3
    polyhead rollback intents        # production back to the version before
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from services.cli.trainer_api import check


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("models", help="list models and versions").set_defaults(func=models)
    pr = sub.add_parser("promote", help="point production at a version")
    pr.add_argument("name")
    pr.add_argument("version", type=int)
    pr.set_defaults(func=promote)
    rb = sub.add_parser("rollback", help="production back to the previous version")
    rb.add_argument("name")
    rb.set_defaults(func=rollback)


def models(client: httpx.Client, args: argparse.Namespace) -> int:
    for model in check(client.get("/v1/models"))["data"]:
        print(f"{model['name']}: production v{model['production_version']}")
        for v in model["versions"]:
            print(f"  v{v['version']:<3} {_role(model, v):12} {v['head_type']:8} "
                  f"weighted F1 {v['weighted_f1']}  {v['created_at']}")
    return 0


def _role(model: dict[str, Any], version: dict[str, Any]) -> str:
    """What a version does now: production, the shadow or canary (with its share), else its
    status (new, archived); as the console's Models page says it."""
    trial = model.get("candidate")
    if version["status"] != "production" and trial and trial["version"] == version["version"]:
        return f"{trial['mode']} {trial['share']:.0%}"
    return str(version["status"])


def promote(client: httpx.Client, args: argparse.Namespace) -> int:
    move = check(client.post(f"/v1/models/{args.name}/promote", json={"version": args.version}))
    if move["action"] == "unchanged":
        print(f"{move['model']}: v{move['to_version']} is already in production; nothing changed")
    else:
        print(f"{move['model']}: production v{move['from_version']} -> v{move['to_version']}")
    return 0


def rollback(client: httpx.Client, args: argparse.Namespace) -> int:
    move = check(client.post(f"/v1/models/{args.name}/rollback"))
    print(f"{move['model']}: production v{move['from_version']} -> v{move['to_version']}")
    return 0
