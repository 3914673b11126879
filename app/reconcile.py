"""Reconciliation: what to do with effects whose outcome nobody knows.

* A row still ``sending`` after its attempt's **lease** ran out belongs to a worker that died mid-call (or
  stopped renewing): it becomes ``unknown`` (the provider may have it), never ``pending`` (that would
  resend blindly). A live attempt renews its lease and is never touched; and should the answer of an
  attempt whose lease ran out still arrive, it is recorded (``app.deliver``).
* An ``unknown`` row is settled by evidence when some arrives (SendGrid's webhook: ``processed``,
  ``delivered``… → ``sent``; ``bounce``, ``dropped`` → ``failed``: :mod:`app.webhook_events`). Without
  evidence it **stays** ``unknown``: SendGrid has no idempotency key, so a resend after a timer is a
  duplicate whenever the first request was in fact accepted. It is counted (``Ledger.unknown_summary``,
  ``posventa status``) and resent only by an explicit decision (``posventa retry --unknown``), or — opt-in,
  for installations that prefer a rare duplicate to a missing message — after
  ``POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES``. Journey webhooks follow the same rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.config import Config
from app.ports import Clock, Store


class Reconciler:
    def __init__(self, store: Store, config: Config, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def run(self, now: datetime | None = None) -> dict[str, int]:
        """Expire dead attempts' leases; release ``unknown`` rows only when opted in. Returns
        ``marked_unknown`` (leases expired now), ``released`` (opt-in resends) and ``unknown`` (rows
        awaiting evidence or a decision)."""
        now = now or self.clock()
        after = self.config.resend_unknown_after_minutes
        with self.store.begin() as tx:
            expired = tx.ledger.expire_leases(now)
            released = tx.ledger.release_unknown(now - timedelta(minutes=after), now) if after else 0
            unknown = tx.ledger.count_by_status().get("unknown", 0)
        return {"marked_unknown": expired, "released": released, "unknown": unknown}
