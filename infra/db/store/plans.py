"""Compiled journey plans by content-hashed version: enrollments pin one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.db.models import StoredPlan
from infra.db.store._base import Repo


class Plans(Repo):
    def save(self, journey_id: str, version: str, plan: Mapping[str, Any]) -> bool:
        """Store a compiled plan under its version. Idempotent; True if it was new."""
        stmt = self.insert_into(StoredPlan).values(journey_id=journey_id, version=version, plan=dict(plan))
        stmt = stmt.on_conflict_do_nothing(index_elements=["journey_id", "version"])
        return self.s.execute(stmt.returning(StoredPlan.version)).first() is not None

    def get(self, journey_id: str, version: str) -> dict[str, Any] | None:
        row = self.s.get(StoredPlan, (journey_id, version))
        return None if row is None else dict(row.plan)
