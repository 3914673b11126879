"""Delivering (phase B of a sweep): send what the ledger says is pending, once.

1. Claim a batch of ``pending`` rows and mark them ``sending``; commit *before* any provider call.
2. Decide at the last moment what must not go out (suppressed or without an address since the advance:
   ``skipped``; promotional during an open complaint: back to ``pending`` for later) and render the
   messages — in a short transaction of its own (rendering may create a referral code).
3. Call the email provider (``Sender``) and POST the journey webhooks (``HttpClient``, several at once) —
   outside any database transaction, so a slow provider or endpoint holds no lock and no connection.
4. Record each outcome: ``sent`` / ``failed`` / ``unknown`` (ambiguous: reconciled, never resent
   blindly) / back to ``pending`` after ``retry_after`` (nothing was sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from app.config import Config
from app.ports import Clock, HttpClient, Outcome, OutgoingEmail, Sender, Store, Tx
from app.records import LedgerWork, Move
from app.render import Renderer
from app.stats import Stats
from posventa.errors import PosventaError

#: A promotional message held back by an open complaint is looked at again after this.
HOLD_RECHECK = timedelta(hours=6)


class Deliverer:
    def __init__(
        self, store: Store, sender: Sender, http: HttpClient, renderer: Renderer, config: Config, clock: Clock
    ) -> None:
        self.store = store
        self.sender = sender
        self.http = http
        self.renderer = renderer
        self.config = config
        self.clock = clock

    def run(
        self, now: datetime | None = None, limit: int | None = None, customer: str | None = None
    ) -> Stats:
        """Send one batch of pending messages (and journey webhooks); record what came back."""
        now = now or self.clock()
        stats = Stats()
        with self.store.begin() as tx:
            work = tx.ledger.claim_pending(now, limit or self.config.batch_size, customer)
        if not work:
            return stats
        where = {w.key: w for w in work}
        with self.store.begin() as tx:  # committed: rendering may create referral codes
            messages, verdicts = self._build(tx, [w for w in work if w.kind == "message"], now)
        moves: list[Move] = []
        for key, (status, reason) in verdicts.items():
            later = now + HOLD_RECHECK if status == "pending" else None  # held: look again later
            moves.append(Move(key, status, reason, None, later))
            stats.add(where[key].journey_id, where[key].step_id, _verdict_outcome(status, reason))
        if moves:
            with self.store.begin() as tx:
                tx.ledger.mark_many(moves, ("sending",), now=now)
        hooks = [w for w in work if w.kind == "action"]
        moves = self._call_webhooks(hooks, stats) if hooks else []
        if messages:
            moves += self._send(messages, where, now, stats)
        if moves:
            with self.store.begin() as tx:
                tx.ledger.mark_many(moves, ("sending",), now=now)
        return stats

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

    def _call_webhooks(self, hooks: Sequence[LedgerWork], stats: Stats) -> list[Move]:
        """POST each journey webhook (up to ``webhook_concurrency`` at once). The ledger key travels as
        ``Idempotency-Key``: a webhook released after an unanswered attempt may arrive twice, and the
        receiver can tell."""

        def call(w: LedgerWork) -> Move:
            params: Mapping[str, Any] = w.payload.get("params") or {}
            url = params.get("url")
            if not isinstance(url, str) or not url:
                return Move(w.key, "failed", "webhook: no url")
            body = {"event": params.get("event"), "payload": dict(w.payload)}
            answer = self.http.post_json(url, body, {"Idempotency-Key": w.key})
            if answer.status is None:
                return Move(w.key, "unknown", f"webhook: {answer.error or 'no answer'}")
            if answer.status < 400:
                return Move(w.key, "sent", f"HTTP {answer.status}")
            return Move(w.key, "failed", f"HTTP {answer.status}")

        workers = max(1, min(self.config.webhook_concurrency, len(hooks)))
        if workers == 1:
            moves = [call(w) for w in hooks]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="posventa-webhook") as pool:
                moves = list(pool.map(call, hooks))
        for w, mv in zip(hooks, moves, strict=True):
            stats.add(w.journey_id, w.step_id, mv.to_status)
        return moves


def _verdict_outcome(status: str, reason: str) -> str:
    if status == "skipped":
        return f"skipped:{reason}"
    return "held" if status == "pending" else status
