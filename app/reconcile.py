"""Reconciliation: what to do with effects whose outcome nobody knows.

* A row still ``sending`` long after its delivery began belongs to a worker that died mid-call: it
  becomes ``unknown`` (the provider may have it), never ``pending`` (that would resend blindly).
* An ``unknown`` row is settled by evidence when some arrives (SendGrid's webhook: ``processed``,
  ``delivered``… → ``sent``, see :mod:`app.webhook_events`). With no evidence within
  ``reconcile_after_minutes`` it goes back to ``pending`` for one more attempt — emails and journey
  webhooks alike (a webhook carries its ledger key as ``Idempotency-Key``). Deliberate: a customer
  missing a message forever is worse than a rare duplicate after an hour of silence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.config import Config
from app.ports import Clock, Store

#: A row ``sending`` for longer than this was abandoned by its worker.
STUCK_AFTER = timedelta(minutes=15)


class Reconciler:
    def __init__(self, store: Store, config: Config, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def run(self, now: datetime | None = None, stuck_after: timedelta = STUCK_AFTER) -> dict[str, int]:
        now = now or self.clock()
        window = timedelta(minutes=self.config.reconcile_after_minutes)
        with self.store.begin() as tx:
            stuck = tx.ledger.mark_stuck_unknown(now - stuck_after, now)
            released = tx.ledger.release_unknown(now - window, now)
        return {"marked_unknown": stuck, "released": released}
