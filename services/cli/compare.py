"""``polyhead compare intents``: production against its shadow or canary, side by side (the
figures of the gateway's ``GET /v1/reports/models/{name}/candidate``; admin scope)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

import orjson

from services.cli.gateway_api import add_gateway_arguments, call


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="production against its shadow or canary")
    p.add_argument("model", help="model name, e.g. intents")
    p.add_argument("--version", dest="candidate", type=int,
                   help="an earlier candidate (default: the running one)")
    p.add_argument("--from", dest="start", help="ISO time (default: when the running "
                   "candidate started, at most 7 days back; else a day before --to)")
    p.add_argument("--to", dest="end", help="ISO time (default: now)")
    add_gateway_arguments(p, "admin")
    p.set_defaults(func=compare, local=True)


def compare(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("from", args.start), ("to", args.end),
                                ("version", args.candidate)) if v is not None}
    return call(args, "GET", f"/v1/reports/models/{quote(args.model, safe='')}/candidate",
                describe, params=params)


def describe(content: bytes) -> str:
    """The comparison report as a small table, then each side's top labels."""
    report: dict[str, Any] = orjson.loads(content)
    production, candidate = report["production"], report["candidate"]
    lines = [f"{report['model']}: production vs v{report['candidate_version']} "
             f"({report['mode']}), {report['from']} to {report['to']}",
             f"{'':24}{'production':>22}{'candidate':>22}"]
    rows = [("requests", lambda side: str(side["requests"])),
            ("mean confidence", lambda side: _number(side["mean_confidence"])),
            ("abstain rate", lambda side: _percent(side["abstain_rate"])),
            ("latency p50/p95 ms", _latency),
            ("accuracy on feedback", lambda side: _accuracy(side["accuracy_on_feedback"]))]
    lines += [f"{name:24}{shown(production):>22}{shown(candidate):>22}" for name, shown in rows]
    agreement = report["agreement"]
    lines.append(f"{'agreement':24}{_percent(agreement['rate'])} of {agreement['pairs']} pairs"
                 if agreement["rate"] is not None else
                 f"{'agreement':24}n/a: {agreement.get('note', 'no pairs')}")
    for name, side in (("production", production), ("candidate", candidate)):
        labels = ", ".join(f"{x['label']} {_percent(x['share'])}" for x in side["labels"][:5])
        lines.append(f"top labels, {name}: {labels or 'none'}")
    return "\n".join(lines)


def _latency(side: dict[str, Any]) -> str:
    timed = side["latency_ms"]["total"]
    if timed["p50"] is None:  # a shadow: nobody waited; its head's own time
        timed = side["latency_ms"]["head"]
        return f"{_number(timed['p50'])}/{_number(timed['p95'])} (head)"
    return f"{_number(timed['p50'])}/{_number(timed['p95'])}"


def _accuracy(figures: dict[str, Any]) -> str:
    if not figures["rows"]:
        return "n/a (0 rows)"
    low, high = figures["ci95"]
    return (f"{_percent(figures['accuracy'])} [{low:.0%}-{high:.0%}] "
            f"n={figures['rows']}")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"
