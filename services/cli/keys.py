"""``polyhead keys create support-app --scopes predict`` and ``polyhead keys revoke
support-app``: gateway API keys, written to the database directly."""

from __future__ import annotations

import argparse
import sys

from services.cli.data_dir import add_data_dir, database_url
from services.cli.trainer_api import CliError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keys", help="create or revoke gateway API keys (talks to the database)")
    k.add_argument("action", choices=["create", "revoke"])
    k.add_argument("name", help="who uses the key, e.g. support-app")
    k.add_argument("--scopes", default="predict", help="predict, admin or predict,admin")
    k.add_argument("--rate-limit", help="this key's limit, e.g. 100/second or 5000/minute "
                   "(default: the gateway's GATEWAY_RATE_LIMIT)")
    k.add_argument("--database-url", help="default: DATABASE_URL, else the data folder's "
                   "SQLite file, as polyhead up uses")
    add_data_dir(k)
    k.set_defaults(func=keys, local=True)


def keys(args: argparse.Namespace) -> int:
    """API keys live in the database: this talks to it directly, the one ``polyhead up`` uses
    (``--database-url``, else ``DATABASE_URL``, else ``<--data-dir>/polyhead.db``)."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from services.gateway.auth import KeyStore
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
