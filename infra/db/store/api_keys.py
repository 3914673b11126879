"""The shops' API keys: only their sha256 is stored (a random 256-bit key needs no slow hash)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update

from infra.db.models import ApiKey
from infra.db.store._base import Repo, rowcount
from infra.db.types import utcnow


def _hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class ApiKeys(Repo):
    def create(self, shop: str, label: str | None = None) -> str:
        """Create a key for ``shop`` and return its plaintext: the only time it is visible."""
        plaintext = "pv_" + secrets.token_urlsafe(32)
        self.s.add(ApiKey(shop=shop, key_hash=_hash_key(plaintext), label=label))
        self.s.flush()
        return plaintext

    def check(self, plaintext: str) -> str | None:
        """The shop a key belongs to, or None if unknown or revoked."""
        stmt = select(ApiKey.shop).where(ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None))
        return self.s.scalar(stmt)

    def revoke(self, plaintext: str, at: datetime | None = None) -> bool:
        stmt = (
            update(ApiKey)
            .where(ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None))
            .values(revoked_at=at or utcnow())
        )
        return rowcount(self.s.execute(stmt)) == 1
