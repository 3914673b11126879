"""Controlling journeys while they run: pause, resume, drain, stop; and the database's own facts that
guard risky commands (the production mark, a walked customer's virtual clock).

* **pause** — admits nobody, advances nobody, sends nothing: the sweep's claims skip the journey's due
  enrollments and pending messages, so due steps wait (never dropped) and waits keep counting;
* **resume** — back to running: what waited goes on at the next sweep;
* **drain** (``stop --drain``) — admits nobody; those inside finish;
* **stop** (``stop --exit``) — admits nobody and ends every live enrollment now, with a reason; the
  journey's messages not yet attempted are skipped with that reason.

:func:`journey_controls` is what ``posventa status``, the Prefect artifacts and ``posventa customer``
read to show a journey's state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.journey_state import DRAINING, PAUSED, RUNNING, STOPPED, JourneyControl
from app.plans import PlanBook
from app.ports import Store
from posventa.engine import State
from posventa.errors import PosventaError
from posventa.timeutil import parse_instant

PRODUCTION_FLAG = "environment"
PRODUCTION = "production"


def journey_controls(store: Store) -> dict[str, JourneyControl]:
    """Every controlled journey's live version and state, by journey id (a journey never published nor
    paused has no entry: it runs nothing)."""
    with store.read() as tx:
        return {c.journey_id: c for c in tx.journeys.controls()}


def _known(store: Store, book: PlanBook, journey: str) -> None:
    if journey in book:
        return
    with store.read() as tx:
        if tx.journeys.control(journey) is None:
            raise PosventaError(f"no journey '{journey}' (no file, nothing published)")


def set_state(
    store: Store, book: PlanBook, journey: str, state: str, reason: str | None, now: datetime
) -> JourneyControl:
    """Pause (``paused``), resume (``running``) or drain (``draining``) a journey. A journey already in
    that state is left as it is (its reason and since when are the first command's)."""
    if state not in (RUNNING, PAUSED, DRAINING):
        raise ValueError(f"use stop() to stop a journey, not {state!r}")
    _known(store, book, journey)
    with store.begin() as tx:
        current = tx.journeys.control(journey)
        if current is not None and current.state == state:
            return current
        return tx.journeys.set_state(journey, state, None if state == RUNNING else reason, now)


@dataclass(frozen=True)
class Stopped:
    control: JourneyControl
    enrollments: int  # live enrollments ended
    messages: int  # pending messages and webhooks skipped


def stop(store: Store, book: PlanBook, journey: str, reason: str, now: datetime) -> Stopped:
    """End every live enrollment of ``journey`` now (status ``exited``, the reason in its state) and skip
    its pending messages, in one transaction; the journey admits nobody afterwards."""
    if not reason.strip():
        raise PosventaError("a stop needs a reason (--reason)")
    _known(store, book, journey)
    with store.begin() as tx:
        control = tx.journeys.set_state(journey, STOPPED, reason, now)
        live = tx.journeys.live_enrollments(journey, lock=True)
        ended = []
        for e in live:
            st = State.from_json(e.state)
            gone = replace(
                st,
                step=None,
                status="exited",
                reason=reason,
                wait_step=None,
                wait_since=None,
                wait_until=None,
            )
            ended.append({"id": e.id, "state": gone.to_json()})
        tx.journeys.end(ended, now)
        skipped = tx.journeys.skip_pending(journey, f"journey stopped: {reason}"[:500], now)
    return Stopped(control, len(ended), skipped)


# --- the database's own facts ---------------------------------------------------------------------------
def is_production(store: Store | None, environment: str) -> bool:
    """Whether this is production: the setting says so, or the database was marked."""
    if environment.strip().lower() == PRODUCTION:
        return True
    if store is None:
        return False
    with store.read() as tx:
        return tx.installation.get(PRODUCTION_FLAG) == PRODUCTION


def mark_environment(store: Store, production: bool, now: datetime) -> None:
    with store.begin() as tx:
        if production:
            tx.installation.set(PRODUCTION_FLAG, PRODUCTION, now)
        else:
            tx.installation.unset(PRODUCTION_FLAG)


def _clock_flag(customer: str) -> str:
    return f"clock:{customer}"[:200]


def customer_clock(store: Store, customer: str) -> datetime | None:
    """The virtual time ``posventa run --customer … --at/--advance`` last moved this customer to."""
    with store.read() as tx:
        value = tx.installation.get(_clock_flag(customer))
    return parse_instant(value) if value else None


def set_customer_clock(store: Store, customer: str, at: datetime, now: datetime) -> None:
    with store.begin() as tx:
        tx.installation.set(_clock_flag(customer), at.isoformat(), now)
