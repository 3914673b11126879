"""The journey plans a process works with.

* **Drafts** — the plans compiled from the journey files (the mapping interface): what ``preview``,
  ``plan`` and ``publish`` look at. A draft runs for nobody until it is published.
* **Live** — the version of each journey new entrants get, as published in the database
  (:meth:`PlanBook.admitting`, read once per transaction, so a worker sees a ``posventa publish`` or a
  ``pause`` at its next batch, without a restart).
* **Pinned** — the version an enrollment entered with (:meth:`PlanBook.pinned`): publishing never
  reroutes a customer already inside; ``posventa migrate`` moves them explicitly.

First run: on a database where no journey was ever published, :meth:`PlanBook.publish_first_run`
publishes every draft, so the embedded demo and a first deployment work without a step; from then on only
``posventa publish`` changes what runs (``README.md``, "The marketer's loop").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from app.journey_state import Publication
from app.ports import Store, Tx
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan


def _now() -> datetime:
    return datetime.now(UTC)


class PlanBook(Mapping[str, JourneyPlan]):
    """The drafts by journey id (a mapping), the live plans (:meth:`admitting`) and any stored version
    (:meth:`pinned`)."""

    def __init__(self, store: Store, plans: Mapping[str, JourneyPlan]) -> None:
        self._store = store
        self._drafts = dict(plans)
        self._pinned: dict[tuple[str, str], JourneyPlan] = {(p.id, p.version): p for p in plans.values()}
        #: The live plans read in the last transaction that asked, with that transaction: read once per
        #: transaction (an ingest batch enrolls many customers), never trusted in the next one.
        self._live: tuple[object, list[JourneyPlan]] | None = None

    def __getitem__(self, journey_id: str) -> JourneyPlan:
        return self._drafts[journey_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._drafts)

    def __len__(self) -> int:
        return len(self._drafts)

    # --- publishing --------------------------------------------------------------------------------
    def publish(
        self, journeys: Iterable[str] | None = None, *, now: datetime | None = None, kind: str = "publish"
    ) -> list[Publication]:
        """Make the drafts (all, or the ``journeys`` named) the versions new entrants get; returns the
        publications made (a journey already live at its draft's version makes none). Idempotent."""
        chosen = self._chosen(journeys)
        at = now or _now()
        with self._store.begin() as tx:
            made = [pub for p in chosen if (pub := self._publish_one(tx, p, kind, at)) is not None]
        self._live = None
        return made

    def publish_first_run(self, now: datetime | None = None) -> list[Publication]:
        """Publish every draft if no journey was ever published on this database (the first start of the
        demo, of a test database, of a new installation); otherwise nothing."""
        at = now or _now()
        with self._store.begin() as tx:
            if tx.journeys.any_published():
                return []
            made = [
                pub
                for p in self._drafts.values()
                if (pub := self._publish_one(tx, p, "first_run", at, only_if_unpublished=True)) is not None
            ]
        self._live = None
        return made

    def _chosen(self, journeys: Iterable[str] | None) -> list[JourneyPlan]:
        if journeys is None:
            return list(self._drafts.values())
        missing = [j for j in journeys if j not in self._drafts]
        if missing:
            raise PosventaError(f"no journey file for {', '.join(missing)}")
        return [self._drafts[j] for j in journeys]

    @staticmethod
    def _publish_one(
        tx: Tx, plan: JourneyPlan, kind: str, now: datetime, *, only_if_unpublished: bool = False
    ) -> Publication | None:
        tx.plans.save(plan.id, plan.version, plan.to_json())
        return tx.journeys.set_live(plan.id, plan.version, kind, now, only_if_unpublished=only_if_unpublished)

    # --- what runs ---------------------------------------------------------------------------------
    def admitting(self, tx: Tx) -> list[JourneyPlan]:
        """The live plans of the journeys that admit new entrants now (published, running), by id."""
        cached = self._live
        if cached is not None and cached[0] is tx:
            return cached[1]
        plans = [
            self.pinned(tx, c.journey_id, c.live_version)
            for c in tx.journeys.controls()
            if c.admits and c.live_version is not None
        ]
        self._live = (tx, plans)
        return plans

    def pinned(self, tx: Tx, journey_id: str, version: str) -> JourneyPlan:
        """The plan an enrollment pinned: editing a journey never reroutes a customer already in it."""
        key = (journey_id, version)
        if key not in self._pinned:
            stored = tx.plans.get(journey_id, version)
            if stored is None:
                raise PosventaError(f"plan {journey_id}@{version} is not stored")
            self._pinned[key] = JourneyPlan.from_json(stored)
        return self._pinned[key]
