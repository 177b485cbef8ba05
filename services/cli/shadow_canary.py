"""Rollouts from the command line, through the gateway's admin routes:

    polyhead shadow intents 4 [--share 0.2]    # v4 predicts beside production, never answers
    polyhead canary intents 4 --weight 0.1     # v4 answers 10 % of the callers (sticky)
    polyhead withdraw intents                  # production answers everything again

``shadow`` and ``canary`` take a policy: ``--promote-after 200`` (feedback rows; ``--alpha``,
``--margin``) promotes it once shown not worse; ``--max-error-rate 0.02`` and
``--max-p99-ms 500`` withdraw a canary that passes them (README: "Rolling out a new version").

The gateway is ``--gateway`` (env ``GATEWAY_URL``); the key needs the admin scope (``--key``,
env ``POLYHEAD_API_KEY``).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from services.cli.gateway_api import add_gateway_arguments, call
from shared.candidates import terms
from shared.contracts.rollout import Candidate, CandidateMove


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shadow = sub.add_parser("shadow", help="a version predicts beside production, logged only")
    _common(shadow, version=True)
    shadow.add_argument("--share", type=float, default=1.0,
                        help="share of requests it sees, in (0, 1] (default 1)")
    shadow.set_defaults(func=set_candidate, mode="shadow", local=True)
    canary = sub.add_parser("canary", help="a version answers a share of the callers")
    _common(canary, version=True)
    canary.add_argument("--weight", dest="share", type=float, required=True,
                        help="share of callers it answers, in (0, 1]")
    canary.set_defaults(func=set_candidate, mode="canary", local=True)
    for p in (shadow, canary):
        _policy(p)
    withdraw = sub.add_parser("withdraw", help="withdraw a model's shadow or canary")
    _common(withdraw, version=False)
    withdraw.set_defaults(func=withdraw_candidate, local=True)


def _policy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--promote-after", type=int, help="promote it once this many feedback rows "
                   "show it not worse than production")
    p.add_argument("--alpha", type=float, help="the promotion test's level (default 0.05)")
    p.add_argument("--margin", type=float, help="accuracy it may lose and still count as not "
                   "worse (default 0.02)")
    p.add_argument("--max-error-rate", type=float, help="withdraw a canary failing more")
    p.add_argument("--max-p99-ms", type=float, help="withdraw a canary whose p99 passes this")


def _common(p: argparse.ArgumentParser, *, version: bool) -> None:
    p.add_argument("model", help="model name, e.g. intents")
    if version:
        p.add_argument("version", type=int)
    p.add_argument("--reason", default="", help="kept in the alias history")
    add_gateway_arguments(p, "admin")


def set_candidate(args: argparse.Namespace) -> int:
    fields = ("promote_after", "alpha", "margin", "max_error_rate", "max_p99_ms")
    policy = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    return _call(args, "PUT", {"version": args.version, "mode": args.mode, "share": args.share,
                               "reason": args.reason, "policy": policy or None})


def withdraw_candidate(args: argparse.Namespace) -> int:
    return _call(args, "DELETE", {"reason": args.reason})


def _call(args: argparse.Namespace, method: str, body: dict[str, Any]) -> int:
    return call(args, method, f"/v1/models/{quote(args.model, safe='')}/candidate",
                lambda content: describe(CandidateMove.model_validate_json(content)), body=body)


def describe(move: CandidateMove) -> str:
    if move.action == "unchanged":
        return f"{move.model}: candidate unchanged ({_show(move.candidate)})"
    if move.candidate is None:
        return f"{move.model}: withdrew {_show(move.previous)}; production answers everything"
    return f"{move.model}: candidate {_show(move.candidate)} (was {_show(move.previous)})"


def _show(candidate: Candidate | None) -> str:
    if candidate is None:
        return "none"
    return f"v{candidate.version} {candidate.mode} {terms(candidate)}"
