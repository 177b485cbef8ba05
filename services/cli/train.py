"""``polyhead train data.csv --name intents``: upload a CSV to the trainer, follow the job with
a progress bar, and print its report (``--json``: the whole report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

from services.cli.trainer_api import CliError, check, follow
from shared.contracts.training import Job


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("train", help="train a head from a CSV of text,label")
    t.add_argument("csv")
    t.add_argument("--name", required=True, help="model name, e.g. intents")
    t.add_argument("--head", default="auto", choices=["auto", "logreg", "mlp", "xgboost"])
    t.add_argument("--cv-folds", type=int, default=5)
    t.add_argument("--oos-label", help="label of out-of-scope rows (calibrate the threshold)")
    t.add_argument("--text-column")
    t.add_argument("--label-column")
    t.add_argument("--threshold", help="auto, calibrate, none or a probability")
    t.add_argument("--promote", choices=["if_not_worse", "always", "never"])
    t.add_argument("--json", action="store_true", help="print the full report as JSON")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=train)


def train(client: httpx.Client, args: argparse.Namespace) -> int:
    path = Path(args.csv)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    fields = {"name": args.name, "head": args.head, "cv_folds": str(args.cv_folds)}
    for key in ("oos_label", "text_column", "label_column", "threshold", "promote"):
        if getattr(args, key) is not None:
            fields[key] = str(getattr(args, key))
    with path.open("rb") as f:
        job = Job.model_validate(check(client.post("/v1/jobs", data=fields,
                                                    files={"file": (path.name, f, "text/csv")})))
    data = (job.report or {}).get("data", {})
    print(f"job {job.id}: {data.get('rows_used')} rows, {data.get('classes')} labels, "
          f"{data.get('rows_dropped', 0)} rows dropped", file=sys.stderr)
    job = follow(client, job.id, quiet=args.quiet)
    if job.status == "failed":
        raise CliError(f"job {job.id} failed: {job.error}")
    print_report(job, as_json=args.json)
    return 0


def print_report(job: Job, *, as_json: bool = False) -> None:
    report = job.report or {}
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    cv, train_ = report.get("cv", {}), report.get("train", {})
    model = job.model
    print(f"\n{job.model_name} v{model.version if model else '?'}: {report.get('head_type')} head"
          f"{' (promoted to production)' if job.promoted else ' (not promoted)'}")
    print(f"  cross-validated ({report.get('cv_folds')} folds): weighted F1 {cv.get('weighted_f1')}"
          f"  macro F1 {cv.get('macro_f1')}  accuracy {cv.get('accuracy')}")
    print(f"  on training data: weighted F1 {train_.get('weighted_f1')} "
          f"(gap {report.get('train_cv_gap')})")
    # "candidates": the key's name in reports written before 2026-12
    for kind, result in (report.get("screened") or report.get("candidates") or {}).items():
        print(f"  screened  {kind:8} weighted F1 {result['weighted_f1']}  "
              f"({result['fit_seconds']} s)")
    for kind, why in (report.get("skipped") or {}).items():
        print(f"  skipped   {kind:8} {why}")
    weighting = report.get("class_weight") or {}
    print(f"  class weights: {weighting.get('chosen')} "
          f"{ {k: v for k, v in weighting.items() if k.endswith('_f1')} or ''}")
    threshold = report.get("threshold")
    if threshold:
        recall = threshold.get("oos_recall")
        extra = f", out-of-scope recall {recall}" if recall is not None else ""
        print(f"  abstains when its {threshold.get('score', 'score')} is below "
              f"{threshold['threshold']:.3f}: {threshold.get('in_scope_abstain_rate', 0):.2%} of "
              f"in-scope rows abstain, in-scope accuracy {threshold['in_scope_accuracy']}{extra}")
    data = report.get("data") or {}
    for reason, info in (data.get("dropped") or {}).items():
        print(f"  dropped {info['rows']} rows: {reason.replace('_', ' ')}")
    for warning in data.get("warnings") or []:  # labels dropped, an oos_label matching no row
        print(f"  warning: {warning}")
    promotion = report.get("promotion") or {}
    if promotion and not promotion["promoted"]:
        print(f"  {promotion['reason']}")
    worst = sorted(report.get("per_class") or [], key=lambda r: r["f1"])[:5]
    if worst:
        print("  weakest labels: " + ", ".join(f"{r['label']} ({r['f1']})" for r in worst))
    print(f"  time: {report.get('timings', {}).get('total_s')} s")
