"""API keys: only their sha256 is stored (a random 256-bit key needs no slow hash). A key has one purpose:
``events`` (a shop's /v1 API) or ``admin`` (the /admin JSON endpoints); each door checks its own."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Select, event, select, update
from sqlalchemy.orm import Session

from infra.db.models import ApiKey
from infra.db.store._base import Repo, rowcount
from infra.db.types import utcnow


def key_digest(plaintext: str) -> str:
    """What is stored of a key: its sha256."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def holder_of(digest: str, purpose: str) -> Select[str]:
    """The query of :meth:`ApiKeys.check`, by the key's digest (:func:`key_digest`)."""
    return select(ApiKey.shop).where(
        ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None), ApiKey.purpose == purpose
    )


class TrustedKeys:
    """Keys found valid, trusted for ``ttl`` seconds without asking the database again: the lookup every API
    request makes first (:meth:`infra.db.store.SqlStore.check_api_key`). A revocation made through the same
    store drops the key at once; one made by another process (a script, another server on the same
    database) takes effect within ``ttl``. Unknown or revoked keys are never remembered: a new key works
    at once. Kept by digest, never by plaintext."""

    def __init__(
        self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic, most: int = 1000
    ) -> None:
        self.ttl, self.clock, self.most = ttl, clock, most
        self._found: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, purpose: str) -> str | None:
        with self._lock:
            found = self._found.get((digest, purpose))
            if found is None:
                return None
            if self.clock() >= found[1]:
                del self._found[(digest, purpose)]
                return None
            return found[0]

    def put(self, digest: str, purpose: str, shop: str) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._found) >= self.most:
                self._found.clear()
            self._found[(digest, purpose)] = (shop, self.clock() + self.ttl)

    def drop(self, digest: str) -> None:
        with self._lock:
            for key in [k for k in self._found if k[0] == digest]:
                del self._found[key]


class ApiKeys(Repo):
    def __init__(self, s: Session, trusted: TrustedKeys | None = None) -> None:
        super().__init__(s)
        self.trusted = trusted

    def create(self, shop: str, label: str | None = None, purpose: str = "events") -> str:
        """Create a key for ``shop`` (for an admin key: who holds it) and return its plaintext: the only
        time it is visible."""
        plaintext = "pv_" + secrets.token_urlsafe(32)
        self.s.add(ApiKey(shop=shop, key_hash=key_digest(plaintext), label=label, purpose=purpose))
        self.s.flush()
        return plaintext

    def check(self, plaintext: str, purpose: str = "events") -> str | None:
        """The shop (holder) of a key with ``purpose``, or None if unknown, revoked or for another door."""
        return self.s.scalar(holder_of(key_digest(plaintext), purpose))

    def revoke(self, plaintext: str, at: datetime | None = None) -> bool:
        if self.trusted is not None:
            # Dropped now and again once the revocation commits: a check that read the key as valid
            # while this transaction was open would otherwise trust it for another ttl (found in review).
            trusted, digest = self.trusted, key_digest(plaintext)
            trusted.drop(digest)
            event.listen(self.s, "after_commit", lambda _s: trusted.drop(digest), once=True)
        stmt = (
            update(ApiKey)
            .where(ApiKey.key_hash == key_digest(plaintext), ApiKey.revoked_at.is_(None))
            .values(revoked_at=at or utcnow())
        )
        return rowcount(self.s.execute(stmt)) == 1
