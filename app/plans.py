"""The journey plans a process runs: the current version of each journey (published to the store, so
new enrollments can pin it) and, on demand, the older versions enrollments still pin."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from app.ports import Store, Tx
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan


class PlanBook(Mapping[str, JourneyPlan]):
    """The current plans by journey id (a mapping), plus :meth:`pinned` for any stored version."""

    def __init__(self, store: Store, plans: Mapping[str, JourneyPlan]) -> None:
        self._store = store
        self._current = dict(plans)
        self._pinned: dict[tuple[str, str], JourneyPlan] = {(p.id, p.version): p for p in plans.values()}

    def __getitem__(self, journey_id: str) -> JourneyPlan:
        return self._current[journey_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current)

    def __len__(self) -> int:
        return len(self._current)

    def publish(self) -> None:
        """Store the current plan versions, so enrollments can pin them (idempotent)."""
        with self._store.begin() as tx:
            for p in self._current.values():
                tx.plans.save(p.id, p.version, p.to_json())

    def pinned(self, tx: Tx, journey_id: str, version: str) -> JourneyPlan:
        """The plan an enrollment pinned: editing a journey never reroutes a customer already in it."""
        key = (journey_id, version)
        if key not in self._pinned:
            stored = tx.plans.get(journey_id, version)
            if stored is None:
                raise PosventaError(f"plan {journey_id}@{version} is not stored")
            self._pinned[key] = JourneyPlan.from_json(stored)
        return self._pinned[key]
