"""API keys: ``Authorization: Bearer <key>``, scopes ``predict`` and ``admin``.

Only the SHA-256 of a key is stored; keys are 32 random bytes, so a plain hash cannot be
brute-forced and needs no slow KDF. Lookups are cached for ``ttl_s`` so a request costs no
database query; a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.db.models import ApiKey
from shared.db.types import utcnow
from shared.errors import Forbidden, Unauthorized

SCOPES = ("predict", "admin")
PREFIX = "ph_"


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 30.0) -> None:
        self.sessions, self.ttl_s = sessions, ttl_s
        self._cache: dict[str, tuple[float, Client | None]] = {}

    def create(self, name: str, scopes: list[str]) -> str:
        """A new key for ``name``; the only time the key itself exists."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"scopes must be among {SCOPES}, got {scopes}")
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.sessions.begin() as s:
                old = s.scalar(select(ApiKey).where(ApiKey.name == name,
                                                    ApiKey.revoked_at.is_not(None)))
                if old is not None:  # a revoked name may get a new key (rotation)
                    s.delete(old)
                    s.flush()
                s.add(ApiKey(name=name, key_hash=hash_key(key), scopes=",".join(scopes)))
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
        self._cache.clear()
        return True

    def authenticate(self, authorization: str | None, scope: str) -> Client:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        key = authorization[7:].strip()
        digest = hash_key(key)
        cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached[0] > self.ttl_s:
            cached = (time.monotonic(), self._lookup(digest))
            self._cache[digest] = cached
        client = cached[1]
        if client is None:
            raise Unauthorized("unknown or revoked API key")
        if scope not in client.scopes:
            raise Forbidden(f"this key ({client.name}) lacks the {scope!r} scope")
        return client

    def _lookup(self, digest: str) -> Client | None:
        with self.sessions() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest,
                                                ApiKey.revoked_at.is_(None)))
            return Client(row.name, frozenset(row.scopes.split(","))) if row else None
