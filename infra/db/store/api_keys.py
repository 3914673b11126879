"""API keys: only their sha256 is stored (a random 256-bit key needs no slow hash). A key has one purpose:
``events`` (a shop's /v1 API) or ``admin`` (the /admin JSON endpoints); each door checks its own."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Select, select, update

from infra.db.models import ApiKey
from infra.db.store._base import Repo, rowcount
from infra.db.types import utcnow


def _hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def holder_of(plaintext: str, purpose: str) -> Select[str]:
    """The query of :meth:`ApiKeys.check`."""
    return select(ApiKey.shop).where(
        ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None), ApiKey.purpose == purpose
    )


class ApiKeys(Repo):
    def create(self, shop: str, label: str | None = None, purpose: str = "events") -> str:
        """Create a key for ``shop`` (for an admin key: who holds it) and return its plaintext: the only
        time it is visible."""
        plaintext = "pv_" + secrets.token_urlsafe(32)
        self.s.add(ApiKey(shop=shop, key_hash=_hash_key(plaintext), label=label, purpose=purpose))
        self.s.flush()
        return plaintext

    def check(self, plaintext: str, purpose: str = "events") -> str | None:
        """The shop (holder) of a key with ``purpose``, or None if unknown, revoked or for another door."""
        return self.s.scalar(holder_of(plaintext, purpose))

    def revoke(self, plaintext: str, at: datetime | None = None) -> bool:
        stmt = (
            update(ApiKey)
            .where(ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None))
            .values(revoked_at=at or utcnow())
        )
        return rowcount(self.s.execute(stmt)) == 1
