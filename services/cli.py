"""``polyhead``: the command line for people, over the services' HTTP APIs.

    polyhead train data.csv --name intents        # upload, follow with a progress bar, report
    polyhead models                                # models, versions, production aliases
    polyhead promote intents 3 | polyhead rollback intents
    polyhead explain intents "where is my parcel"  # which words moved the answer (gateway)
    polyhead shadow intents 4 | polyhead canary intents 4 --weight 0.1 | polyhead withdraw intents
    polyhead keys create support-app --scopes predict   # into polyhead up's database
    polyhead up                                    # the whole suite, locally
    polyhead export-model [--int8]                 # the embedder's ONNX graph, ahead of start
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from services import cli_explain, cli_rollout
from services.embedder import export_cli
from shared.contracts.training import Job
from shared.internal_auth import env_internal_headers

DEFAULT_URL = os.environ.get("TRAINER_URL", "http://127.0.0.1:8003")


class CliError(Exception):
    pass


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise CliError(f"{response.status_code}: {error['message']}")
        except (ValueError, KeyError, TypeError):
            raise CliError(f"{response.status_code}: {response.text[:500]}") from None
    return response.json()


def train(client: httpx.Client, args: argparse.Namespace) -> int:
    path = Path(args.csv)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    fields = {"name": args.name, "head": args.head, "cv_folds": str(args.cv_folds)}
    for key in ("oos_label", "text_column", "label_column", "threshold", "promote"):
        if getattr(args, key) is not None:
            fields[key] = str(getattr(args, key))
    with path.open("rb") as f:
        job = Job.model_validate(_check(client.post("/v1/jobs", data=fields,
                                                    files={"file": (path.name, f, "text/csv")})))
    data = (job.report or {}).get("data", {})
    print(f"job {job.id}: {data.get('rows_used')} rows, {data.get('classes')} labels, "
          f"{data.get('rows_dropped', 0)} rows dropped", file=sys.stderr)
    job = follow(client, job.id, quiet=args.quiet)
    if job.status == "failed":
        raise CliError(f"job {job.id} failed: {job.error}")
    print_report(job, as_json=args.json)
    return 0


def follow(client: httpx.Client, job_id: str, *, quiet: bool = False,
           poll_s: float = 0.5) -> Job:
    """Poll a job to its end, drawing a progress bar of its stages."""
    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr,
               bar_format="{desc:<18} {percentage:3.0f}%|{bar}| {elapsed}")
    try:
        while True:
            job = Job.model_validate(_check(_get_patiently(client, f"/v1/jobs/{job_id}")))
            bar.set_description_str(job.stage)
            bar.update(round(job.progress * 100) - bar.n)
            if job.status in ("succeeded", "failed"):
                return job
            time.sleep(poll_s)
    finally:
        bar.close()


def _get_patiently(client: httpx.Client, path: str, patience_s: float = 60) -> httpx.Response:
    """GET, riding out a trainer restart or a database blip (503, refused connection) for
    up to ``patience_s``: a long job is not given up on because one poll failed."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            response = client.get(path)
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


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
    for kind, result in (report.get("candidates") or {}).items():
        print(f"  candidate {kind:8} weighted F1 {result['weighted_f1']}  "
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


def models(client: httpx.Client, args: argparse.Namespace) -> int:
    for model in _check(client.get("/v1/models"))["data"]:
        print(f"{model['name']}: production v{model['production_version']}")
        for v in model["versions"]:
            print(f"  v{v['version']:<3} {v['status']:10} {v['head_type']:8} "
                  f"weighted F1 {v['weighted_f1']}  {v['created_at']}")
    return 0


def promote(client: httpx.Client, args: argparse.Namespace) -> int:
    move = _check(client.post(f"/v1/models/{args.name}/promote", json={"version": args.version}))
    if move["action"] == "unchanged":
        print(f"{move['model']}: v{move['to_version']} is already in production; nothing changed")
    else:
        print(f"{move['model']}: production v{move['from_version']} -> v{move['to_version']}")
    return 0


def rollback(client: httpx.Client, args: argparse.Namespace) -> int:
    move = _check(client.post(f"/v1/models/{args.name}/rollback"))
    print(f"{move['model']}: production v{move['from_version']} -> v{move['to_version']}")
    return 0


def keys(args: argparse.Namespace) -> int:
    """API keys live in the database: this talks to it directly, the one ``polyhead up`` uses
    (``--database-url``, else ``DATABASE_URL``, else ``<--data-dir>/polyhead.db``)."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from services.gateway.auth import KeyStore
    from services.up import database_url
    from shared.db import make_engine, session_factory
    from shared.db.migrate import upgrade
    from shared.db.models import ApiKey

    url = args.database_url or database_url(args.data_dir)
    where = make_url(url).render_as_string(hide_password=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        store = KeyStore(sessions)
        if args.action == "create":
            try:
                key = store.create(args.name, args.scopes.split(","), args.rate_limit)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            print(key)
            limit = f", {args.rate_limit}" if args.rate_limit else ""
            print(f"key for {args.name!r} ({args.scopes}{limit}) stored in {where}; shown once, "
                  "store it now", file=sys.stderr)
            return 0
        with sessions() as s:
            found = s.execute(select(ApiKey.revoked_at).where(ApiKey.name == args.name)).first()
        if found is None:
            raise CliError(f"no key named {args.name!r} in {where}")
        if found.revoked_at is not None:
            print(f"the key {args.name!r} was already revoked ({found.revoked_at:%Y-%m-%d %H:%M} "
                  f"UTC); nothing changed")
            return 0
        store.revoke(args.name)
        print(f"revoked the key {args.name!r} in {where}; gateways refuse it within 30 s")
        return 0
    except Exception as exc:
        if isinstance(exc, CliError):
            raise
        raise CliError(f"keys: {type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()


def parser() -> argparse.ArgumentParser:
    from services import up as up_module

    p = argparse.ArgumentParser(prog="polyhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=DEFAULT_URL, help="trainer URL (env TRAINER_URL)")
    sub = p.add_subparsers(dest="command", required=True)
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
    sub.add_parser("models", help="list models and versions").set_defaults(func=models)
    pr = sub.add_parser("promote", help="point production at a version")
    pr.add_argument("name")
    pr.add_argument("version", type=int)
    pr.set_defaults(func=promote)
    rb = sub.add_parser("rollback", help="production back to the previous version")
    rb.add_argument("name")
    rb.set_defaults(func=rollback)
    cli_explain.add_parser(sub)
    cli_rollout.add_parsers(sub)
    export_cli.add_parser(sub)
    k = sub.add_parser("keys", help="create or revoke gateway API keys (talks to the database)")
    k.add_argument("action", choices=["create", "revoke"])
    k.add_argument("name", help="who uses the key, e.g. support-app")
    k.add_argument("--scopes", default="predict", help="predict, admin or predict,admin")
    k.add_argument("--rate-limit", help="this key's limit, e.g. 100/second or 5000/minute "
                   "(default: the gateway's GATEWAY_RATE_LIMIT)")
    k.add_argument("--database-url", help="default: DATABASE_URL, else the data folder's "
                   "SQLite file, as polyhead up uses")
    up_module.add_data_dir(k)
    k.set_defaults(func=keys, local=True)
    u = sub.add_parser("up", help="run the whole suite locally (embedded defaults)")
    up_module.add_arguments(u)
    u.set_defaults(func=up_module.up, local=True)
    return p


def main(argv: list[str] | None = None) -> int:
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
