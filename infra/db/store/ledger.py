"""The step ledger and message outbox: one row per effect under its derived key, moved forward only by
guarded ``UPDATE … WHERE key = :k AND status IN (:from)`` (:data:`app.records.LEDGER_TRANSITIONS`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, Text, bindparam, column, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy import values as sa_values

from app.records import LEDGER_TRANSITIONS, LedgerRecord, LedgerWork, Move
from infra.db.models import LedgerEntry
from infra.db.store._base import Repo, aware, rowcount
from infra.db.store.journeys import held_journeys
from infra.db.types import UTCDateTime

_CHUNK = 500  # rows per multi-row INSERT


def record(r: LedgerEntry) -> LedgerRecord:
    return LedgerRecord(
        key=r.key,
        journey_id=r.journey_id,
        step_id=r.step_id,
        kind=r.kind,
        customer_id=r.customer_id,
        status=r.status,
        reason=r.reason,
        category=r.category,
        template=r.template,
        payload=dict(r.payload or {}),
        sent_at=r.sent_at,
        updated_at=r.updated_at,
    )


def _check(from_statuses: Sequence[str], to_status: str) -> tuple[str, ...]:
    froms = tuple(from_statuses)
    if not froms:
        raise ValueError("from_statuses is empty")
    for src in froms:
        if src not in LEDGER_TRANSITIONS:
            raise ValueError(f"unknown ledger status {src!r}")
        if to_status not in LEDGER_TRANSITIONS[src]:
            raise ValueError(f"ledger status cannot move from {src!r} to {to_status!r}")
    return froms


class Ledger(Repo):
    def insert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bulk ``INSERT … ON CONFLICT DO NOTHING``: a recomputed effect finds its row already there."""
        cols = {c.name for c in LedgerEntry.__table__.columns} - {"id"}
        full = [{**{c: None for c in cols}, "attempts": 0, "reason": None, **r} for r in rows]
        # One multi-row INSERT per chunk (not an executemany: psycopg2 would send a statement per row).
        # No conflict target: the key and (enrollment, step, occurrence) are both unique, and naming only
        # one as the arbiter lets two racing inserts deadlock on the other.
        for start in range(0, len(full), _CHUNK):
            chunk = full[start : start + _CHUNK]
            self.s.execute(self.insert_into(LedgerEntry).values(chunk).on_conflict_do_nothing())

    def recent_promotional(self, customer_ids: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """When each customer was last sent (or is about to be sent) promotional mail: the frequency cap."""
        out: dict[str, list[datetime]] = defaultdict(list)
        for cid, at in self.s.execute(
            select(LedgerEntry.customer_id, LedgerEntry.created_at).where(
                LedgerEntry.customer_id.in_(sorted(set(customer_ids))),
                LedgerEntry.category == "promotional",
                LedgerEntry.status.in_(("pending", "sending", "sent", "unknown")),
                LedgerEntry.created_at > since,
            )
        ):
            out[cid].append(at)
        return dict(out)

    def claim_pending(self, now: datetime, limit: int, customer: str | None) -> list[LedgerWork]:
        """Claim up to ``limit`` pending rows due at ``now`` (``FOR UPDATE SKIP LOCKED``) and mark them
        ``sending`` — the caller commits *before* any provider call. ``updated_at`` is the caller's
        clock: the reconciler compares it with its own (virtual in the demo and tests)."""
        q = select(LedgerEntry).where(
            LedgerEntry.status == "pending",
            or_(LedgerEntry.not_before.is_(None), LedgerEntry.not_before <= now),
            LedgerEntry.journey_id.not_in(held_journeys()),  # a paused journey sends nothing
        )
        if customer:
            q = q.where(LedgerEntry.customer_id == customer)
        rows = list(self.s.scalars(q.order_by(LedgerEntry.id).limit(limit).with_for_update(skip_locked=True)))
        if not rows:
            return []
        self.s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.id.in_([r.id for r in rows]))
            .values(status="sending", attempts=LedgerEntry.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return [
            LedgerWork(
                r.key,
                r.journey_id,
                r.step_id,
                r.kind,
                r.customer_id,
                r.template,
                r.category,
                dict(r.payload or {}),
            )
            for r in rows
        ]

    def get(self, key: str) -> LedgerRecord | None:
        stmt = select(LedgerEntry).where(LedgerEntry.key == key).execution_options(populate_existing=True)
        row = self.s.scalars(stmt).one_or_none()
        return None if row is None else record(row)

    def mark(
        self,
        key: str,
        from_statuses: Sequence[str],
        to_status: str,
        reason: str | None = None,
        provider_message_id: str | None = None,
        *,
        now: datetime,
    ) -> bool:
        """Move one row from one of ``from_statuses`` to ``to_status``; True if it moved.

        Two workers racing on the same row cannot both move it, and a row already further along is left
        alone. Asking for a move :data:`LEDGER_TRANSITIONS` does not allow (backwards) is a bug: ValueError.
        Moving to ``sent`` stamps ``sent_at``.
        """
        froms = _check(from_statuses, to_status)
        values: dict[str, Any] = {"status": to_status, "updated_at": aware(now, "now")}
        if reason is not None:
            values["reason"] = reason
        if provider_message_id is not None:
            values["provider_message_id"] = provider_message_id
        if to_status == "sent":
            values["sent_at"] = now
        stmt = (
            update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.status.in_(froms)).values(**values)
        )
        return rowcount(self.s.execute(stmt)) == 1

    def mark_many(self, moves: Sequence[Move], from_statuses: Sequence[str], *, now: datetime) -> None:
        """:meth:`mark` for a batch: one statement per target status (and thousand rows) instead of one
        round trip per row. ``reason``, ``provider_message_id`` and ``not_before`` keep their old value
        when the move gives none. Drivers do not report reliable row counts here, so nothing is returned:
        a row already elsewhere stays there."""
        by_status: dict[str, list[Move]] = {}
        for mv in moves:
            by_status.setdefault(mv.to_status, []).append(mv)
        for to_status, group in by_status.items():
            froms = _check(from_statuses, to_status)
            values: dict[str, Any] = {"status": to_status, "updated_at": aware(now, "now")}
            if to_status == "sent":
                values["sent_at"] = now
            guard = or_(*(LedgerEntry.status == f for f in froms))
            if self.is_postgres:
                self._update_from_values(group, values, guard)
                continue
            stmt = (
                update(LedgerEntry)
                # Equalities, not IN: an expanding IN cannot be used in an executemany.
                .where(LedgerEntry.key == bindparam("b_key"), guard)
                .values(
                    **values,
                    reason=func.coalesce(bindparam("b_reason", type_=Text()), LedgerEntry.reason),
                    provider_message_id=func.coalesce(
                        bindparam("b_pid", type_=String()), LedgerEntry.provider_message_id
                    ),
                    not_before=func.coalesce(
                        bindparam("b_not_before", type_=UTCDateTime()), LedgerEntry.not_before
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            params = [
                {
                    "b_key": mv.key,
                    "b_reason": mv.reason,
                    "b_pid": mv.provider_message_id,
                    "b_not_before": mv.not_before,
                }
                for mv in group
            ]
            self.s.connection().execute(stmt, params)

    def _update_from_values(self, group: list[Move], values: dict[str, Any], guard: Any) -> None:
        """PostgreSQL: ``UPDATE … FROM (VALUES …)``, one statement per thousand rows."""
        rows = [(mv.key, mv.reason, mv.provider_message_id, mv.not_before) for mv in group]
        for start in range(0, len(rows), 1000):
            v = sa_values(
                column("k", String()),
                column("r", Text()),
                column("p", String()),
                column("nb", DateTime(timezone=True)),
                name="moves",
            ).data(rows[start : start + 1000])
            self.s.execute(
                update(LedgerEntry)
                .where(LedgerEntry.key == v.c.k, guard)
                .values(
                    **values,
                    reason=func.coalesce(sql_cast(v.c.r, Text()), LedgerEntry.reason),
                    provider_message_id=func.coalesce(
                        sql_cast(v.c.p, String()), LedgerEntry.provider_message_id
                    ),
                    not_before=func.coalesce(
                        sql_cast(v.c.nb, DateTime(timezone=True)), LedgerEntry.not_before
                    ),
                )
                .execution_options(synchronize_session=False)
            )

    def mark_stuck_unknown(self, older_than: datetime, now: datetime) -> int:
        """Rows left ``sending`` since before ``older_than``: their worker died mid-call, so the outcome is
        unknown — to be reconciled, never resent blindly."""
        stuck = self.s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.status == "sending", LedgerEntry.updated_at < older_than)
            .values(status="unknown", reason="worker stopped while sending", updated_at=now)
        )
        return rowcount(stuck)

    def release_unknown(self, older_than: datetime, now: datetime) -> int:
        """``unknown`` rows (messages and webhooks) untouched since before ``older_than``: no evidence
        came in the window, so they go back to ``pending`` for one more attempt."""
        released = self.s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.status == "unknown", LedgerEntry.updated_at < older_than)
            .values(status="pending", reason="released after reconciliation window", updated_at=now)
        )
        return rowcount(released)

    def for_customer(self, customer_id: str) -> list[LedgerRecord]:
        stmt = select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id)
        return [record(r) for r in self.s.scalars(stmt)]

    def sent_messages(self) -> list[LedgerRecord]:
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.status == "sent", LedgerEntry.kind == "message")
            .order_by(LedgerEntry.id)
        )
        return [record(r) for r in self.s.scalars(stmt)]
