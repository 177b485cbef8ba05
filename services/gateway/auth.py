"""API keys: ``Authorization: Bearer <key>``, scopes ``predict`` and ``admin``.

Only the SHA-256 of a key is stored; keys are 32 random bytes, so a plain hash cannot be
brute-forced and needs no slow KDF. The row is found by an ordinary SQL equality on the hash of
what the caller sent, and nothing more is compared: that lookup's time may tell a caller how
many leading characters of *the hash of its guess* match a stored hash, but steering a SHA-256
that way would need a preimage, and knowing a hash does not give the key. So a constant-time
comparison would protect nothing here, and there is none.

An unknown key costs one indexed query (its answer is cached like any other); failed
authentications are limited per client address (:mod:`services.gateway.ratelimit`), and a
valid key is never refused for them.

Lookups are cached for ``ttl_s`` so a request costs no database query; a revoked key stops
working within that time. While the database is down, keys seen before keep working (their
last known answer is served) and unseen keys get a 503: an outage never locks out clients.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache
from limits import parse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.db.models import ApiKey
from shared.db.types import utcnow
from shared.errors import Forbidden, Unauthorized, Unavailable

log = logging.getLogger(__name__)
SCOPES = ("predict", "admin")
PREFIX = "ph_"


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str]
    rate_limit: str | None = None  # "100/second"; None: the gateway's default


class UnknownKey(Unauthorized):
    """A key that no row matches (or a revoked one): a failed authentication."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 30.0,
                 cache_size: int = 10_000, retry_s: float = 2.0) -> None:
        self.sessions, self.ttl_s, self.retry_s = sessions, ttl_s, retry_s
        # Bounded: a flood of made-up keys cannot grow memory without limit.
        self._cache: LRUCache[str, tuple[float, Client | None]] = LRUCache(cache_size)
        self._lock = threading.Lock()  # authenticate runs in FastAPI's worker threads

    def create(self, name: str, scopes: list[str], rate_limit: str | None = None) -> str:
        """A new key for ``name``; the only time the key itself exists."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"scopes must be among {SCOPES}, got {scopes}")
        if rate_limit is not None:
            try:
                parse(rate_limit)
            except ValueError:
                raise ValueError(f"rate limit {rate_limit!r} is not like '100/second' or "
                                 "'5000/minute'") from None
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.sessions.begin() as s:
                old = s.scalar(select(ApiKey).where(ApiKey.name == name,
                                                    ApiKey.revoked_at.is_not(None)))
                if old is not None:  # a revoked name may get a new key (rotation)
                    s.delete(old)
                    s.flush()
                s.add(ApiKey(name=name, key_hash=hash_key(key), scopes=",".join(scopes),
                             rate_limit=rate_limit))
        except IntegrityError:
            raise ValueError(f"a key named {name!r} exists already; revoke it or pick another "
                             "name") from None
        return key

    def revoke(self, name: str) -> bool:
        with self.sessions.begin() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                return False
            row.revoked_at = utcnow()
        with self._lock:
            self._cache.clear()
        return True

    def authenticate(self, authorization: str | None, scope: str | None) -> Client:
        """The client behind ``authorization`` if it has ``scope`` (any key when ``None``);
        else :class:`Unauthorized` (:class:`UnknownKey` for a key that matches nothing) or
        :class:`Forbidden`."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        key = authorization[7:].strip()
        client = self._client(hash_key(key))
        if client is None:
            raise UnknownKey("unknown or revoked API key")
        if scope is not None and scope not in client.scopes:
            raise Forbidden(f"this key ({client.name}) lacks the {scope!r} scope")
        return client

    def known(self, authorization: str | None, scope: str | None) -> Client | None:
        """:meth:`authenticate`'s answer when it needs no database: the key's client, fresh
        in the cache, with ``scope``; else None (ask :meth:`authenticate`, in a thread)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        with self._lock:
            cached = self._cache.get(hash_key(authorization[7:].strip()))
        if cached is None or cached[1] is None or time.monotonic() - cached[0] > self.ttl_s:
            return None
        client = cached[1]
        return client if scope is None or scope in client.scopes else None

    def _client(self, digest: str) -> Client | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] <= self.ttl_s:
            return cached[1]
        try:
            client = self._lookup(digest)
        except SQLAlchemyError as exc:
            if cached is None:
                raise Unavailable("cannot check the API key: the database is unavailable; "
                                  "retry shortly", retry_after_s=5) from exc
            log.warning("database unavailable; serving the last known answer for key %s",
                        cached[1].name if cached[1] else "(unknown)")
            # Ask the database again in retry_s, not on every request meanwhile.
            with self._lock:
                self._cache[digest] = (now - self.ttl_s + self.retry_s, cached[1])
            return cached[1]
        with self._lock:
            self._cache[digest] = (now, client)
        return client

    def _lookup(self, digest: str) -> Client | None:
        with self.sessions() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest,
                                                ApiKey.revoked_at.is_(None)))
            if row is None:
                return None
            return Client(row.name, frozenset(row.scopes.split(",")), row.rate_limit)
