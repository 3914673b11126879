"""Delivering (phase B of a sweep): send what the ledger says is pending, once.

1. Claim a batch of ``pending`` rows and mark them ``sending`` under a new **attempt id**, with a
   **lease** (:func:`lease_for`); commit *before* any provider call.
2. Decide at the last moment what must not go out (suppressed or without an address since the advance:
   ``skipped``; promotional during an open complaint: back to ``pending`` for later) and render the
   messages — in a short transaction of its own (rendering may create a referral code).
3. Call the email provider (``Sender``) and POST the journey webhooks (``HttpClient``, several at once) —
   outside any database transaction, so a slow provider or endpoint holds no lock and no connection.
   Meanwhile the lease is renewed (:class:`_Lease`): the reconciler never touches a live attempt.
4. Record each outcome as this attempt's: ``sent`` / ``failed`` / back to ``pending`` after
   ``retry_after`` (nothing was sent) are definitive and win even if the lease expired meanwhile and the
   row became ``unknown``; an ambiguous answer leaves it ``unknown`` (settled by evidence or by an
   operator, never resent by a timer unless opted in). A row since claimed by another attempt is left
   alone.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from app.config import Config
from app.ports import Clock, HttpClient, Outcome, OutgoingEmail, Sender, Store, Tx
from app.records import LedgerWork, Move
from app.render import Renderer
from app.stats import Stats
from posventa.errors import PosventaError

log = logging.getLogger("posventa.deliver")

#: A promotional message held back by an open complaint is looked at again after this.
HOLD_RECHECK = timedelta(hours=6)
#: A lease covers the batch's provider calls this many times over: a 400 naming some recipients sends the
#: rest again, a 413 halves the request, a busy machine runs late.
LEASE_MARGIN = 2
#: Added to every lease: rendering, the database round trips, a pause of the process.
LEASE_FLOOR = timedelta(minutes=2)
#: How often (seconds, at most) a worker renews its lease while its provider calls are in flight.
RENEW_EVERY = 30.0
#: A journey webhook refused for now (408, 429) or never sent (no connection) is tried again after this.
WEBHOOK_RETRY = timedelta(minutes=1)


def lease_for(messages: int, hooks: int, config: Config) -> timedelta:
    """How long an attempt on ``messages`` emails and ``hooks`` journey webhooks may take before the
    reconciler presumes its worker dead: each message may need a request of its own (at most
    ``send_timeout`` seconds, ``send_concurrency`` at once) and each webhook a call (``webhook_timeout``,
    ``webhook_concurrency`` at once), times :data:`LEASE_MARGIN`, plus :data:`LEASE_FLOOR`. The worker
    renews it while it waits, so a slower provider does not make a live attempt look dead."""
    sends = config.send_timeout * math.ceil(messages / max(1, config.send_concurrency))
    calls = config.webhook_timeout * math.ceil(hooks / max(1, config.webhook_concurrency))
    return LEASE_FLOOR + timedelta(seconds=LEASE_MARGIN * (sends + calls))


class Deliverer:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        http: HttpClient,
        renderer: Renderer,
        config: Config,
        clock: Clock,
        renew_every: float = RENEW_EVERY,
    ) -> None:
        self.store = store
        self.sender = sender
        self.http = http
        self.renderer = renderer
        self.config = config
        self.clock = clock
        self.renew_every = renew_every

    def run(
        self, now: datetime | None = None, limit: int | None = None, customer: str | None = None
    ) -> Stats:
        """Send one batch of pending messages (and journey webhooks); record what came back."""
        now = now or self.clock()
        stats = Stats()
        limit = limit or self.config.batch_size
        attempt, started = str(uuid.uuid4()), time.monotonic()
        most = max(lease_for(limit, 0, self.config), lease_for(0, limit, self.config))
        with self.store.begin() as tx:
            work = tx.ledger.claim_pending(now, limit, customer, attempt=attempt, lease_until=now + most)
        if not work:
            return stats
        where = {w.key: w for w in work}
        hooks = [w for w in work if w.kind == "action"]
        to_render = [w for w in work if w.kind == "message"]
        lease = _Lease(self.store, attempt, now, started, lease_for(len(to_render), len(hooks), self.config))
        with self.store.begin() as tx:  # committed: rendering may create referral codes
            tx.ledger.renew_lease(attempt, lease.until())  # sized for the batch as claimed
            messages, verdicts = self._build(tx, to_render, now)
        moves: list[Move] = []
        for key, (status, reason) in verdicts.items():
            later = now + HOLD_RECHECK if status == "pending" else None  # held: look again later
            moves.append(Move(key, status, reason, None, later))
            stats.add(where[key].journey_id, where[key].step_id, _verdict_outcome(status, reason))
        self._record(moves, now, attempt)
        with lease.renewed_every(min(self.renew_every, lease.window.total_seconds() / 4)):
            moves = self._call_webhooks(hooks, now, stats) if hooks else []
            if messages:
                moves += self._send(messages, where, now, stats)
        self._record(moves, now, attempt)
        return stats

    def _record(self, moves: Sequence[Move], now: datetime, attempt: str) -> None:
        """Record this attempt's answers. A definitive one wins even over the ``unknown`` the reconciler
        set when the lease expired; an ambiguous one moves only a row still ``sending``. Either way only
        rows still claimed by this attempt move: another attempt's row is never overwritten."""
        final = [mv for mv in moves if mv.to_status != "unknown"]
        ambiguous = [mv for mv in moves if mv.to_status == "unknown"]
        if not moves:
            return
        with self.store.begin() as tx:
            if final:
                tx.ledger.mark_many(final, ("sending", "unknown"), now=now, attempt=attempt)
            if ambiguous:
                tx.ledger.mark_many(ambiguous, ("sending",), now=now, attempt=attempt)

    def _build(
        self, tx: Tx, work: Sequence[LedgerWork], now: datetime
    ) -> tuple[list[OutgoingEmail], dict[str, tuple[str, str]]]:
        """Render the batch; decide at the last moment what must not be sent (suppressed since decided)."""
        if not work:
            return [], {}
        cids = sorted({w.customer_id for w in work})
        customers = tx.customers.facts(cids)
        orders = tx.orders.facts([w.payload.get("order_id") or "" for w in work])
        complaints = tx.tickets.open_complaints(cids)
        suppressed = tx.suppressions.scopes([c["email"] for c in customers.values() if c.get("email")])
        messages: list[OutgoingEmail] = []
        verdicts: dict[str, tuple[str, str]] = {}
        for w in work:
            c = customers.get(w.customer_id)
            if c is None or not c.get("email"):
                verdicts[w.key] = ("skipped", "no-address")
                continue
            scopes = suppressed.get(c["email"].strip().lower(), {})
            reason = scopes.get("all") or (scopes.get("promotional") if w.category == "promotional" else None)
            if reason:
                verdicts[w.key] = ("skipped", f"suppressed:{reason}")
                continue
            if w.category == "promotional" and w.customer_id in complaints:
                verdicts[w.key] = ("pending", "held: open complaint")  # decided before the complaint: wait
                continue
            order = orders.get(w.payload.get("order_id") or "")
            locale = w.payload.get("locale") or c.get("locale") or "es"
            try:
                messages.append(self.renderer.render(tx, w, c, order, locale, now))
            except PosventaError as exc:
                verdicts[w.key] = ("failed", f"render: {exc}")
        return messages, verdicts

    def _send(
        self, messages: list[OutgoingEmail], where: Mapping[str, LedgerWork], now: datetime, stats: Stats
    ) -> list[Move]:
        moves: list[Move] = []
        for res in self.sender.send(messages):
            w = where[res.ledger_key]
            if res.outcome == Outcome.SENT:
                moves.append(Move(res.ledger_key, "sent", None, res.provider_message_id))
                stats.add(w.journey_id, w.step_id, "sent")
            elif res.outcome == Outcome.FAILED:
                moves.append(Move(res.ledger_key, "failed", res.error))
                stats.add(w.journey_id, w.step_id, "failed")
            elif res.outcome == Outcome.UNKNOWN:
                moves.append(Move(res.ledger_key, "unknown", res.error))
                stats.add(w.journey_id, w.step_id, "unknown")
            else:  # nothing was sent: back to pending, not before the provider allows
                wait = timedelta(seconds=res.retry_after or 60)
                moves.append(Move(res.ledger_key, "pending", res.error, None, now + wait))
                stats.add(w.journey_id, w.step_id, "retry")
        return moves

    def _call_webhooks(self, hooks: Sequence[LedgerWork], now: datetime, stats: Stats) -> list[Move]:
        """POST each journey webhook (up to ``webhook_concurrency`` at once). The ledger key travels as
        ``Idempotency-Key``: a webhook an operator requeues after an unanswered attempt may arrive twice,
        and the receiver can tell. Classified like an email: 2xx/3xx ``sent``; 408/429 or no connection
        (nothing was processed) ``pending`` again; 5xx or no answer ``unknown``; other 4xx ``failed``."""

        def call(w: LedgerWork) -> Move:
            params: Mapping[str, Any] = w.payload.get("params") or {}
            url = params.get("url")
            if not isinstance(url, str) or not url:
                return Move(w.key, "failed", "webhook: no url")
            body = {"event": params.get("event"), "payload": dict(w.payload)}
            answer = self.http.post_json(url, body, {"Idempotency-Key": w.key})
            if answer.status is None:
                if answer.not_sent:
                    reason = f"webhook: not sent: {answer.error or 'no connection'}"
                    return Move(w.key, "pending", reason, None, now + WEBHOOK_RETRY)
                return Move(w.key, "unknown", f"webhook: {answer.error or 'no answer'}")
            if answer.status < 400:
                return Move(w.key, "sent", f"HTTP {answer.status}")
            if answer.status in (408, 429):
                return Move(w.key, "pending", f"HTTP {answer.status}", None, now + WEBHOOK_RETRY)
            if answer.status >= 500:
                return Move(w.key, "unknown", f"HTTP {answer.status}")  # it may have been processed
            return Move(w.key, "failed", f"HTTP {answer.status}")

        workers = max(1, min(self.config.webhook_concurrency, len(hooks)))
        if workers == 1:
            moves = [call(w) for w in hooks]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="posventa-webhook") as pool:
                moves = list(pool.map(call, hooks))
        for w, mv in zip(hooks, moves, strict=True):
            stats.add(w.journey_id, w.step_id, "retry" if mv.to_status == "pending" else mv.to_status)
        return moves


class _Lease:
    """An attempt's lease on its ``sending`` rows, renewed while its provider calls are in flight — a
    proof of life: a worker that dies stops renewing, and its rows become ``unknown`` once the last lease
    ran out. Times are on the caller's clock (``now`` at the claim, virtual in the demo and the tests)
    advanced by the real time elapsed since."""

    def __init__(self, store: Store, attempt: str, now: datetime, started: float, window: timedelta) -> None:
        self.store = store
        self.attempt = attempt
        self.now = now
        self.started = started
        self.window = window
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._every = 0.0

    def until(self) -> datetime:
        return self.now + timedelta(seconds=time.monotonic() - self.started) + self.window

    def renewed_every(self, seconds: float) -> _Lease:
        self._every = seconds
        return self

    def __enter__(self) -> _Lease:
        if self._every > 0:
            self._thread = threading.Thread(target=self._renew, name="posventa-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self._every):
            try:
                with self.store.begin() as tx:
                    tx.ledger.renew_lease(self.attempt, self.until())
            except Exception:  # the database is unreachable: the lease may run out, the answer still wins
                log.warning("could not renew the lease of attempt %s", self.attempt, exc_info=True)


def _verdict_outcome(status: str, reason: str) -> str:
    if status == "skipped":
        return f"skipped:{reason}"
    return "held" if status == "pending" else status
