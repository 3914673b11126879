"""Requeueing sends after their cause is fixed: an operator's explicit decision (``posventa retry``).

Which rows may go back to ``pending`` — each under its own ledger key, so it is still sent at most once
more, and each move written to the row's history with who decided and why:

* ``failed`` rows the provider **rejected before accepting** them (a revoked key gave ``401`` on every
  message, ``403``, a ``400`` for a malformed request), a journey webhook's ``4xx``, or a template that
  did not render: the delivering worker recorded the failure, so nothing reached a customer. A failure
  reported *after* acceptance (the Event Webhook's ``bounce``, ``dropped``) is never requeued, and ``sent``
  never is.
* ``unknown`` rows only when asked for (``--unknown``): the provider may have accepted them (a timeout,
  a 5xx, a worker killed mid-call) and SendGrid has no idempotency key, so a resend may reach the customer
  twice. With the Event Webhook configured, most ``unknown`` rows settle on their own; what is left is a
  decision for a person.
"""

from __future__ import annotations

from datetime import datetime

from app.ports import Clock, Store
from app.records import LedgerGroup, RequeueFilter


class Requeue:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def preview(self, f: RequeueFilter) -> list[LedgerGroup]:
        """What :meth:`run` would requeue, by journey, step and reason (``--dry-run``)."""
        with self.store.read() as tx:
            return tx.ledger.requeue_candidates(f)

    def run(self, f: RequeueFilter, note: str, now: datetime | None = None) -> int:
        """Requeue the matching rows (due now); ``note`` (who, with which filters) goes to their history.
        Returns how many moved: the next delivery sends them."""
        with self.store.begin() as tx:
            return tx.ledger.requeue(f, now or self.clock(), note)
